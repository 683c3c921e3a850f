// Backward of the native LSTM: one layer-direction, whole sequence. Per step, from T-1:
//
//   dh     = dh_{t+1 -> t} + dout_t ;  dh' = (1-k_h) dh ;  dc' = (1-k_c) dc    (keep masks)
//   dm     = dh' W_hr  (projection)  or dh'
//   dy     = dm * o ;  dĉ = dy * (1 - y²) ;  dc' += LN_c^T(dĉ) or dĉ
//   da_o   = (dm * y + ds_o) o (1-o) ;  dc' += da_o p_o
//   da_g   = dc' i (1 - g²) ;  df = dc' c (+ ds_f) ;  di = dc' g (+ ds_i) (- df if coupled)
//   da_i   = di i (1-i) ;  da_f = df f (1-f)
//   dc_{t-1} = k_c dc + dc' f + da_i p_i + da_f p_f
//   dR     = LN_hh^T(da) or da ;  dh_{t-1} = k_h dh + (dR W_hh) * rmask
//   ds_{t-1} = da_[i,f,o] W_gate   (without layer norm folded into one product with the above:
//                                   [dh_in | ds_{t-1}] = dA W_rec, W_rec = [W_hh | E], common.h)
//
// then the weight matrices' gradients at once: dW_hh = dR^T H_in, dW_ih = dX^T x, dx = dX W_ih;
// the vectors' gradients (biases, peepholes, LN gains) are summed as the steps go.
// The arguments are checked (checks.h) before this runs, and T, B >= 1.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common.h"
#include "layout.h"

