// A whole stacked LSTM in one op, its layers and directions run concurrently (chains.h).
//
//   one direction, L layers: a wavefront over time. The sequence is cut into K chunks of steps;
//       layer l runs chunk k while layer l+1 runs chunk k-1 (forward), and layer l runs chunk k
//       while layer l-1 runs chunk k+1 (backward): L chains, K + L - 1 chunk-times instead of
//       K * L. Each chunk is the one-layer kernel (lstm_forward.h / lstm_backward.h) run from
//       the states the previous chunk left; the weight gradients are summed over the chunks.
//   two directions: per layer, both directions at once (2 chains); a layer needs all of the
//       layer below (its reverse direction reads the sequence from the end), so layers follow
//       one another.
//
// Between layers: layer l+1 reads out_l * drop_l (drop_l (T, B, D*P), the dropout mask drawn in
// Python exactly as F.dropout draws it, or none), with the directions' outputs concatenated, the
// reverse one read backwards within each sequence's length (rev (T, B) step indices, or a flip).
// Shapes: x (T, B, I), h0 (L*D, B, P), c0 (L*D, B, H); w: the N_SLOTS weight slots of each
// layer-direction in turn (l*D + d); keep_h / keep_c / rmask: one (or none) per layer-direction.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "chains.h"
#include "common.h"
#include "layout.h"
#include "lstm_backward.h"
#include "lstm_forward.h"

namespace lstmlens {

struct Stack {
  const Layout& L;
  int64_t layers, dirs, chunks;  // chunks: 1 with two directions
  Tensor x, h0, c0;
  at::TensorList w;
  std::vector<Tensor> keep_h, keep_c, rmask;  // per layer-direction, undefined when absent
  std::vector<Tensor> drop;                   // per layer boundary (layers - 1)
  Tensor rev;                                 // (T, B) int64 or undefined

