// Native GRU and Elman RNN: whole-sequence forward and backward. Same scheme as the
// LSTM: the input projection of all steps in one GEMM, per step one GEMM on the packed W_hh and
// one fused loop over (B, H), all weight gradients at the end.
//
// GRU (gate order r, z, n):  r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r * hn),
//     hn = W_hn h + b_hn,   h' = (1 - z) n + z h
// backward:  da_n = dh' (1-z)(1-n²),  da_z = dh' (h-n) z(1-z),  da_r = da_n hn r(1-r)
//            dh = dh' z + [da_r, da_z, da_n r] W_hh
// RNN:  h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh),  act = tanh or relu
//
// Weights: [W_ih, W_hh, b_ih, b_hh] (biases empty when absent). keep_h: (T, B, 1|H).
// The arguments are checked (checks.h) before these run, and T, B >= 1.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common.h"
#include "layout.h"

namespace lstmlens {

// dh = carried + dout_t ; dh' = (1-k) dh -> dhn ; k dh stays in the carry (zero without keep)
template <typename T>
inline void split_dh(T* carry, const T* dout, T* dhn, const Tensor& keep, int64_t t, int64_t b,
                     int64_t B, int64_t H) {
  const int64_t V = Vec<T>::size();
  const auto k = keep_row<T>(keep, t, b);
  T* d = carry + b * H;
  for (int64_t j = 0; j < H; j += V) {
    const int64_t n = std::min(V, H - j);
    auto v = ld(d + j, n);
    if (dout) v = v + ld(dout + (t * B + b) * H + j, n);
    const auto kv = k.p ? k.at(j, n) * v : Vec<T>(T(0));
    st(v - kv, dhn + b * H + j, n);
    st(kv, d + j, n);
  }
}

template <typename T>
Tensor input_projection(const Tensor& x, const Tensor& W, const Tensor& b) {
  const int64_t Tn = x.size(0), B = x.size(1), I = x.size(2), N = W.size(0);
  // clone, not contiguous(): with T * B == 1 the expanded bias is already contiguous and
  // contiguous() would return the bias itself, which the GEMM below then overwrites
  Tensor out = b.numel() ? b.expand({Tn, B, N}).clone(at::MemoryFormat::Contiguous)
                         : at::empty({Tn, B, N}, x.options());
  gemm_rm<T>(Tn * B, N, I, x.data_ptr<T>(), I, W.data_ptr<T>(), true, T(b.numel() ? 1 : 0),
             out.data_ptr<T>(), N);
  return out;
}

template <typename T>
std::vector<Tensor> gru_fwd(const Tensor& x, const Tensor& h0, at::TensorList w,
                            const Tensor& keep, bool train) {
  const int64_t Tn = x.size(0), B = x.size(1), H = w[S_W_HH].size(1), V = Vec<T>::size();
  Tensor A = input_projection<T>(x, w[S_W_IH], w[S_B_IH]);  // (T, B, 3H): activations r, z, n
  Tensor HN = at::empty({train ? Tn : 1, B, H}, x.options());  // W_hn h + b_hn
  Tensor HW = at::empty({B, 3 * H}, x.options());
  Tensor out = at::empty({Tn, B, H}, x.options());
  StepGemm<T> rec(w[S_W_HH], true, B);
  const T* bhh = ptr<T>(w[S_B_HH]);
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hprev = t ? ptr<T>(out) + (t - 1) * B * H : h0.data_ptr<T>();
    rec.run(hprev, H, T(0), ptr<T>(HW), 3 * H);
    T* hn_t = ptr<T>(HN) + (train ? t : 0) * B * H;
    for_rows(B, 3 * H, [&](int64_t b) {
      T* a = ptr<T>(A) + (t * B + b) * 3 * H;
      const T* hw = ptr<T>(HW) + b * 3 * H;
      const T* hp = hprev + b * H;
      T* o = ptr<T>(out) + (t * B + b) * H;
      const auto k = keep_row<T>(keep, t, b);
      const Vec<T> one(T(1));
      for (int64_t j = 0; j < H; j += V) {
        const int64_t n = std::min(V, H - j);
        auto hr = ld(hw + j, n), hz = ld(hw + H + j, n), hn = ld(hw + 2 * H + j, n);
        if (bhh) {
          hr = hr + ld(bhh + j, n), hz = hz + ld(bhh + H + j, n);
          hn = hn + ld(bhh + 2 * H + j, n);
        }
        const auto r = sigmoid(ld(a + j, n) + hr), z = sigmoid(ld(a + H + j, n) + hz);
        const auto nn = vtanh(ld(a + 2 * H + j, n) + r * hn);
        st(r, a + j, n), st(z, a + H + j, n), st(nn, a + 2 * H + j, n);
        st(hn, hn_t + b * H + j, n);
        const auto vh = ld(hp + j, n);
        auto h = nn + z * (vh - nn);
        if (k.p) h = h + k.at(j, n) * (vh - h);
        st(h, o + j, n);
      }
    });
  }
  Tensor h_n = out[Tn - 1].clone();
  if (!train) return {out, h_n};
  return {out, h_n, A, HN};  // GruSaved order
}