namespace lstmlens {

template <typename T>
std::vector<Tensor> backward(const Tensor& x, const Tensor& h0, at::TensorList w, const Layout& L,
                             const Tensor& keep_h, const Tensor& keep_c, const Tensor& rmask,
                             at::TensorList saved, const Tensor& d_out, const Tensor& d_hn,
                             const Tensor& d_cn) {
  const int64_t Tn = x.size(0), B = x.size(1), I = x.size(2);
  const int64_t H = L.H, P = L.P, G = L.G, S = L.S, V = Vec<T>::size();
  const auto opt = x.options();
  const Tensor &out = saved[SV_OUT], &C = saved[SV_C], &Gt = saved[SV_GATES], &Y = saved[SV_Y];
  const Tensor CN = saved[SV_CNEW].numel() ? saved[SV_CNEW] : C.narrow(0, 1, Tn);
  const Tensor &XN = saved[SV_XN], &rstd_x = saved[SV_RSTD_X], &RN = saved[SV_RN];
  const Tensor &rstd_r = saved[SV_RSTD_R], &CNn = saved[SV_CNORM], &rstd_c = saved[SV_RSTD_C];
  const Tensor& SA = saved[SV_SIG];

  Tensor dh = d_hn.defined() ? d_hn.clone() : at::zeros({B, P}, opt);
  Tensor dc = d_cn.defined() ? d_cn.clone() : at::zeros({B, H}, opt);
  // d pre-activations: kept for all steps only when they are also dX and dR (no layer norm)
  Tensor dA = at::empty({L.ln ? 1 : Tn, B, G}, opt);
  Tensor dR = L.ln ? at::empty({Tn, B, G}, opt) : dA;  // d (h_in W_hh^T)
  Tensor dX = L.ln ? at::empty({Tn, B, G}, opt) : dA;  // d (x W_ih^T)
  Tensor dHN = at::empty({L.proj ? Tn : 1, B, P}, opt);  // dh' (kept for dW_hr)
  Tensor DM = L.proj ? at::empty({B, H}, opt) : Tensor();
  Tensor DLN = L.ln ? at::empty({B, H}, opt) : Tensor();  // LN_c^T(dĉ), one step
  Tensor dS, DS, DHS;
  const bool fold = L.fgr && !L.ln && fold_fgr().load();  // the gate recurrence folded into W_rec (common.h)
  if (L.fgr) {
    dS = at::empty({Tn, B, S}, opt);  // da of the sigmoid gates, [i, f, o] order
    DS = at::zeros({B, S}, opt);      // ds flowing into step t-1
    if (fold) DHS = at::empty({B, P + S}, opt);  // dA W_rec = [dh_in | ds_{t-1}]
  }
  Tensor TMP = rmask.defined() ? at::empty({B, P}, opt) : Tensor();

  // gradients of the vectors (biases, peepholes, LN gains): summed over rows as the steps go,
  // one accumulator row per thread
  int64_t width = 0;
  auto take = [&](bool used, int64_t n) {
    const int64_t off = used ? width : -1;
    width += used ? n : 0;
    return off;
  };
  const bool bias = w[B_IH].numel() > 0;
  const int64_t a_b = take(bias, G), a_lnih = take(L.ln, G), a_lnhh = take(L.ln, G);
  const int64_t a_lncw = take(L.ln, H), a_lncb = take(L.ln, H);
  const int64_t a_pi = take(L.peep && L.has_i, H), a_pf = take(L.peep && L.has_f, H);
  const int64_t a_po = take(L.peep && L.has_o, H);
  const int64_t nthreads = at::get_num_threads();
  Tensor acc = at::zeros({nthreads, std::max<int64_t>(width, 1)}, opt);
  T* const p_acc = acc.data_ptr<T>();
  auto acc_row = [&]() {
    const int64_t tid = at::get_thread_num();
    TORCH_CHECK(tid < nthreads, "lstmlens native: thread id out of range");
    return p_acc + tid * width;
  };
  // ac[j..j+n) += v
  auto add = [](T* ac, int64_t j, int64_t n, const Vec<T>& v) { st(ld(ac + j, n) + v, ac + j, n); };

  const Tensor w_rec = fold ? fold_gate_recurrence(w[W_HH], w[W_GATE], H,
                                                    {{L.oi, L.si}, {L.of, L.sf}, {L.oo, L.so}})
                           : w[W_HH];
  StepGemm<T> rec(w_rec, false, B, L.bf16), prj, gat;
  if (L.proj) prj = StepGemm<T>(w[W_HR], false, B, L.bf16);
  if (L.fgr && !fold) {  // with fgr_bf16 (float, MKL only): this product alone in bfloat16
    const bool bf = L.bf16 || (std::is_same_v<T, float> && fgr_bf16().load());
    gat = StepGemm<T>(w[W_GATE], false, B, bf);
  }
  const T *pi = ptr<T>(w[P_I]), *pf = ptr<T>(w[P_F]), *po = ptr<T>(w[P_O]);
  const T *ln_ih = ptr<T>(w[LN_IH]), *ln_hh = ptr<T>(w[LN_HH]), *lncw = ptr<T>(w[LN_CW]);
  const T *rm = ptr<T>(rmask), *dout = ptr<T>(d_out);
  T *dhp = ptr<T>(dh), *dcp = ptr<T>(dc);

  // raw pointers of the buffers (nullptr where absent), looked up once
  T* const p_Y = ptr<T>(Y);
  T* const p_C = ptr<T>(C);
  T* const p_CN = ptr<T>(CN);
  T* const p_DS = ptr<T>(DS);
  T* const p_dS = ptr<T>(dS);
  T* const p_CNn = ptr<T>(CNn);
  T* const p_DLN = ptr<T>(DLN);
  T* const p_rstd_c = ptr<T>(rstd_c);
  T* const p_dR = ptr<T>(dR);
  T* const p_dX = ptr<T>(dX);
  T* const p_RN = ptr<T>(RN);
  T* const p_XN = ptr<T>(XN);
  T* const p_rstd_r = ptr<T>(rstd_r);
  T* const p_rstd_x = ptr<T>(rstd_x);
  T* const p_dHN = ptr<T>(dHN);
  T* const p_DM = ptr<T>(DM);
  T* const p_Gt = ptr<T>(Gt);
  T* const p_dA = ptr<T>(dA);
  T* const p_TMP = ptr<T>(TMP);

  for (int64_t t = Tn - 1; t >= 0; --t) {
    T* dhn_t = p_dHN + (L.proj ? t : 0) * B * P;
    // dh = carried + dout_t;  dh' = (1-k_h) dh  ->  dhn_t;  k_h dh stays in the carry
    auto split_dh = [&](int64_t b) {
      const auto kh = keep_row<T>(keep_h, t, b);
      T* d = dhp + b * P;
      for (int64_t j = 0; j < P; j += V) {
        const int64_t n = std::min(V, P - j);
        auto v = ld(d + j, n);
        if (dout) v = v + ld(dout + (t * B + b) * P + j, n);
        if (kh.p) {
          const auto k = kh.at(j, n);
          st(v - k * v, dhn_t + b * P + j, n);
          st(k * v, d + j, n);
        } else {
          st(v, dhn_t + b * P + j, n);
        }
      }
    };
    if (L.proj) for_rows(B, P, split_dh);  // the projection needs all of dh' first
    const T* dm_t = dhn_t;
    if (L.proj) {
      prj.run(dhn_t, P, T(0), p_DM, H);
      dm_t = p_DM;
    }
    const T* a_t = p_Gt + t * B * G;
    T* da_t = p_dA + (L.ln ? 0 : t) * B * G;

    for_rows(B, G, [&](int64_t b) {
      if (!L.proj) split_dh(b);  // row b of dh' is all this row needs
      T* ac = acc_row();
      const T* a = a_t + b * G;
      T* da = da_t + b * G;
      const T* dm = dm_t + b * H;
      const T* y = p_Y + (t * B + b) * H;
      const T* c = p_C + (t * B + b) * H;
      const T* cn = p_CN + (t * B + b) * H;
      T* dcr = dcp + b * H;
      const T* ds = L.fgr ? p_DS + b * S : nullptr;
      T* dsa = L.fgr ? p_dS + (t * B + b) * S : nullptr;
      const auto kc = keep_row<T>(keep_c, t, b);
      const Vec<T> one(T(1)), zero(T(0));
      T* dln = nullptr;
      if (L.ln) {  // dĉ for the whole row, then LN_c^T(dĉ * gain)
        const T* cnn = p_CNn + (t * B + b) * H;
        dln = p_DLN + b * H;
        Vec<T> s1(T(0)), s2(T(0));
        for (int64_t j = 0; j < H; j += V) {
          const int64_t n = std::min(V, H - j);
          auto dy = ld(dm + j, n);
          if (L.has_o) dy = dy * ld(a + L.oo + j, n);
          if (L.tanh_out) {
            const auto vy = ld(y + j, n);
            dy = dy * (one - vy * vy);
          }
          const auto vcn = ld(cnn + j, n), dl = dy * ld(lncw + j, n);
          add(ac + a_lncw, j, n, dy * vcn);
          add(ac + a_lncb, j, n, dy);
          st(dl, dln + j, n);
          s1 = s1 + dl, s2 = s2 + dl * vcn;
        }
        ln_row_backward(dln, cnn, p_rstd_c[t * B + b], H, hsum(s1), hsum(s2));
      }
      for (int64_t j = 0; j < H; j += V) {
        const int64_t n = std::min(V, H - j);
        auto dcn = ld(dcr + j, n);
        Vec<T> dcprev = zero;
        if (kc.p) {
          const auto k = kc.at(j, n);
          dcprev = k * dcn;
          dcn = dcn - dcprev;
        }
        const auto vdm = ld(dm + j, n), vy = ld(y + j, n);
        const auto vo = L.has_o ? ld(a + L.oo + j, n) : one;
        if (L.ln) {
          dcn = dcn + ld(dln + j, n);
        } else {
          const auto dy = vdm * vo;
          dcn = dcn + (L.tanh_out ? dy * (one - vy * vy) : dy);
        }
        Vec<T> dao = zero, dai = zero, daf = zero;
        if (L.has_o) {
          auto dO = vdm * vy;
          if (ds) dO = dO + ld(ds + L.so + j, n);
          dao = dO * vo * (one - vo);
          st(dao, da + L.oo + j, n);
          if (bias) add(ac + a_b + L.oo, j, n, dao);
          if (L.peep) {
            dcn = dcn + dao * ld(po + j, n);
            add(ac + a_po, j, n, dao * ld(cn + j, n));
          }
        }
        const auto vi = L.has_i ? ld(a + L.oi + j, n) : one;
        const auto vg = ld(a + L.og + j, n);
        const auto dg = dcn * vi;
        const auto dag = L.tanh_in ? dg * (one - vg * vg) : dg;
        st(dag, da + L.og + j, n);
        if (bias) add(ac + a_b + L.og, j, n, dag);
        const auto vc = ld(c + j, n);
        Vec<T> df = zero, vf = one;
        if (L.has_f || L.coupled) df = dcn * vc;
        if (L.has_f) {
          if (ds) df = df + ld(ds + L.sf + j, n);
          vf = ld(a + L.of + j, n);
        } else if (L.coupled) {
          vf = one - vi;
        }
        dcprev = dcprev + dcn * vf;
        if (L.has_i) {
          auto di = dcn * vg;
          if (ds) di = di + ld(ds + L.si + j, n);
          if (L.coupled) di = di - df;
          dai = di * vi * (one - vi);
          st(dai, da + L.oi + j, n);
          if (bias) add(ac + a_b + L.oi, j, n, dai);
          if (L.peep) {
            dcprev = dcprev + dai * ld(pi + j, n);
            add(ac + a_pi, j, n, dai * vc);
          }
        }
        if (L.has_f) {
          daf = df * vf * (one - vf);
          st(daf, da + L.of + j, n);
          if (bias) add(ac + a_b + L.of, j, n, daf);
          if (L.peep) {
            dcprev = dcprev + daf * ld(pf + j, n);
            add(ac + a_pf, j, n, daf * vc);
          }
        }
        st(dcprev, dcr + j, n);
        if (dsa) {
          if (L.has_i) st(dai, dsa + L.si + j, n);
          if (L.has_f) st(daf, dsa + L.sf + j, n);
          if (L.has_o) st(dao, dsa + L.so + j, n);
        }
      }
      if (L.ln) {  // dR = LN_hh^T(da * gain_hh), dX = LN_ih^T(da * gain_ih)
        const int64_t r = t * B + b;
        T *dr = p_dR + r * G, *dx = p_dX + r * G;
        const T *rn = p_RN + r * G, *xn = p_XN + r * G;
        Vec<T> s_r(T(0)), s_rr(T(0)), s_x(T(0)), s_xx(T(0));  // the LN backward's two sums
        for (int64_t j = 0; j < G; j += V) {  // (padding lanes load as 0: they add nothing)
          const int64_t n = std::min(V, G - j);
          const auto vda = ld(da + j, n), vrn = ld(rn + j, n), vxn = ld(xn + j, n);
          add(ac + a_lnhh, j, n, vda * vrn);
          add(ac + a_lnih, j, n, vda * vxn);
          const auto vr = vda * ld(ln_hh + j, n), vx = vda * ld(ln_ih + j, n);
          st(vr, dr + j, n);
          st(vx, dx + j, n);
          s_r = s_r + vr, s_rr = s_rr + vr * vrn, s_x = s_x + vx, s_xx = s_xx + vx * vxn;
        }
        ln_row_backward(dr, rn, p_rstd_r[r], G, hsum(s_r), hsum(s_rr));
        ln_row_backward(dx, xn, p_rstd_x[r], G, hsum(s_x), hsum(s_xx));
      }
    });

    const T* dr_t = p_dR + t * B * G;
    if (fold) {  // [dh_in | ds_{t-1}] = dA W_rec;  dh = k_h dh + dh_in * rmask
      T* dhs = ptr<T>(DHS);
      rec.run(dr_t, G, T(0), dhs, P + S);
      const bool keep = keep_h.defined();
      for (int64_t b = 0; b < B; ++b) {
        const T* row = dhs + b * (P + S);
        for (int64_t j = 0; j < P; j += V) {
          const int64_t n = std::min(V, P - j);
          auto v = ld(row + j, n);
          if (rm) v = v * ld(rm + b * P + j, n);
          st(keep ? ld(dhp + b * P + j, n) + v : v, dhp + b * P + j, n);
        }
        std::copy(row + P, row + P + S, p_DS + b * S);
      }
      continue;
    }
    if (L.fgr) gat.run(p_dS + t * B * S, S, T(0), p_DS, S);
    if (rm) {  // dh = k_h dh + (dR W_hh) * rmask
      rec.run(dr_t, G, T(0), p_TMP, P);
      const T* tmp = p_TMP;
      const bool keep = keep_h.defined();
      for (int64_t k = 0; k < B * P; k += V) {
        const int64_t n = std::min(V, B * P - k);
        const auto v = ld(tmp + k, n) * ld(rm + k, n);
        st(keep ? ld(dhp + k, n) + v : v, dhp + k, n);
      }
    } else {
      rec.run(dr_t, G, T(keep_h.defined() ? 1 : 0), dhp, P);
    }
  }

  // weight gradients of all steps at once
  const int64_t R = Tn * B;
  std::vector<Tensor> g(N_SLOTS);
  Tensor Hin = at::cat({h0.unsqueeze(0), out.narrow(0, 0, Tn - 1)});  // (T, B, P)
  if (rmask.defined()) Hin = Hin * rmask;
  const bool bf = L.bf16;
  g[W_HH] = mm(dR.view({R, G}).t(), Hin.view({R, P}), bf);
  Tensor dX2 = dX.view({R, G});
  Tensor dx = mm(dX2, w[W_IH], bf).view({Tn, B, I});
  g[W_IH] = mm(dX2.t(), x.view({R, I}), bf);
  if (L.proj) {
    Tensor Mm = L.has_o ? Y * Gt.narrow(2, L.oo, H) : Y;  // m = o * y, (T, B, H)
    g[W_HR] = mm(dHN.view({R, P}).t(), Mm.reshape({R, H}), bf);
  }
  if (L.fgr) {
    Tensor Sp = at::cat({at::zeros({1, B, S}, opt), SA.narrow(0, 0, Tn - 1)});  // s_{t-1}
    g[W_GATE] = mm(dS.view({R, S}).t(), Sp.view({R, S}), bf);
  }
  Tensor sums = acc.sum(0);
  auto part = [&](int64_t off, int64_t n) { return sums.narrow(0, off, n).clone(); };
  if (bias) {
    g[B_IH] = part(a_b, G);
    g[B_HH] = part(a_b, G);
  }
  if (L.ln) {
    g[LN_IH] = part(a_lnih, G), g[LN_HH] = part(a_lnhh, G);
    g[LN_CW] = part(a_lncw, H), g[LN_CB] = part(a_lncb, H);
  }
  if (a_pi >= 0) g[P_I] = part(a_pi, H);
  if (a_pf >= 0) g[P_F] = part(a_pf, H);
  if (a_po >= 0) g[P_O] = part(a_po, H);
  std::vector<Tensor> res{dx, dh, dc};
  for (auto& t : g) res.push_back(t.defined() ? t : at::empty({0}, opt));
  return res;
}

}  // namespace lstmlens