  int64_t steps() const { return x.size(0); }
  int64_t start(int64_t k) const { return k * steps() / chunks; }
  int64_t len(int64_t k) const { return start(k + 1) - start(k); }
  // chunk k of a time-major tensor (undefined stays undefined)
  Tensor piece(const Tensor& t, int64_t k) const {
    return t.defined() && chunks > 1 ? t.narrow(0, start(k), len(k)) : t;
  }
  at::TensorList weights(int64_t ld) const { return w.slice(ld * N_SLOTS, N_SLOTS); }
  // each sequence read backwards within its length (its own inverse)
  Tensor reverse(const Tensor& t) const {
    if (!rev.defined()) return t.flip(0);
    return t.gather(0, rev.unsqueeze(-1).expand(t.sizes()));
  }
  Tensor dropped(const Tensor& t, int64_t boundary, int64_t k) const {
    const Tensor& m = drop[boundary];
    return m.defined() ? t * piece(m, k) : t;
  }
};

// Per layer-direction and chunk, the one-layer kernel's results (out, h_n, c_n[, saved ...]).
using Grid = std::vector<std::vector<std::vector<Tensor>>>;

// The input of layer l (chunk k with one direction; whole with two), from the layer below's
// outputs `outs(ld, k)`.
template <typename Outs>
Tensor layer_input(const Stack& s, int64_t l, int64_t k, const Outs& outs) {
  if (l == 0) return s.piece(s.x, k);
  const int64_t below = (l - 1) * s.dirs;
  Tensor o = s.dirs == 1 ? outs(below, k) : at::cat({outs(below, 0), s.reverse(outs(below + 1, 0))}, 2);
  return s.dropped(o, l - 1, k);
}

// Forward: {out (T, B, D*P), h_n (L*D, B, P), c_n (L*D, B, H)}, then with `train` the
// one-layer kernel's N_SAVED tensors of every layer-direction and chunk (ld-major).
template <typename T>
std::vector<Tensor> stack_forward(const Stack& s, bool train) {
  const int64_t D = s.dirs, LD = s.layers * D, K = s.chunks;
  Grid res(LD, std::vector<std::vector<Tensor>>(K));
  auto outs = [&](int64_t ld, int64_t k) { return res[ld][k][0]; };
  auto run = [&](int64_t ld, int64_t k, const Tensor& xin) {
    const Tensor h = k ? res[ld][k - 1][1] : s.h0[ld];
    const Tensor c = k ? res[ld][k - 1][2] : s.c0[ld];
    res[ld][k] = forward<T>(xin.contiguous(), h, c, s.weights(ld), s.L, s.piece(s.keep_h[ld], k),
                            s.piece(s.keep_c[ld], k), s.rmask[ld], train);
  };
  if (D == 1) {
    run_chains(s.layers, [&](size_t l, Board& board) {
      for (int64_t k = 0; k < K; ++k) {
        if (l) board.wait(l - 1, k + 1);
        run(l, k, layer_input(s, l, k, outs));
        board.post(l, k + 1);
      }
    });
  } else {
    for (int64_t l = 0; l < s.layers; ++l) {
      const Tensor xin = layer_input(s, l, 0, outs);
      run_chains(2, [&](size_t d, Board&) { run(l * 2 + d, 0, d ? s.reverse(xin) : xin); });
    }
  }
  const int64_t top = (s.layers - 1) * D;
  Tensor out;
  if (D == 2) {
    out = at::cat({outs(top, 0), s.reverse(outs(top + 1, 0))}, 2);
  } else {
    std::vector<Tensor> parts;
    for (int64_t k = 0; k < K; ++k) parts.push_back(outs(top, k));
    out = K == 1 ? parts[0] : at::cat(parts);
  }
  std::vector<Tensor> hn, cn;
  for (int64_t ld = 0; ld < LD; ++ld) hn.push_back(res[ld][K - 1][1]), cn.push_back(res[ld][K - 1][2]);
  std::vector<Tensor> result{out, at::stack(hn), at::stack(cn)};
  if (!train) return result;
  const Tensor none = at::empty({0}, s.x.options());
  for (auto& per_ld : res)
    for (auto& saved : per_ld)
      for (auto& t : saved) result.push_back(t.defined() ? t : none);
  return result;
}

// Backward: {dx, dh0 (L*D, B, P), dc0 (L*D, B, H)}, then the N_SLOTS weight gradients of every
// layer-direction (empty for absent slots). `saved`: what stack_forward returned after its
// first three tensors.
template <typename T>
std::vector<Tensor> stack_backward(const Stack& s, at::TensorList saved, const Tensor& d_out,
                                   const Tensor& d_hn, const Tensor& d_cn) {
  const int64_t D = s.dirs, LD = s.layers * D, K = s.chunks, P = s.L.P;
  auto sv = [&](int64_t ld, int64_t k) { return saved.slice((ld * K + k) * N_SAVED, N_SAVED); };
  auto outs = [&](int64_t ld, int64_t k) { return sv(ld, k)[SV_OUT]; };
  Grid res(LD, std::vector<std::vector<Tensor>>(K));  // {dx, dh0, dc0} of each chunk
  std::vector<std::vector<Tensor>> dw(LD);            // summed over the chunks
  auto run = [&](int64_t ld, int64_t k, const Tensor& xin, const Tensor& dout) {
    const Tensor h = k ? sv(ld, k - 1)[SV_HN] : s.h0[ld];
    const bool last = k == K - 1;
    const Tensor dh = !last ? res[ld][k + 1][1] : d_hn.defined() ? d_hn[ld] : Tensor();
    const Tensor dc = !last ? res[ld][k + 1][2] : d_cn.defined() ? d_cn[ld] : Tensor();
    auto r = backward<T>(xin.contiguous(), h, s.weights(ld), s.L, s.piece(s.keep_h[ld], k),
                         s.piece(s.keep_c[ld], k), s.rmask[ld], sv(ld, k),
                         dout.defined() ? dout.contiguous() : dout, dh, dc);
    if (last) {
      dw[ld].assign(r.begin() + 3, r.end());
    } else {
      for (int i = 0; i < N_SLOTS; ++i) dw[ld][i].add_(r[3 + i]);
    }
    r.resize(3);
    res[ld][k] = std::move(r);
  };
  Tensor dx;
  if (D == 1) {
    run_chains(s.layers, [&](size_t l, Board& board) {
      for (int64_t k = K - 1; k >= 0; --k) {
        Tensor dout = s.piece(d_out, k);
        if (l + 1 < size_t(s.layers)) {
          board.wait(l + 1, K - k);
          dout = s.dropped(res[l + 1][k][0], l, k);
        }
        run(l, k, layer_input(s, l, k, outs), dout);
        board.post(l, K - k);
      }
    });
    std::vector<Tensor> parts;
    for (int64_t k = 0; k < K; ++k) parts.push_back(res[0][k][0]);
    dx = K == 1 ? parts[0] : at::cat(parts);
  } else {
    Tensor dnext = d_out;  // d (input of layer l+1), (T, B, 2P)
    for (int64_t l = s.layers - 1; l >= 0; --l) {
      const Tensor xin = layer_input(s, l, 0, outs);
      run_chains(2, [&](size_t d, Board&) {
        Tensor dout = dnext.defined() ? dnext.narrow(2, d * P, P) : dnext;
        if (d && dout.defined()) dout = s.reverse(dout);
        run(l * 2 + d, 0, d ? s.reverse(xin) : xin, dout);
      });
      dnext = res[l * 2][0][0] + s.reverse(res[l * 2 + 1][0][0]);
      if (l) dnext = s.dropped(dnext, l - 1, 0);
    }
    dx = dnext;
  }
  std::vector<Tensor> dh0, dc0;
  for (int64_t ld = 0; ld < LD; ++ld) dh0.push_back(res[ld][0][1]), dc0.push_back(res[ld][0][2]);
  std::vector<Tensor> result{dx, at::stack(dh0), at::stack(dc0)};
  for (auto& g : dw) result.insert(result.end(), g.begin(), g.end());
  return result;
}

}  // namespace lstmlens