template <typename T>
std::vector<Tensor> gru_bwd(const Tensor& x, const Tensor& h0, at::TensorList w,
                            const Tensor& keep, at::TensorList saved, const Tensor& d_out,
                            const Tensor& d_hn) {
  const int64_t Tn = x.size(0), B = x.size(1), I = x.size(2), H = w[S_W_HH].size(1);
  const int64_t V = Vec<T>::size();
  const Tensor &out = saved[GS_OUT], &A = saved[GS_GATES], &HN = saved[GS_HW];
  Tensor dh = d_hn.defined() ? d_hn.clone() : at::zeros({B, H}, x.options());
  Tensor dX = at::empty({Tn, B, 3 * H}, x.options());  // d input pre-activations [r, z, n]
  Tensor dW = at::empty({Tn, B, 3 * H}, x.options());  // d recurrent pre-activations
  Tensor DHN = at::empty({B, H}, x.options());
  StepGemm<T> rec(w[S_W_HH], false, B);
  T *dhp = ptr<T>(dh), *dhn = ptr<T>(DHN);
  const T* dout = ptr<T>(d_out);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* hprev = t ? ptr<T>(out) + (t - 1) * B * H : h0.data_ptr<T>();
    for_rows(B, 3 * H, [&](int64_t b) {
      split_dh(dhp, dout, dhn, keep, t, b, B, H);
      const T* a = ptr<T>(A) + (t * B + b) * 3 * H;
      const T* hn = ptr<T>(HN) + (t * B + b) * H;
      const T* hp = hprev + b * H;
      T* dx = ptr<T>(dX) + (t * B + b) * 3 * H;
      T* dw = ptr<T>(dW) + (t * B + b) * 3 * H;
      T* d = dhp + b * H;
      const Vec<T> one(T(1));
      for (int64_t j = 0; j < H; j += V) {
        const int64_t n = std::min(V, H - j);
        const auto r = ld(a + j, n), z = ld(a + H + j, n), nn = ld(a + 2 * H + j, n);
        const auto g = ld(dhn + b * H + j, n);
        const auto dan = g * (one - z) * (one - nn * nn);
        const auto daz = g * (ld(hp + j, n) - nn) * z * (one - z);
        const auto dar = dan * ld(hn + j, n) * r * (one - r);
        st(dar, dx + j, n), st(daz, dx + H + j, n), st(dan, dx + 2 * H + j, n);
        st(dar, dw + j, n), st(daz, dw + H + j, n), st(dan * r, dw + 2 * H + j, n);
        st(ld(d + j, n) + g * z, d + j, n);
      }
    });
    rec.run(ptr<T>(dW) + t * B * 3 * H, 3 * H, T(1), dhp, H);
  }
  const int64_t R = Tn * B;
  Tensor Hp = at::cat({h0.unsqueeze(0), out.narrow(0, 0, Tn - 1)}).view({R, H});
  Tensor dX2 = dX.view({R, 3 * H}), dW2 = dW.view({R, 3 * H});
  Tensor e = at::empty({0}, x.options());
  const bool bias = w[S_B_IH].numel() > 0;
  return {at::mm(dX2, w[S_W_IH]).view({Tn, B, I}), dh, at::mm(dX2.t(), x.view({R, I})),
          at::mm(dW2.t(), Hp), bias ? dX2.sum(0) : e, bias ? dW2.sum(0) : e};
}

