// The native ops (torch.ops.lstmlens_native): each checks its arguments (checks.h), answers an
// empty batch or sequence with empty outputs, and runs its kernel in float32 or float64.
//
//   lstm_forward / lstm_backward   lstm_forward.h, lstm_backward.h (every variant and option)
//   gru_forward / gru_backward, rnn_forward / rnn_backward              gru_rnn.h
//   lstm_stack_forward / lstm_stack_backward   stack_ops.h (a whole stack, wavefront.h)
//
// The forward ops have C++ autograd kernels (autograd.h): their backward is the matching
// *_backward op, eagerly and under torch.compile / torch.export alike.
//
// The library also exports lstmlens_native_abi() (C linkage): the names of the weight slots,
// config ints, saved tensors and ops, generated from layout.h and LSTMLENS_OPS below. The
// Python loader compares them with its own lists before using the library, and
// lstmlens_native_step_engine() (C linkage), the per-step GEMM engine (common.h StepEngine).
#include <torch/library.h>

#include <optional>
#include <string>
#include <vector>

#include "checks.h"
#include "common.h"
#include "gru_rnn.h"
#include "layout.h"
#include "lstm_backward.h"
#include "lstm_forward.h"
#include "stack_ops.h"

namespace lstmlens {
namespace {

Tensor value(const std::optional<Tensor>& t) { return t.value_or(Tensor()); }

Tensor contig(const std::optional<Tensor>& t) {
  return t.has_value() && t->defined() ? t->contiguous() : Tensor();
}

Tensor none_like(const Tensor& x) { return at::empty({0}, x.options()); }

// the gradient of a weight that received none: zeros, or empty for an absent slot
Tensor zero_grad(const Tensor& w) { return w.numel() ? at::zeros_like(w) : w.new_empty({0}); }

// incoming gradient of a state, or zeros
Tensor grad_or_zeros(const Tensor& d, const Tensor& x, int64_t B, int64_t n) {
  return d.defined() ? d.clone() : at::zeros({B, n}, x.options());
}

}  // namespace

std::vector<Tensor> lstm_forward(const Tensor& x, const Tensor& h0, const Tensor& c0,
                                 at::TensorList w, at::IntArrayRef cfg,
                                 const std::optional<Tensor>& keep_h,
                                 const std::optional<Tensor>& keep_c,
                                 const std::optional<Tensor>& rmask, bool train) {
  const Layout L(cfg);
  const Tensor kh = value(keep_h), kc = value(keep_c), rm = value(rmask);
  const Checker c = check_lstm(L, x, h0, w, kh, kc, rm);
  const int64_t Tn = x.size(0), B = x.size(1);
  c.tensor("c0", c0, {{"B", B}, {"H", L.H}});
  if (Tn == 0 || B == 0) {  // nothing to run: empty outputs, the states pass through
    std::vector<Tensor> res{at::empty({Tn, B, L.P}, x.options()), h0.clone(), c0.clone()};
    if (train) res.resize(N_SAVED, none_like(x));
    return res;
  }
  SerialScope serial(B * L.G * L.P < kSmallStep);
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmlens_lstm_forward", [&] {
    res = forward<scalar_t>(x, h0, c0, w, L, kh, kc, rm, train);
  });
  for (auto& t : res)  // undefined tensors cannot cross the op boundary: absent ones are empty
    if (!t.defined()) t = none_like(x);
  return res;
}

std::vector<Tensor> lstm_backward(const Tensor& x, const Tensor& h0, at::TensorList w,
                                  at::IntArrayRef cfg, const std::optional<Tensor>& keep_h,
                                  const std::optional<Tensor>& keep_c,
                                  const std::optional<Tensor>& rmask, at::TensorList saved,
                                  const std::optional<Tensor>& d_out,
                                  const std::optional<Tensor>& d_hn,
                                  const std::optional<Tensor>& d_cn) {
  const Layout L(cfg);
  const Tensor kh = contig(keep_h), kc = contig(keep_c), rm = contig(rmask);
  const Tensor dout = contig(d_out), dhn = contig(d_hn), dcn = contig(d_cn);
  const Checker c = check_lstm(L, x, h0, w, kh, kc, rm);
  const int64_t Tn = x.size(0), B = x.size(1);
  check_lstm_grads(c, L, x, dout, dhn, dcn);
  if (Tn == 0 || B == 0) {  // the states passed through; no weight was used
    std::vector<Tensor> res{at::zeros_like(x), grad_or_zeros(dhn, x, B, L.P),
                            grad_or_zeros(dcn, x, B, L.H)};
    for (const auto& t : w) res.push_back(zero_grad(t));
    return res;
  }
  check_lstm_saved(c, L, x, saved);
  SerialScope serial(B * L.G * L.P < kSmallStep);
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmlens_lstm_backward", [&] {
    res = backward<scalar_t>(x, h0, w, L, kh, kc, rm, saved, dout, dhn, dcn);
  });
  return res;
}

// -- GRU and RNN -------------------------------------------------------------------------------

