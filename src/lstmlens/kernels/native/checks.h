// Argument checks of the native ops, run before any data pointer is taken: every tensor's
// shape, dtype, device and contiguity against the layout. They are TORCH_CHECKs inside the ops,
// so no caller (functions.py, or anyone calling torch.ops.lstmlens_native directly) can skip
// them. A failure is one line naming the argument, e.g.
//     lstmlens native LSTM: weight_hh must be (4H, P) = (256, 64), got (64, 256)
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "layout.h"

namespace lstmlens {

// One expected size: its symbol ("4H") and value.
struct Dim {
  std::string sym;
  int64_t n;
};
using Shape = std::vector<Dim>;

inline Dim blocks(int64_t k, const char* unit, int64_t n) {  // "4H", or "H" for one block
  return {k == 1 ? std::string(unit) : std::to_string(k) + unit, n};
}

inline std::string show_sizes(at::IntArrayRef s) {
  std::string r = "(";
  for (size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
  return r + ")";
}

inline std::string show_shape(const Shape& s) {  // "(4H, P) = (256, 64)"
  std::string sym = "(", val = "(";
  for (size_t k = 0; k < s.size(); ++k) {
    sym += (k ? ", " : "") + s[k].sym;
    val += (k ? ", " : "") + std::to_string(s[k].n);
  }
  return sym + ") = " + val + ")";
}

inline const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: return c10::toString(t);
  }
}

// Names the op in every message: "lstmlens native LSTM".
struct Checker {
  const char* op;
  at::ScalarType dtype;  // every floating tensor must have x's dtype

  // t is a defined, dense CPU tensor of `dtype` with exactly this shape
  void tensor(const std::string& name, const Tensor& t, const Shape& shape) const {
    TORCH_CHECK(t.defined(), op, ": ", name, " is missing");
    const bool same = t.dim() == int64_t(shape.size()) &&
                      [&] {
                        for (size_t k = 0; k < shape.size(); ++k)
                          if (t.size(k) != shape[k].n) return false;
                        return true;
                      }();
    TORCH_CHECK(same, op, ": ", name, " must be ", show_shape(shape), ", got ",
                show_sizes(t.sizes()));
    dense(name, t);
  }

  // a keep mask (T, B, 1|W), or undefined (no mask)
  void keep(const std::string& name, const Tensor& t, int64_t Tn, int64_t B, const Dim& w) const {
    if (!t.defined()) return;
    const bool ok = t.dim() == 3 && t.size(0) == Tn && t.size(1) == B &&
                    (t.size(2) == 1 || t.size(2) == w.n);
    TORCH_CHECK(ok, op, ": ", name, " must be (T, B, 1|", w.sym, ") = (", Tn, ", ", B, ", 1|",
                w.n, "), got ", show_sizes(t.sizes()));
    dense(name, t);
  }

  // an optional tensor: undefined, or this shape
  void optional(const std::string& name, const Tensor& t, const Shape& shape) const {
    if (t.defined()) tensor(name, t, shape);
  }

  // a slot that this layout does not use: it must be empty
  void empty(const std::string& name, const Tensor& t, const char* why) const {
    TORCH_CHECK(!t.defined() || t.numel() == 0, op, ": ", name, " must be empty (", why,
                "), got ", show_sizes(t.sizes()));
  }

  void dense(const std::string& name, const Tensor& t) const {
    TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " must be on the CPU, got ", t.device());
    TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " must be ", dtype_name(dtype),
                " like x, got ", dtype_name(t.scalar_type()));
    TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
  }
};

// x (T, B, I): a dense float32/float64 CPU tensor. Returns the checker for the other arguments.
inline Checker check_input(const char* op, const Tensor& x) {
  TORCH_CHECK(x.defined() && x.dim() == 3, op, ": x must be 3-D (T, B, I), got ",
              x.defined() ? show_sizes(x.sizes()) : std::string("nothing"));
  const auto t = x.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kDouble, op, ": x must be float32 or float64, got ",
              dtype_name(t));
  Checker c{op, t};
  c.dense("x", x);
  return c;
}

// -- LSTM --------------------------------------------------------------------------------------