template <typename T>
std::vector<Tensor> rnn_fwd(const Tensor& x, const Tensor& h0, at::TensorList w,
                            const Tensor& keep, bool relu, bool train) {
  const int64_t Tn = x.size(0), B = x.size(1), H = w[S_W_HH].size(1), V = Vec<T>::size();
  Tensor b = w[S_B_IH].numel() ? w[S_B_IH] + w[S_B_HH] : w[S_B_IH];
  Tensor A = input_projection<T>(x, w[S_W_IH], b);  // (T, B, H) -> activations
  Tensor out = keep.defined() ? at::empty({Tn, B, H}, x.options()) : A;
  StepGemm<T> rec(w[S_W_HH], true, B);
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hprev = t ? ptr<T>(out) + (t - 1) * B * H : h0.data_ptr<T>();
    T* a_t = ptr<T>(A) + t * B * H;
    rec.run(hprev, H, T(1), a_t, H);
    for_rows(B, H, [&](int64_t b) {
      T* a = a_t + b * H;
      const auto k = keep_row<T>(keep, t, b);
      for (int64_t j = 0; j < H; j += V) {
        const int64_t n = std::min(V, H - j);
        auto v = ld(a + j, n);
        v = relu ? at::vec::maximum(v, Vec<T>(T(0))) : vtanh(v);
        st(v, a + j, n);
        if (k.p) {
          const auto vh = ld(hprev + b * H + j, n);
          st(v + k.at(j, n) * (vh - v), ptr<T>(out) + (t * B + b) * H + j, n);
        }
      }
    });
  }
  Tensor h_n = out[Tn - 1].clone();
  if (!train) return {out, h_n};
  // RnnSaved order; an op's outputs must not alias (out is A itself when nothing is masked)
  return {out, h_n, keep.defined() ? A : A.clone()};
}

template <typename T>
std::vector<Tensor> rnn_bwd(const Tensor& x, const Tensor& h0, at::TensorList w,
                            const Tensor& keep, bool relu, at::TensorList saved,
                            const Tensor& d_out, const Tensor& d_hn) {
  const int64_t Tn = x.size(0), B = x.size(1), I = x.size(2), H = w[S_W_HH].size(1);
  const int64_t V = Vec<T>::size();
  const Tensor &out = saved[RS_OUT], &A = saved[RS_ACTS];
  Tensor dh = d_hn.defined() ? d_hn.clone() : at::zeros({B, H}, x.options());
  Tensor dA = at::empty({Tn, B, H}, x.options());
  StepGemm<T> rec(w[S_W_HH], false, B);
  T* dhp = ptr<T>(dh);
  const T* dout = ptr<T>(d_out);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    T* da_t = ptr<T>(dA) + t * B * H;
    for_rows(B, H, [&](int64_t b) {
      split_dh(dhp, dout, da_t, keep, t, b, B, H);
      const T* a = ptr<T>(A) + (t * B + b) * H;
      T* da = da_t + b * H;
      const Vec<T> one(T(1)), zero(T(0));
      for (int64_t j = 0; j < H; j += V) {
        const int64_t n = std::min(V, H - j);
        const auto v = ld(a + j, n);
        st(ld(da + j, n) * (relu ? v.gt(zero) : one - v * v), da + j, n);
      }
    });
    rec.run(da_t, H, T(1), dhp, H);
  }
  const int64_t R = Tn * B;
  Tensor Hp = at::cat({h0.unsqueeze(0), out.narrow(0, 0, Tn - 1)}).view({R, H});
  Tensor dA2 = dA.view({R, H});
  Tensor e = at::empty({0}, x.options());
  Tensor db = w[S_B_IH].numel() ? dA2.sum(0) : e;
  return {at::mm(dA2, w[S_W_IH]).view({Tn, B, I}), dh, at::mm(dA2.t(), x.view({R, I})),
          at::mm(dA2.t(), Hp), db, w[S_B_IH].numel() ? db.clone() : e};
}

}  // namespace lstmlens