namespace {

// empty outputs of a GRU (gates 3H) or RNN (1H) forward over T = 0 or B = 0 steps
std::vector<Tensor> simple_empty_forward(const Tensor& x, const Tensor& h0, int64_t H, bool gru,
                                         bool train) {
  const int64_t Tn = x.size(0), B = x.size(1);
  std::vector<Tensor> res{at::empty({Tn, B, H}, x.options()), h0.clone()};
  if (train) {
    res.push_back(at::empty({Tn, B, gru ? 3 * H : H}, x.options()));
    if (gru) res.push_back(at::empty({Tn, B, H}, x.options()));
  }
  return res;
}

std::vector<Tensor> simple_empty_backward(const Tensor& x, at::TensorList w, const Tensor& d_hn,
                                          int64_t H) {
  std::vector<Tensor> res{at::zeros_like(x), grad_or_zeros(d_hn, x, x.size(1), H)};
  for (const auto& t : w) res.push_back(zero_grad(t));
  return res;
}

int64_t serial_size(const Tensor& x, at::TensorList w) {
  return x.size(1) * w[S_W_HH].size(0) * w[S_W_HH].size(1);
}

}  // namespace

std::vector<Tensor> gru_forward(const Tensor& x, const Tensor& h0, at::TensorList w,
                                const std::optional<Tensor>& keep_h, bool train) {
  const Tensor keep = value(keep_h);
  const int64_t H = check_simple("lstmlens native GRU", 3, x, h0, w, keep).second;
  if (x.size(0) == 0 || x.size(1) == 0) return simple_empty_forward(x, h0, H, true, train);
  SerialScope serial(serial_size(x, w) < kSmallStep);
  std::vector<Tensor> r;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmlens_gru_forward",
                             [&] { r = gru_fwd<scalar_t>(x, h0, w, keep, train); });
  return r;
}

std::vector<Tensor> gru_backward(const Tensor& x, const Tensor& h0, at::TensorList w,
                                 const std::optional<Tensor>& keep_h, at::TensorList saved,
                                 const std::optional<Tensor>& d_out,
                                 const std::optional<Tensor>& d_hn) {
  const Tensor keep = contig(keep_h), dout = contig(d_out), dhn = contig(d_hn);
  const auto [c, H] = check_simple("lstmlens native GRU", 3, x, h0, w, keep);
  check_simple_grads(c, H, x, dout, dhn);
  if (x.size(0) == 0 || x.size(1) == 0) return simple_empty_backward(x, w, dhn, H);
  check_simple_saved(c, true, H, x, saved);
  SerialScope serial(serial_size(x, w) < kSmallStep);
  std::vector<Tensor> r;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmlens_gru_backward", [&] {
    r = gru_bwd<scalar_t>(x, h0, w, keep, saved, dout, dhn);
  });
  return r;
}

std::vector<Tensor> rnn_forward(const Tensor& x, const Tensor& h0, at::TensorList w,
                                const std::optional<Tensor>& keep_h, bool relu, bool train) {
  const Tensor keep = value(keep_h);
  const int64_t H = check_simple("lstmlens native RNN", 1, x, h0, w, keep).second;
  if (x.size(0) == 0 || x.size(1) == 0) return simple_empty_forward(x, h0, H, false, train);
  SerialScope serial(serial_size(x, w) < kSmallStep);
  std::vector<Tensor> r;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmlens_rnn_forward",
                             [&] { r = rnn_fwd<scalar_t>(x, h0, w, keep, relu, train); });
  return r;
}

std::vector<Tensor> rnn_backward(const Tensor& x, const Tensor& h0, at::TensorList w,
                                 const std::optional<Tensor>& keep_h, bool relu,
                                 at::TensorList saved, const std::optional<Tensor>& d_out,
                                 const std::optional<Tensor>& d_hn) {
  const Tensor keep = contig(keep_h), dout = contig(d_out), dhn = contig(d_hn);
  const auto [c, H] = check_simple("lstmlens native RNN", 1, x, h0, w, keep);
  check_simple_grads(c, H, x, dout, dhn);
  if (x.size(0) == 0 || x.size(1) == 0) return simple_empty_backward(x, w, dhn, H);
  check_simple_saved(c, false, H, x, saved);
  SerialScope serial(serial_size(x, w) < kSmallStep);
  std::vector<Tensor> r;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmlens_rnn_backward", [&] {
    r = rnn_bwd<scalar_t>(x, h0, w, keep, relu, saved, dout, dhn);
  });
  return r;
}

}  // namespace lstmlens

#include "autograd.h"  // (after the kernels: it calls them through the dispatcher by type)