// The arguments lstm_forward and lstm_backward share.
inline Checker check_lstm(const Layout& L, const Tensor& x, const Tensor& h0, at::TensorList w,
                          const Tensor& keep_h, const Tensor& keep_c, const Tensor& rmask) {
  const Checker c = check_input("lstmlens native LSTM", x);
  const int64_t Tn = x.size(0), B = x.size(1), I = x.size(2);
  const Dim Bd{"B", B}, Hd{"H", L.H}, Pd{"P", L.P}, Gd = blocks(L.nG, "H", L.G);
  const Dim Sd = blocks(L.nS, "H", L.S), Id{"I", I};
  TORCH_CHECK(!L.bf16 || c.dtype == at::kFloat,
              "lstmlens native LSTM: bf16 matmuls need float32 tensors, got ",
              dtype_name(c.dtype));
  c.tensor("h0", h0, {Bd, Pd});
  c.keep("keep_h", keep_h, Tn, B, Pd);
  c.keep("keep_c", keep_c, Tn, B, Hd);
  c.optional("rmask", rmask, {Bd, Pd});

  TORCH_CHECK(w.size() == N_SLOTS, "lstmlens native LSTM: expected ", int(N_SLOTS),
              " weights (", kSlotNames[0], " ... ", kSlotNames[N_SLOTS - 1], "), got ", w.size());
  std::array<Shape, N_SLOTS> shape;  // empty: the slot is unused in this layout
  std::array<const char*, N_SLOTS> why{};
  shape[W_IH] = {Gd, Id};
  shape[W_HH] = {Gd, Pd};
  why[B_IH] = why[B_HH] = "no bias";
  if (w[B_IH].numel() || w[B_HH].numel()) shape[B_IH] = shape[B_HH] = {Gd};  // both or neither
  why[W_HR] = "no projection";
  if (L.proj) shape[W_HR] = {Pd, Hd};
  why[P_I] = why[P_F] = why[P_O] = "no peephole to this gate";
  if (L.peep && L.has_i) shape[P_I] = {Hd};
  if (L.peep && L.has_f) shape[P_F] = {Hd};
  if (L.peep && L.has_o) shape[P_O] = {Hd};
  why[W_GATE] = "no full gate recurrence";
  if (L.fgr) shape[W_GATE] = {Sd, Sd};
  why[LN_IH] = why[LN_HH] = why[LN_CW] = why[LN_CB] = "no layer norm";
  if (L.ln) shape[LN_IH] = shape[LN_HH] = {Gd}, shape[LN_CW] = shape[LN_CB] = {Hd};
  for (int s = 0; s < N_SLOTS; ++s) {
    if (shape[s].empty()) {
      c.empty(kSlotNames[s], w[s], why[s]);
    } else {
      c.tensor(kSlotNames[s], w[s], shape[s]);
    }
  }
  return c;
}

// The incoming gradients of lstm_backward: d_out (T, B, P), d_hn (B, P), d_cn (B, H), each
// optional.
inline void check_lstm_grads(const Checker& c, const Layout& L, const Tensor& x,
                             const Tensor& d_out, const Tensor& d_hn, const Tensor& d_cn) {
  const Dim Td{"T", x.size(0)}, Bd{"B", x.size(1)}, Hd{"H", L.H}, Pd{"P", L.P};
  c.optional("d_out", d_out, {Td, Bd, Pd});
  c.optional("d_hn", d_hn, {Bd, Pd});
  c.optional("d_cn", d_cn, {Bd, Hd});
}

// What lstm_backward reads from its forward's saved tensors (enum Saved).
inline void check_lstm_saved(const Checker& c, const Layout& L, const Tensor& x,
                             at::TensorList saved) {
  const int64_t Tn = x.size(0), B = x.size(1);
  const Dim Td{"T", Tn}, T1{"T+1", Tn + 1}, Bd{"B", B}, one{"1", 1};
  const Dim Hd{"H", L.H}, Pd{"P", L.P}, Gd = blocks(L.nG, "H", L.G), Sd = blocks(L.nS, "H", L.S);
  TORCH_CHECK(saved.size() == N_SAVED, "lstmlens native LSTM: expected ", int(N_SAVED),
              " saved tensors, got ", saved.size());
  auto name = [](int k) { return std::string("saved ") + kSavedNames[k]; };
  std::array<Shape, N_SAVED> shape;  // empty: not read
  shape[SV_OUT] = {Td, Bd, Pd};
  shape[SV_C] = {T1, Bd, Hd};
  shape[SV_GATES] = {Td, Bd, Gd};
  shape[SV_Y] = {Td, Bd, Hd};
  if (L.ln) {
    shape[SV_XN] = shape[SV_RN] = {Td, Bd, Gd};
    shape[SV_RSTD_X] = shape[SV_RSTD_R] = shape[SV_RSTD_C] = {Td, Bd, one};
    shape[SV_CNORM] = {Td, Bd, Hd};
  }
  if (L.fgr) shape[SV_SIG] = {Td, Bd, Sd};
  for (int k = 0; k < N_SAVED; ++k)
    if (!shape[k].empty()) c.tensor(name(k), saved[k], shape[k]);
  if (saved[SV_CNEW].numel()) c.tensor(name(SV_CNEW), saved[SV_CNEW], {Td, Bd, Hd});
}

