// Autograd kernels of the forward ops (dispatch key Autograd), in C++.
//
// lstm_forward, gru_forward and rnn_forward are differentiable; their backward is the matching
// *_backward op. Each kernel here:
//
//   * without a graph to record (grad mode off, or no input requiring grad): calls the op below
//     autograd, at the cost of one C++ check. Eager inference under torch.no_grad and a
//     compiled inference graph pay nothing for autograd (a Python autograd kernel, the
//     torch.library.register_autograd kind, costs tens of microseconds a call);
//   * otherwise: a torch::autograd::Function. Its forward runs the op below autograd and keeps
//     the inputs and every output; the outputs past the results (the saved intermediates of
//     train=True) are non-differentiable, and gradients are not materialised (an output that
//     gets none passes an empty optional to the backward op).
//
// The same kernel runs eagerly and under torch.compile / torch.export: AOTAutograd traces the
// forward op and, through this Function's backward, the backward op. A forward run with
// train=False kept nothing to differentiate; its backward says so in one line.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

#include <optional>
#include <string>
#include <vector>

namespace lstmlens {
namespace autograd {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptT = std::optional<Tensor>;

inline bool needs_graph(const variable_list& inputs) {
  if (!at::GradMode::is_enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

inline OptT maybe(const Tensor& t) { return t.defined() ? OptT(t) : std::nullopt; }

inline void check_trained(AutogradContext* ctx, const char* op) {
  TORCH_CHECK(ctx->saved_data["trained"].toBool(), "lstmlens_native.", op,
              ": this call ran without saving for backward (train=False, e.g. a program "
              "exported under torch.no_grad()); run it under torch.no_grad() or trace it with "
              "gradients enabled");
}

// Keep what the backward op needs: the inputs, then every output; outputs past the first
// `results` are non-differentiable.
inline void keep(AutogradContext* ctx, variable_list inputs, const std::vector<Tensor>& res,
                 size_t results) {
  ctx->set_materialize_grads(false);
  ctx->saved_data["trained"] = res.size() > results;
  ctx->saved_data["n_inputs"] = static_cast<int64_t>(inputs.size());
  if (res.size() > results)
    ctx->mark_non_differentiable(variable_list(res.begin() + results, res.end()));
  inputs.insert(inputs.end(), res.begin(), res.end());
  ctx->save_for_backward(inputs);
}

inline std::pair<variable_list, variable_list> unpack(AutogradContext* ctx) {
  auto all = ctx->get_saved_variables();
  const auto n = ctx->saved_data["n_inputs"].toInt();
  return {variable_list(all.begin(), all.begin() + n), variable_list(all.begin() + n, all.end())};
}

// -- LSTM --------------------------------------------------------------------------------------

inline const auto& lstm_forward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lstmlens_native::lstm_forward", "")
                       .typed<decltype(lstm_forward)>();
  return op;
}

inline const auto& lstm_backward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lstmlens_native::lstm_backward", "")
                       .typed<decltype(lstm_backward)>();
  return op;
}

struct LSTMFunction : public torch::autograd::Function<LSTMFunction> {
  // saved: x, h0, keep_h, keep_c, rmask, w..., outputs...
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& h0,
                               const Tensor& c0, at::TensorList w, at::IntArrayRef cfg,
                               const OptT& keep_h, const OptT& keep_c, const OptT& rmask,
                               bool train) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto res = lstm_forward_op().call(x, h0, c0, w, cfg, keep_h, keep_c, rmask, train);
    ctx->saved_data["cfg"] = cfg.vec();
    variable_list inputs{x, h0, keep_h.value_or(Tensor()), keep_c.value_or(Tensor()),
                         rmask.value_or(Tensor())};
    inputs.insert(inputs.end(), w.begin(), w.end());
    keep(ctx, std::move(inputs), res, 3);
    return res;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    check_trained(ctx, "lstm_forward");
    auto [in, saved] = unpack(ctx);
    const variable_list w(in.begin() + 5, in.end());
    const auto cfg = ctx->saved_data["cfg"].toIntVector();
    auto g = lstm_backward_op().call(in[0], in[1], w, cfg, maybe(in[2]), maybe(in[3]),
                                     maybe(in[4]), saved, maybe(grads[0]), maybe(grads[1]),
                                     maybe(grads[2]));
    // one gradient per forward argument: x, h0, c0, each weight; none for cfg, the masks, train
    g.resize(g.size() + 5);
    return g;
  }
};

