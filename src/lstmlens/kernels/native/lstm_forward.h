// Forward of the native LSTM: one layer-direction, whole sequence, every variant.
//
// Same maths as kernels/fused.py (see its docstring); gate rows stay in the caller's block order
// (a subset of i, f, g, o), so no weight is permuted.
//
//   x W_ih^T (+ LN), a chunk of steps at a time   one GEMM per ~2 MB of gates
//   per step: G[t] += h_in W_hh^T                  one GEMM on the packed weight
//             (fgr: += [h_in | s_{t-1}] W_rec^T    the gate recurrence folded in, common.h)
//             + b, gates, c', h'                   one fused loop over (B, H)
// The fused loops run rows (batch entries) in parallel; small problems run on one thread.
//
// Shapes: x (T, B, I), h0 (B, P), c0 (B, H), keep_h (T, B, 1|P), keep_c (T, B, 1|H), rmask (B, P).
// Weights: a list in the order of enum Slot (layout.h); absent ones are empty. The arguments are
// checked (checks.h) before this runs, and T, B >= 1.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common.h"
#include "layout.h"

namespace lstmlens {

constexpr double LN_EPS = 1e-5;

template <typename T>
std::vector<Tensor> forward(const Tensor& x, const Tensor& h0, const Tensor& c0, at::TensorList w,
                            const Layout& L, const Tensor& keep_h, const Tensor& keep_c,
                            const Tensor& rmask, bool train) {
  const int64_t Tn = x.size(0), B = x.size(1), I = x.size(2);
  const int64_t H = L.H, P = L.P, G = L.G, S = L.S, V = Vec<T>::size();
  const auto opt = x.options();
  const Tensor none;

  // The input projection x W_ih^T is computed a chunk of steps (~2 MB) at a time, just before
  // those steps read it, so it is still in cache. Training keeps all T steps of G (the gate
  // activations are saved); inference reuses one chunk's buffer.
  const int64_t chunk = std::clamp<int64_t>((int64_t(1) << 21) / (B * G * sizeof(T)), 1, Tn);
  const int64_t gsteps = train ? Tn : chunk;
  Tensor Gt = at::empty({gsteps, B, G}, opt);  // pre-activations, then activations
  Tensor XN, rstd_x;  // layer norm: the normalised input projection (the gains come per step)
  if (L.ln) {
    XN = at::empty_like(Gt);
    rstd_x = at::empty({gsteps, B, 1}, opt);
  }
  TORCH_CHECK(!L.bf16 || (std::is_same_v<T, float>), "lstmlens native: bf16 needs float32");
  Tensor xb, wb;  // bf16 mode: x and W_ih rounded to bfloat16 once
  if (L.bf16) xb = x.to(at::kBFloat16), wb = w[W_IH].contiguous().to(at::kBFloat16);
  auto project = [&](int64_t t0) {  // steps [t0, t0 + chunk)
    const int64_t rows = (std::min(t0 + chunk, Tn) - t0) * B, r0 = (train ? t0 : 0) * B;
    T* dst = (L.ln ? ptr<T>(XN) : ptr<T>(Gt)) + r0 * G;
    if constexpr (std::is_same_v<T, float>) {
      if (L.bf16) {
        gemm_bf16(false, true, rows, G, I, xb.data_ptr<at::BFloat16>() + t0 * B * I, I,
                  wb.data_ptr<at::BFloat16>(), I, 0.0f, dst, G);
      }
    }
    if (!L.bf16) {
      gemm_rm<T>(rows, G, I, x.data_ptr<T>() + t0 * B * I, I, w[W_IH].data_ptr<T>(), true, T(0),
                 dst, G);
    }
    if (L.ln) {
      T* rx = ptr<T>(rstd_x) + r0;
      for_rows(rows, G, [&](int64_t r) { rx[r] = ln_row(dst + r * G, dst + r * G, G, LN_EPS); });
    }
  };
  const T* bias = nullptr;  // b_ih + b_hh, added per step
  Tensor bsum;
  if (w[B_IH].numel()) {
    bsum = w[B_IH] + w[B_HH];
    bias = ptr<T>(bsum);
  }

  // buffers: saved for backward when training, else one step's worth reused (stride 0)
  const int64_t ts = train ? 1 : 0;
  Tensor out = at::empty({Tn, B, P}, opt);
  Tensor C = at::empty({train ? Tn + 1 : 2, B, H}, opt);  // carried cells (inference: ping-pong)
  C[0].copy_(c0);
  Tensor CN = keep_c.defined() ? at::empty({train ? Tn : 1, B, H}, opt) : none;  // c' before keep
  Tensor Y = at::empty({train ? Tn : 1, B, H}, opt);  // output activation of (normalised) c'
  Tensor RN, rstd_r, CNn, rstd_c, SA, SR, M, HN, HIN;
  if (L.ln) {
    RN = at::empty({train ? Tn : 1, B, G}, opt);
    rstd_r = at::empty({train ? Tn : 1, B, 1}, opt);
    CNn = at::empty({train ? Tn : 1, B, H}, opt);
    rstd_c = at::empty({train ? Tn : 1, B, 1}, opt);
  }
  // full gate recurrence: folded into the recurrent product (common.h), except with layer
  // norm, which normalises h W_hh^T alone
  const bool fold = L.fgr && !L.ln && fold_fgr().load();
  Tensor HS;  // fold: one step's [h_in | s_{t-1}]
  if (L.fgr) {
    SA = at::empty({train ? Tn : 2, B, S}, opt);  // sigmoid-gate activations [i, f, o]
    if (fold)
      HS = at::empty({B, P + S}, opt);
    else
      SR = at::empty({B, S}, opt);  // s_{t-1} W_gate^T
  }
  if (L.proj) M = at::empty({B, H}, opt);
  if (L.proj && keep_h.defined()) HN = at::empty({B, P}, opt);
  if (rmask.defined()) HIN = at::empty({B, P}, opt);

  const Tensor w_rec = fold ? fold_gate_recurrence(w[W_HH], w[W_GATE], H,
                                                    {{L.oi, L.si}, {L.of, L.sf}, {L.oo, L.so}})
                           : w[W_HH];
  StepGemm<T> rec(w_rec, true, B, L.bf16), prj, gat;
  if (L.proj) prj = StepGemm<T>(w[W_HR], true, B, L.bf16);
  if (L.fgr && !fold) {  // with fgr_bf16 (float, MKL only): this product alone in bfloat16
    const bool bf = L.bf16 || (std::is_same_v<T, float> && fgr_bf16().load());
    gat = StepGemm<T>(w[W_GATE], true, B, bf);
  }
  const T *pi = ptr<T>(w[P_I]), *pf = ptr<T>(w[P_F]), *po = ptr<T>(w[P_O]);
  const T *ln_ih = ptr<T>(w[LN_IH]), *ln_hh = ptr<T>(w[LN_HH]);
  const T *lncw = ptr<T>(w[LN_CW]), *lncb = ptr<T>(w[LN_CB]);
  const T* rm = ptr<T>(rmask);

  // raw pointers of the buffers (nullptr where absent), looked up once
  T* const p_out = ptr<T>(out);
  T* const p_C = ptr<T>(C);
  T* const p_CN = ptr<T>(CN);
  T* const p_Y = ptr<T>(Y);
  T* const p_RN = ptr<T>(RN);
  T* const p_rstd_r = ptr<T>(rstd_r);
  T* const p_CNn = ptr<T>(CNn);
  T* const p_rstd_c = ptr<T>(rstd_c);
  T* const p_SA = ptr<T>(SA);
  T* const p_SR = ptr<T>(SR);
  T* const p_M = ptr<T>(M);
  T* const p_HN = ptr<T>(HN);
  T* const p_HIN = ptr<T>(HIN);
  T* const p_XN = ptr<T>(XN);
  T* const p_Gt = ptr<T>(Gt);

  for (int64_t t = 0; t < Tn; ++t) {
    if (t % chunk == 0) project(t);
    const int64_t gs = train ? t : t % chunk;  // step t's slot in Gt / XN
    const T* hprev = t ? p_out + (t - 1) * B * P : h0.data_ptr<T>();
    T* a_t = p_Gt + gs * B * G;
    T* c_prev = p_C + (train ? t : t % 2) * B * H;
    T* c_next = p_C + (train ? t + 1 : (t + 1) % 2) * B * H;
    T* cn_t = CN.defined() ? p_CN + t * ts * B * H : c_next;
    T* y_t = p_Y + t * ts * B * H;
    T* out_t = p_out + t * B * P;
    T* rn_t = L.ln ? p_RN + t * ts * B * G : nullptr;
    T* sa_t = L.fgr ? p_SA + (train ? t : t % 2) * B * S : nullptr;
    const T* sa_prev = L.fgr && t ? p_SA + (train ? t - 1 : (t - 1) % 2) * B * S : nullptr;

    const T* hin = hprev;
    if (rm) {
      T* hi = p_HIN;
      for (int64_t k = 0; k < B * P; k += V) {
        const int64_t n = std::min(V, B * P - k);
        st(ld(hprev + k, n) * ld(rm + k, n), hi + k, n);
      }
      hin = hi;
    }
    if (L.ln) {
      rec.run(hin, P, T(0), rn_t, G);  // raw h W_hh^T, normalised per row below
    } else if (fold) {  // G[t] += [h_in | s_{t-1}] W_rec^T
      concat_rows<T>(B, hin, P, sa_prev, S, ptr<T>(HS));
      rec.run(ptr<T>(HS), P + S, T(1), a_t, G);
    } else {
      rec.run(hin, P, T(1), a_t, G);
    }
    if (L.fgr && !fold) {
      if (t)
        gat.run(sa_prev, S, T(0), p_SR, S);
      else
        SR.zero_();
    }
    T* m_base = L.proj ? p_M : (keep_h.defined() ? nullptr : out_t);

    for_rows(B, G, [&](int64_t b) {
      T* a = a_t + b * G;
      if (L.ln) {  // a = LN(x W_ih^T) g_ih + LN(h W_hh^T) g_hh
        T* rn = rn_t + b * G;
        const T* xn = p_XN + (gs * B + b) * G;
        p_rstd_r[t * ts * B + b] = ln_row(rn, rn, G, LN_EPS);
        for (int64_t j = 0; j < G; j += V) {
          const int64_t n = std::min(V, G - j);
          st(ld(xn + j, n) * ld(ln_ih + j, n) + ld(rn + j, n) * ld(ln_hh + j, n), a + j, n);
        }
      }
      const T* c = c_prev + b * H;
      T* cn = cn_t + b * H;
      T* y = y_t + b * H;
      const T* sr = p_SR ? p_SR + b * S : nullptr;  // unfolded gate recurrence
      T* sa = L.fgr ? sa_t + b * S : nullptr;
      const T* hp = hprev + b * P;
      T* mrow = m_base ? m_base + b * (L.proj ? H : P) : nullptr;
      T* orow = out_t + b * P;
      const auto kh = keep_row<T>(keep_h, t, b), kc = keep_row<T>(keep_c, t, b);
      const Vec<T> one(T(1));
      auto pre = [&](int64_t off, int64_t j, int64_t n) {  // pre-activation: G[t] + b
        return bias ? ld(a + off + j, n) + ld(bias + off + j, n) : ld(a + off + j, n);
      };
      // m = o * act(c') -> the row's output (before projection and keep)
      auto emit = [&](int64_t j, int64_t n, const Vec<T>& m) {
        if (L.proj) {
          st(m, mrow + j, n);
        } else if (kh.p) {
          st(lerp(m, ld(hp + j, n), kh.at(j, n)), orow + j, n);
        } else {
          st(m, mrow + j, n);
        }
      };
      for (int64_t j = 0; j < H; j += V) {
        const int64_t n = std::min(V, H - j);
        const auto vc = ld(c + j, n);
        Vec<T> vi = one, vf = one, vo = one;
        if (L.has_i) {
          auto ai = pre(L.oi, j, n);
          if (sr) ai = ai + ld(sr + L.si + j, n);
          if (L.peep) ai = ai + ld(pi + j, n) * vc;
          vi = sigmoid(ai);
          st(vi, a + L.oi + j, n);
        }
        if (L.has_f) {
          auto af = pre(L.of, j, n);
          if (sr) af = af + ld(sr + L.sf + j, n);
          if (L.peep) af = af + ld(pf + j, n) * vc;
          vf = sigmoid(af);
          st(vf, a + L.of + j, n);
        } else if (L.coupled) {
          vf = one - vi;
        }
        auto vg = pre(L.og, j, n);
        if (L.tanh_in) vg = vtanh(vg);
        st(vg, a + L.og + j, n);
        const auto vcn = vf * vc + vi * vg;
        st(vcn, cn + j, n);
        if (L.has_o) {
          auto ao = pre(L.oo, j, n);
          if (sr) ao = ao + ld(sr + L.so + j, n);
          if (L.peep) ao = ao + ld(po + j, n) * vcn;
          vo = sigmoid(ao);
          st(vo, a + L.oo + j, n);
        }
        if (sa) {
          if (L.has_i) st(vi, sa + L.si + j, n);
          if (L.has_f) st(vf, sa + L.sf + j, n);
          if (L.has_o) st(vo, sa + L.so + j, n);
        }
        if (kc.p) st(lerp(vcn, vc, kc.at(j, n)), c_next + b * H + j, n);
        if (!L.ln) {
          const auto vy = L.tanh_out ? vtanh(vcn) : vcn;
          st(vy, y + j, n);
          emit(j, n, vo * vy);
        }
      }
      if (L.ln) {  // h' = o * act(LN(c')): needs the whole row of c' first
        T* cnn = p_CNn + (t * ts * B + b) * H;
        p_rstd_c[t * ts * B + b] = ln_row(cn, cnn, H, LN_EPS);
        for (int64_t j = 0; j < H; j += V) {
          const int64_t n = std::min(V, H - j);
          const auto chat = ld(cnn + j, n) * ld(lncw + j, n) + ld(lncb + j, n);
          const auto vy = L.tanh_out ? vtanh(chat) : chat;
          st(vy, y + j, n);
          emit(j, n, L.has_o ? ld(a + L.oo + j, n) * vy : vy);
        }
      }
    });

    if (L.proj) {  // h' = W_hr m (then keep)
      T* dst = keep_h.defined() ? p_HN : out_t;
      prj.run(p_M, H, T(0), dst, P);
      if (keep_h.defined()) {
        for_rows(B, P, [&](int64_t b) {
          const auto kh = keep_row<T>(keep_h, t, b);
          for (int64_t j = 0; j < P; j += V) {
            const int64_t n = std::min(V, P - j);
            st(lerp(ld(dst + b * P + j, n), ld(hprev + b * P + j, n), kh.at(j, n)),
               out_t + b * P + j, n);
          }
        });
      }
    }
  }

  Tensor h_n = out[Tn - 1].clone();
  Tensor c_n = C[train ? Tn : Tn % 2].clone();
  if (!train) return {out, h_n, c_n};
  std::vector<Tensor> saved(N_SAVED);  // undefined where absent
  saved[SV_OUT] = out, saved[SV_HN] = h_n, saved[SV_CN] = c_n, saved[SV_C] = C;
  saved[SV_CNEW] = CN, saved[SV_GATES] = Gt, saved[SV_Y] = Y, saved[SV_XN] = XN;
  saved[SV_RSTD_X] = rstd_x, saved[SV_RN] = RN, saved[SV_RSTD_R] = rstd_r;
  saved[SV_CNORM] = CNn, saved[SV_RSTD_C] = rstd_c, saved[SV_SIG] = SA;
  return saved;
}

}  // namespace lstmlens