// -- GRU and RNN -------------------------------------------------------------------------------

// weight_ih (nG*H, I), weight_hh (nG*H, H), biases (nG*H) or both empty; h0 (B, H); keep_h.
// H is read from weight_hh (its columns). Returns the checker and H.
inline std::pair<Checker, int64_t> check_simple(const char* op, int64_t nG, const Tensor& x,
                                                const Tensor& h0, at::TensorList w,
                                                const Tensor& keep_h) {
  const Checker c = check_input(op, x);
  const int64_t Tn = x.size(0), B = x.size(1), I = x.size(2);
  TORCH_CHECK(w.size() == N_SIMPLE_SLOTS, op, ": expected ", int(N_SIMPLE_SLOTS),
              " weights (weight_ih, weight_hh, bias_ih, bias_hh), got ", w.size());
  const Tensor& whh = w[S_W_HH];
  TORCH_CHECK(whh.dim() == 2 && whh.size(1) >= 1 && whh.size(0) == nG * whh.size(1), op,
              ": weight_hh must be (", blocks(nG, "H", 0).sym, ", H) with H >= 1, got ",
              show_sizes(whh.sizes()));
  const int64_t H = whh.size(1);
  const Dim Hd{"H", H}, Gd = blocks(nG, "H", nG * H);
  c.tensor("weight_ih", w[S_W_IH], {Gd, {"I", I}});
  c.tensor("weight_hh", whh, {Gd, Hd});
  if (w[S_B_IH].numel() || w[S_B_HH].numel()) {
    c.tensor("bias_ih", w[S_B_IH], {Gd});
    c.tensor("bias_hh", w[S_B_HH], {Gd});
  }
  c.tensor("h0", h0, {{"B", B}, Hd});
  c.keep("keep_h", keep_h, Tn, B, Hd);
  return {c, H};
}

// The incoming gradients of a GRU / RNN backward: d_out (T, B, H), d_hn (B, H), optional.
inline void check_simple_grads(const Checker& c, int64_t H, const Tensor& x, const Tensor& d_out,
                               const Tensor& d_hn) {
  const Dim Td{"T", x.size(0)}, Bd{"B", x.size(1)}, Hd{"H", H};
  c.optional("d_out", d_out, {Td, Bd, Hd});
  c.optional("d_hn", d_hn, {Bd, Hd});
}

// The saved tensors a GRU / RNN backward reads (enums GruSaved, RnnSaved).
inline void check_simple_saved(const Checker& c, bool gru, int64_t H, const Tensor& x,
                               at::TensorList saved) {
  const Dim Td{"T", x.size(0)}, Bd{"B", x.size(1)}, Hd{"H", H};
  const size_t n = gru ? size_t(N_GRU_SAVED) : size_t(N_RNN_SAVED);
  TORCH_CHECK(saved.size() == n, c.op, ": expected ", n, " saved tensors, got ", saved.size());
  const char* const* names = gru ? kGruSavedNames : kRnnSavedNames;
  auto name = [&](int k) { return std::string("saved ") + names[k]; };
  c.tensor(name(0), saved[0], {Td, Bd, Hd});  // out
  if (gru) {
    c.tensor(name(GS_GATES), saved[GS_GATES], {Td, Bd, {"3H", 3 * H}});
    c.tensor(name(GS_HW), saved[GS_HW], {Td, Bd, Hd});
  } else {
    c.tensor(name(RS_ACTS), saved[RS_ACTS], {Td, Bd, Hd});
  }
}

}  // namespace lstmlens