inline std::vector<Tensor> lstm_forward_autograd(const Tensor& x, const Tensor& h0,
                                                 const Tensor& c0, at::TensorList w,
                                                 at::IntArrayRef cfg, const OptT& keep_h,
                                                 const OptT& keep_c, const OptT& rmask,
                                                 bool train) {
  variable_list inputs{x, h0, c0};
  inputs.insert(inputs.end(), w.begin(), w.end());
  if (!needs_graph(inputs)) {
    at::AutoDispatchBelowADInplaceOrView below;
    return lstm_forward_op().call(x, h0, c0, w, cfg, keep_h, keep_c, rmask, train);
  }
  return LSTMFunction::apply(x, h0, c0, w, cfg, keep_h, keep_c, rmask, train);
}

// -- GRU and RNN ---------------------------------------------------------------------------------

inline const auto& gru_forward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lstmlens_native::gru_forward", "")
                       .typed<decltype(gru_forward)>();
  return op;
}

inline const auto& gru_backward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lstmlens_native::gru_backward", "")
                       .typed<decltype(gru_backward)>();
  return op;
}

inline const auto& rnn_forward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lstmlens_native::rnn_forward", "")
                       .typed<decltype(rnn_forward)>();
  return op;
}

inline const auto& rnn_backward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lstmlens_native::rnn_backward", "")
                       .typed<decltype(rnn_backward)>();
  return op;
}

// A GRU (relu: nullopt) or an RNN; saved: x, h0, keep_h, w..., outputs...
struct SimpleFunction : public torch::autograd::Function<SimpleFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& h0,
                               at::TensorList w, const OptT& keep_h, std::optional<bool> relu,
                               bool train) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto res = relu ? rnn_forward_op().call(x, h0, w, keep_h, *relu, train)
                    : gru_forward_op().call(x, h0, w, keep_h, train);
    ctx->saved_data["relu"] = relu ? static_cast<int64_t>(*relu) : -1;
    variable_list inputs{x, h0, keep_h.value_or(Tensor())};
    inputs.insert(inputs.end(), w.begin(), w.end());
    keep(ctx, std::move(inputs), res, 2);
    return res;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto relu = ctx->saved_data["relu"].toInt();
    check_trained(ctx, relu < 0 ? "gru_forward" : "rnn_forward");
    auto [in, saved] = unpack(ctx);
    const variable_list w(in.begin() + 3, in.end());
    auto g = relu < 0 ? gru_backward_op().call(in[0], in[1], w, maybe(in[2]), saved,
                                               maybe(grads[0]), maybe(grads[1]))
                      : rnn_backward_op().call(in[0], in[1], w, maybe(in[2]), relu == 1, saved,
                                               maybe(grads[0]), maybe(grads[1]));
    // one gradient per forward argument: x, h0, each weight; none for keep_h, relu, train
    g.resize(g.size() + 3);
    return g;
  }
};

inline std::vector<Tensor> simple_forward_autograd(const Tensor& x, const Tensor& h0,
                                                   at::TensorList w, const OptT& keep_h,
                                                   std::optional<bool> relu, bool train) {
  variable_list inputs{x, h0};
  inputs.insert(inputs.end(), w.begin(), w.end());
  if (!needs_graph(inputs)) {
    at::AutoDispatchBelowADInplaceOrView below;
    return relu ? rnn_forward_op().call(x, h0, w, keep_h, *relu, train)
                : gru_forward_op().call(x, h0, w, keep_h, train);
  }
  return SimpleFunction::apply(x, h0, w, keep_h, relu, train);
}

inline std::vector<Tensor> gru_forward_autograd(const Tensor& x, const Tensor& h0,
                                                at::TensorList w, const OptT& keep_h,
                                                bool train) {
  return simple_forward_autograd(x, h0, w, keep_h, std::nullopt, train);
}

inline std::vector<Tensor> rnn_forward_autograd(const Tensor& x, const Tensor& h0,
                                                at::TensorList w, const OptT& keep_h, bool relu,
                                                bool train) {
  return simple_forward_autograd(x, h0, w, keep_h, relu, train);
}

}  // namespace autograd
}  // namespace lstmlens
