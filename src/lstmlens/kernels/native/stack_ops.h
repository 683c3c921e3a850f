// The ops of a whole stacked LSTM (wavefront.h): lstm_stack_forward / lstm_stack_backward.
// Every argument is checked as the one-layer ops check theirs (checks.h), layer by layer, before
// any chain starts. Registered in ops.cpp's op table.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/List.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "checks.h"
#include "layout.h"
#include "wavefront.h"

namespace lstmlens {

using OptionalTensors = c10::List<std::optional<Tensor>>;

namespace stack_detail {

constexpr const char* kOp = "lstmlens native LSTM stack";

inline std::vector<Tensor> unwrap(const OptionalTensors& list, size_t n, const char* what) {
  TORCH_CHECK(list.size() == n, kOp, ": expected ", n, " ", what, " (one per ",
              std::string(what) == "drop" ? "layer boundary" : "layer-direction", "), got ",
              list.size());
  std::vector<Tensor> r;
  for (size_t i = 0; i < n; ++i) {
    const std::optional<Tensor> t = list.get(i);
    r.push_back(t.has_value() && t->defined() ? t->contiguous() : Tensor());
  }
  return r;
}

// The checked arguments as a Stack (chunks: at most one per step; one with two directions or
// full gate recurrence).
inline Stack make_stack(const Layout& L, const Tensor& x, const Tensor& h0, const Tensor& c0,
                        at::TensorList w, int64_t layers, int64_t dirs, int64_t chunks,
                        const OptionalTensors& keep_h, const OptionalTensors& keep_c,
                        const OptionalTensors& rmask, const OptionalTensors& drop,
                        const std::optional<Tensor>& rev) {
  const Checker c = check_input(kOp, x);
  TORCH_CHECK(layers >= 1 && (dirs == 1 || dirs == 2) && chunks >= 1, kOp,
              ": layers >= 1, dirs 1 or 2 and chunks >= 1 expected, got ", layers, ", ", dirs,
              ", ", chunks);
  const int64_t Tn = x.size(0), B = x.size(1), LD = layers * dirs;
  TORCH_CHECK(Tn > 0 && B > 0, kOp, ": x must have steps and sequences, got ",
              show_sizes(x.sizes()));
  TORCH_CHECK(int64_t(w.size()) == LD * N_SLOTS, kOp, ": expected ", LD * N_SLOTS,
              " weights (", int(N_SLOTS), " per layer-direction), got ", w.size());
  const Dim LDd{"L*D", LD}, Bd{"B", B}, Td{"T", Tn};
  c.tensor("h0", h0, {LDd, Bd, {"P", L.P}});
  if (c0.defined()) c.tensor("c0", c0, {LDd, Bd, {"H", L.H}});
  // fgr's gate state [i, f, o] starts at zero on each call of the one-layer kernel: one chunk
  const int64_t K = dirs == 2 || L.fgr ? 1 : std::min(chunks, Tn);
  Stack s{L, layers, dirs, K, x, h0, c0, w,
          unwrap(keep_h, LD, "keep_h"), unwrap(keep_c, LD, "keep_c"), unwrap(rmask, LD, "rmask"),
          unwrap(drop, layers - 1, "drop"), Tensor()};
  const Tensor upper = layers > 1 ? at::empty({Tn, B, dirs * L.P}, x.options()) : Tensor();
  for (int64_t ld = 0; ld < LD; ++ld)
    check_lstm(L, ld < dirs ? x : upper, h0[ld], s.weights(ld), s.keep_h[ld], s.keep_c[ld],
               s.rmask[ld]);
  for (const auto& m : s.drop) c.optional("drop", m, {Td, Bd, {"D*P", dirs * L.P}});
  if (rev.has_value() && rev->defined()) {
    TORCH_CHECK(rev->scalar_type() == at::kLong && rev->dim() == 2 && rev->size(0) == Tn &&
                    rev->size(1) == B && rev->device().is_cpu(),
                kOp, ": rev must be an int64 CPU tensor (T, B) = (", Tn, ", ", B, "), got ",
                show_sizes(rev->sizes()));
    s.rev = rev->contiguous();
  }
  return s;
}

}  // namespace stack_detail

inline std::vector<Tensor> lstm_stack_forward(
    const Tensor& x, const Tensor& h0, const Tensor& c0, at::TensorList w, at::IntArrayRef cfg,
    int64_t layers, int64_t dirs, int64_t chunks, const OptionalTensors& keep_h,
    const OptionalTensors& keep_c, const OptionalTensors& rmask, const OptionalTensors& drop,
    const std::optional<Tensor>& rev, bool train) {
  const Layout L(cfg);
  TORCH_CHECK(c0.defined(), stack_detail::kOp, ": c0 is missing");
  const Stack s = stack_detail::make_stack(L, x, h0, c0, w, layers, dirs, chunks, keep_h, keep_c,
                                           rmask, drop, rev);
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmlens_lstm_stack_forward",
                             [&] { res = stack_forward<scalar_t>(s, train); });
  return res;
}

inline std::vector<Tensor> lstm_stack_backward(
    const Tensor& x, const Tensor& h0, at::TensorList w, at::IntArrayRef cfg, int64_t layers,
    int64_t dirs, int64_t chunks, const OptionalTensors& keep_h, const OptionalTensors& keep_c,
    const OptionalTensors& rmask, const OptionalTensors& drop, const std::optional<Tensor>& rev,
    at::TensorList saved, const std::optional<Tensor>& d_out, const std::optional<Tensor>& d_hn,
    const std::optional<Tensor>& d_cn) {
  using stack_detail::kOp;
  const Layout L(cfg);
  const Stack s = stack_detail::make_stack(L, x, h0, Tensor(), w, layers, dirs, chunks, keep_h,
                                           keep_c, rmask, drop, rev);
  const Checker c = check_input(kOp, x);
  const int64_t Tn = x.size(0), B = x.size(1), LD = layers * dirs, K = s.chunks;
  auto get = [](const std::optional<Tensor>& t) {
    return t.has_value() && t->defined() ? t->contiguous() : Tensor();
  };
  const Tensor dout = get(d_out), dhn = get(d_hn), dcn = get(d_cn);
  const Dim LDd{"L*D", LD}, Bd{"B", B};
  c.optional("d_out", dout, {{"T", Tn}, Bd, {"D*P", dirs * L.P}});
  c.optional("d_hn", dhn, {LDd, Bd, {"P", L.P}});
  c.optional("d_cn", dcn, {LDd, Bd, {"H", L.H}});
  TORCH_CHECK(int64_t(saved.size()) == LD * K * N_SAVED, kOp, ": expected ", LD * K * N_SAVED,
              " saved tensors, got ", saved.size());
  for (int64_t ld = 0; ld < LD; ++ld)
    for (int64_t k = 0; k < K; ++k)
      check_lstm_saved(c, L, s.piece(x, k), saved.slice((ld * K + k) * N_SAVED, N_SAVED));
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmlens_lstm_stack_backward", [&] {
    res = stack_backward<scalar_t>(s, saved, dout, dhn, dcn);
  });
  const Tensor none = at::empty({0}, x.options());
  for (auto& t : res)
    if (!t.defined()) t = none;
  return res;
}

}  // namespace lstmlens