// X(name, schema after the name): every op, registered and listed in the ABI from this table
#define LSTMLENS_OPS(X)                                                                         \
  X(lstm_forward,                                                                               \
    "(Tensor x, Tensor h0, Tensor c0, Tensor[] w, int[] cfg, Tensor? keep_h, Tensor? keep_c, "  \
    "Tensor? rmask, bool train) -> Tensor[]")                                                   \
  X(lstm_backward,                                                                              \
    "(Tensor x, Tensor h0, Tensor[] w, int[] cfg, Tensor? keep_h, Tensor? keep_c, "             \
    "Tensor? rmask, Tensor[] saved, Tensor? d_out, Tensor? d_hn, Tensor? d_cn) -> Tensor[]")   \
  X(gru_forward, "(Tensor x, Tensor h0, Tensor[] w, Tensor? keep_h, bool train) -> Tensor[]")  \
  X(gru_backward,                                                                               \
    "(Tensor x, Tensor h0, Tensor[] w, Tensor? keep_h, Tensor[] saved, Tensor? d_out, "         \
    "Tensor? d_hn) -> Tensor[]")                                                                \
  X(rnn_forward,                                                                                \
    "(Tensor x, Tensor h0, Tensor[] w, Tensor? keep_h, bool relu, bool train) -> Tensor[]")     \
  X(rnn_backward,                                                                               \
    "(Tensor x, Tensor h0, Tensor[] w, Tensor? keep_h, bool relu, Tensor[] saved, "             \
    "Tensor? d_out, Tensor? d_hn) -> Tensor[]")                                                \
  X(lstm_stack_forward,                                                                         \
    "(Tensor x, Tensor h0, Tensor c0, Tensor[] w, int[] cfg, int layers, int dirs, int chunks, " \
    "Tensor?[] keep_h, Tensor?[] keep_c, Tensor?[] rmask, Tensor?[] drop, Tensor? rev, "         \
    "bool train) -> Tensor[]")                                                                  \
  X(lstm_stack_backward,                                                                        \
    "(Tensor x, Tensor h0, Tensor[] w, int[] cfg, int layers, int dirs, int chunks, "           \
    "Tensor?[] keep_h, Tensor?[] keep_c, Tensor?[] rmask, Tensor?[] drop, Tensor? rev, "         \
    "Tensor[] saved, Tensor? d_out, Tensor? d_hn, Tensor? d_cn) -> Tensor[]")

TORCH_LIBRARY(lstmlens_native, m) {
#define LSTMLENS_DEF(name, schema) m.def(#name schema);
  LSTMLENS_OPS(LSTMLENS_DEF)
#undef LSTMLENS_DEF
}

TORCH_LIBRARY_IMPL(lstmlens_native, CPU, m) {
#define LSTMLENS_IMPL(name, schema) m.impl(#name, &lstmlens::name);
  LSTMLENS_OPS(LSTMLENS_IMPL)
#undef LSTMLENS_IMPL
}

TORCH_LIBRARY_IMPL(lstmlens_native, Autograd, m) {
  m.impl("lstm_forward", &lstmlens::autograd::lstm_forward_autograd);
  m.impl("gru_forward", &lstmlens::autograd::gru_forward_autograd);
  m.impl("rnn_forward", &lstmlens::autograd::rnn_forward_autograd);
}

// "lstm_slots=weight_ih,...;lstm_config=...;...;ops=lstm_forward,...;" (see kernels/native/abi.py)
extern "C" __attribute__((visibility("default"))) const char* lstmlens_native_abi() {
  using namespace lstmlens;
  static const std::string text = [] {
#define LSTMLENS_OP_NAME(name, schema) #name,
    static constexpr const char* ops[] = {LSTMLENS_OPS(LSTMLENS_OP_NAME)};
#undef LSTMLENS_OP_NAME
    return abi_entry("lstm_slots", kSlotNames) + abi_entry("lstm_config", kCfgNames) +
           abi_entry("lstm_saved", kSavedNames) + abi_entry("simple_slots", kSimpleSlotNames) +
           abi_entry("gru_saved", kGruSavedNames) + abi_entry("rnn_saved", kRnnSavedNames) +
           abi_entry("ops", ops);
  }();
  return text.c_str();
}

// Sets the per-step GEMM engine (common.h StepEngine) when `engine` is one, and returns the one
// in force before (-1 leaves it); kernels/native/engine.py calls it through ctypes.
extern "C" __attribute__((visibility("default"))) int lstmlens_native_step_engine(int engine) {
  const int prev = lstmlens::step_engine().load();
  if (engine >= 0 && engine < lstmlens::kNumEngines) lstmlens::step_engine().store(engine);
  return prev;
}

// Sets whether full gate recurrence is folded into the recurrent product (common.h fold_fgr)
// when `on` is 0 or 1, and returns the setting before (-1 leaves it).
extern "C" __attribute__((visibility("default"))) int lstmlens_native_fold_fgr(int on) {
  const int prev = lstmlens::fold_fgr().load();
  if (on == 0 || on == 1) lstmlens::fold_fgr().store(on == 1);
  return prev;
}

// Sets whether float32 kernels run fgr's gate-recurrence product in bfloat16 (common.h
// fgr_bf16) when `on` is 0 or 1, and returns the setting before (-1 leaves it).
extern "C" __attribute__((visibility("default"))) int lstmlens_native_fgr_bf16(int on) {
  const int prev = lstmlens::fgr_bf16().load();
  if (on == 0 || on == 1) lstmlens::fgr_bf16().store(on == 1);
  return prev;
}
