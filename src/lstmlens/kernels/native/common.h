// Shared pieces of the native kernels: the two GEMM engines and the vector maths.
//
// Every product here is row-major, written as in F.linear:
//     C (M, N) = beta * C + A (M, K) @ op(W),   op(W) = W^T for W (N, K) ("trans"), W for W (K, N)
//
// * gemm_rm:  one product through ATen (at::mm: MKL sgemm/dgemm where torch has MKL).
// * StepGemm: the product with the SAME weight at every time step, through the step engine
//   (step_engine(), set per process from Python: kernels/native/engine.py):
//     kPacked (0): with MKL (float) the weight is packed once per call (cblas_sgemm_pack) and
//                  every step runs cblas_sgemm_compute on the packed panel, which skips
//                  re-packing the weight each step (2-3x faster at small batch);
//     kAten (1):   gemm_rm at every step (ATen's at::mm: MKL sgemm, or the BLAS torch has).
//   Double, and torch without MKL, always run gemm_rm.
// * bf16 mode (float only, MKL): both operands are rounded to bfloat16, the products are
//   accumulated and returned in float32 (cblas_gemm_bf16bf16f32: AMX / AVX512-BF16).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <utility>

#ifdef LSTMLENS_MKL_PACKED
extern "C" {  // LP64 MKL, exported by libtorch_cpu (the loader checks before defining the macro)
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k);
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha,
                      const float* src, int ld, float* dest);
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a,
                         int lda, const float* b, int ldb, float beta, float* c, int ldc);
int MKL_Set_Num_Threads_Local(int nt);  // by value (the lowercase name takes a pointer)
void cblas_gemm_bf16bf16f32(int layout, int transa, int transb, int m, int n, int k, float alpha,
                            const at::BFloat16* a, int lda, const at::BFloat16* b, int ldb,
                            float beta, float* c, int ldc);
}
#endif

#include <atomic>

namespace lstmlens {

using at::Tensor;

// The library that runs the per-step products of float32 (see StepGemm); one per process.
enum StepEngine : int { kPacked = 0, kAten = 1, kNumEngines = 2 };
inline std::atomic<int>& step_engine() {
  static std::atomic<int> engine{kPacked};
  return engine;
}

// row-major C (M, N) = beta*C + op(A) @ op(B) with bfloat16 operands and float32 C
inline void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const at::BFloat16* A,
                      int64_t lda, const at::BFloat16* B, int64_t ldb, float beta, float* C,
                      int64_t ldc) {
#ifdef LSTMLENS_MKL_PACKED
  cblas_gemm_bf16bf16f32(101, ta ? 112 : 111, tb ? 112 : 111, M, N, K, 1.0f, A, lda, B, ldb, beta,
                         C, ldc);
#else
  TORCH_CHECK(false, "lstmlens native: bf16 matmuls need torch with MKL");
#endif
}

inline void to_bf16(const float* src, at::BFloat16* dst, int64_t n) {
  at::vec::convert(src, dst, n);
}

// row-major C (M, N) = beta*C + A (M, K) @ op(W), through ATen (MKL/oneDNN as torch chooses);
// beta is 0 or 1. Operands are dense: lda == K, ldc == N. With bf16 (float only) through
// gemm_bf16.
template <typename T>
inline void gemm_rm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* W,
                    bool trans, T beta, T* C, int64_t ldc, bool bf16 = false) {
  TORCH_CHECK(lda == K && ldc == N, "lstmlens native: gemm operands must be dense");
  if constexpr (std::is_same_v<T, float>) {
    if (bf16) {
      auto opt = at::TensorOptions().dtype(at::kBFloat16);
      Tensor a = at::empty({M, K}, opt), w = at::empty({N * K}, opt);
      to_bf16(A, a.data_ptr<at::BFloat16>(), M * K);
      to_bf16(W, w.data_ptr<at::BFloat16>(), N * K);
      gemm_bf16(false, trans, M, N, K, a.data_ptr<at::BFloat16>(), K,
                w.data_ptr<at::BFloat16>(), trans ? K : N, beta, C, ldc);
      return;
    }
  }
  const auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, opt);
  Tensor w = trans ? at::from_blob(const_cast<T*>(W), {N, K}, opt).t()
                   : at::from_blob(const_cast<T*>(W), {K, N}, opt);
  Tensor c = at::from_blob(C, {M, N}, opt);
  if (beta == T(0)) {
    at::mm_out(c, a, w);
  } else {
    c.addmm_(a, w);
  }
}

// a (M, K) @ b (K, N) for float tensors that are contiguous or transposed-contiguous; with bf16
// the operands are rounded to bfloat16 and the product is float32
inline Tensor mm(const Tensor& a, const Tensor& b, bool bf16) {
  if (!bf16) return at::mm(a, b);
  auto prep = [](const Tensor& m, bool& trans) {
    trans = !m.is_contiguous();
    Tensor base = trans ? m.t() : m;
    TORCH_CHECK(base.is_contiguous(), "lstmlens native: mm operand must be (transposed) dense");
    return base.to(at::kBFloat16);
  };
  bool ta = false, tb = false;
  Tensor A = prep(a, ta), B = prep(b, tb);
  Tensor C = at::empty({a.size(0), b.size(1)}, a.options());
  gemm_bf16(ta, tb, a.size(0), b.size(1), a.size(1), A.data_ptr<at::BFloat16>(), A.size(1),
            B.data_ptr<at::BFloat16>(), B.size(1), 0.0f, C.data_ptr<float>(), b.size(1));
  return C;
}

// Runs a whole small problem on the calling thread: waking a second thread for every step costs
// more than the step, and on a busy machine a descheduled helper stalls every step.
// omp_set_num_threads and MKL's local setting are per thread, so other threads are unaffected.
class SerialScope {
 public:
  explicit SerialScope(bool on) : on_(on && !active()) {
    if (!on_) return;
    active() = true;
    prev_omp_ = omp_get_max_threads();
    omp_set_num_threads(1);
#ifdef LSTMLENS_MKL_PACKED
    prev_mkl_ = MKL_Set_Num_Threads_Local(1);
#endif
  }
  ~SerialScope() {
    if (!on_) return;
    active() = false;
    omp_set_num_threads(prev_omp_);
#ifdef LSTMLENS_MKL_PACKED
    MKL_Set_Num_Threads_Local(prev_mkl_);  // 0: back to the global setting
#endif
  }
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;
  // whether this thread is inside a SerialScope (MKL already runs on one thread)
  static bool& active() {
    thread_local bool on = false;
    return on;
  }

 private:
  bool on_;
  int prev_omp_ = 1, prev_mkl_ = 0;
};

// a step's recurrent product below this many multiply-adds is "small" (a few microseconds)
constexpr int64_t kSmallStep = int64_t(1) << 22;

// The same weight applied at every step to an (M, K) operand.
template <typename T>
struct StepGemm {
  int64_t M = 0, N = 0, K = 0;
  const T* W = nullptr;
  bool trans = true;
  bool serial = false;  // too small to be worth waking other threads at every step
  Tensor packed;        // MKL's packed panel of op(W) (float only), else undefined
  Tensor wb, ab;        // bf16 mode: W and one step's A in bfloat16

  StepGemm() = default;
  // W: (N, K) when trans (x @ W^T), (K, N) otherwise (x @ W); M: rows of every operand A.
  StepGemm(const Tensor& w, bool trans_, int64_t M_, bool bf16 = false)
      : M(M_), W(w.data_ptr<T>()), trans(trans_) {
    N = trans ? w.size(0) : w.size(1);
    K = trans ? w.size(1) : w.size(0);
    serial = M * N * K < kSmallStep;
    if (M == 0 || N == 0 || K == 0) return;
#ifdef LSTMLENS_MKL_PACKED
    if constexpr (std::is_same_v<T, float>) {
      if (bf16) {
        wb = w.contiguous().to(at::kBFloat16);
        ab = at::empty({M, K}, wb.options());
        return;
      }
      if (step_engine().load() != kPacked) return;  // gemm_rm at every step
      const size_t bytes = cblas_sgemm_pack_get_size(162 /*B*/, M, N, K);
      packed = at::empty({static_cast<int64_t>(bytes / sizeof(float)) + 16}, w.options());
      cblas_sgemm_pack(101 /*row major*/, 162 /*B*/, trans ? 112 : 111, M, N, K, 1.0f, W,
                       trans ? K : N, packed.data_ptr<float>());
    }
#endif
    TORCH_CHECK(!bf16, "lstmlens native: bf16 matmuls need float32 tensors and torch with MKL");
  }

  // C (M, N) = beta*C + A (M, K) @ op(W); with beta == 0, C need not be initialised.
  void run(const T* A, int64_t lda, T beta, T* C, int64_t ldc) const {
    if (N == 0 || M == 0) return;
#ifdef LSTMLENS_MKL_PACKED
    if constexpr (std::is_same_v<T, float>) {
      const bool one = serial && !SerialScope::active();  // else already on one thread
      const int prev = one ? MKL_Set_Num_Threads_Local(1) : 0;
      if (wb.defined()) {
        TORCH_CHECK(lda == K, "lstmlens native: gemm operands must be dense");
        at::BFloat16* a = ab.data_ptr<at::BFloat16>();
        to_bf16(A, a, M * K);
        gemm_bf16(false, trans, M, N, K, a, K, wb.data_ptr<at::BFloat16>(), trans ? K : N, beta,
                  C, ldc);
      } else if (packed.defined()) {
        cblas_sgemm_compute(101, 111, 151 /*packed*/, M, N, K, A, lda, packed.data_ptr<float>(),
                            N, beta, C, ldc);
      } else {
        gemm_rm<T>(M, N, K, A, lda, W, trans, beta, C, ldc);
      }
      if (one) MKL_Set_Num_Threads_Local(prev);  // 0: back to the global setting
      return;
    }
#endif
    gemm_rm<T>(M, N, K, A, lda, W, trans, beta, C, ldc);
  }
};

// Whether the kernels fold the full gate recurrence into the recurrent product (below). Off by
// default: measured slower than two products (the fold multiplies a zero (H x S) block too,
// and its wider weight leaves the cache sooner); kept to measure (kernels/native/engine.py).
inline std::atomic<bool>& fold_fgr() {
  static std::atomic<bool> on{false};
  return on;
}

// Whether float32 kernels run the gate-recurrence product s_{t-1} W_gate^T (fgr) with bfloat16
// operands (float32 accumulation, MKL) while every other product stays float32. Off by default.
inline std::atomic<bool>& fgr_bf16() {
  static std::atomic<bool> on{false};
  return on;
}

// Full gate recurrence folded into the recurrent product: the (G, P+S) weight
//     W_rec = [ W_hh | E ],  E = W_gate's rows placed at the sigmoid gates' rows, 0 at g's
// so that [h_in | s_{t-1}] W_rec^T = h_in W_hh^T + (s_{t-1} W_gate^T at the sigmoid gates):
// one GEMM per step instead of two (backward: dA W_rec = [dh_in | ds_{t-1}]).
// oi/of/oo: the gates' row offsets in a gate row, si/sf/so: theirs in s (-1: absent).
inline Tensor fold_gate_recurrence(const Tensor& w_hh, const Tensor& w_gate, int64_t H,
                                   std::initializer_list<std::pair<int64_t, int64_t>> rows) {
  const int64_t G = w_hh.size(0), P = w_hh.size(1), S = w_gate.size(0);
  Tensor w = at::zeros({G, P + S}, w_hh.options());
  w.narrow(1, 0, P).copy_(w_hh);
  for (const auto& [o, s] : rows)
    if (o >= 0) w.narrow(0, o, H).narrow(1, P, S).copy_(w_gate.narrow(0, s, H));
  return w;
}

// rows [0, B) of dst (B, n0 + n1) = [a (B, n0) | b (B, n1)]; b == nullptr: zeros
template <typename T>
inline void concat_rows(int64_t B, const T* a, int64_t n0, const T* b, int64_t n1, T* dst) {
  for (int64_t r = 0; r < B; ++r) {
    T* d = dst + r * (n0 + n1);
    std::copy(a + r * n0, a + (r + 1) * n0, d);
    if (b)
      std::copy(b + r * n1, b + (r + 1) * n1, d + n0);
    else
      std::fill(d + n0, d + n0 + n1, T(0));
  }
}

// data pointer of a tensor, nullptr when it is undefined or empty
template <typename T>
inline T* ptr(const Tensor& t) {
  return t.defined() && t.numel() ? t.data_ptr<T>() : nullptr;
}

// rows [0, B) of `width` values each, in parallel only when every thread gets >= 16K values
template <typename F>
inline void for_rows(int64_t B, int64_t width, const F& f) {
  const int64_t grain = std::max<int64_t>(1, (16384 + width - 1) / width);
  at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b);
  });
}

// -- vector maths ------------------------------------------------------------------------------

template <typename T>
using Vec = at::vec::Vectorized<T>;

template <typename T>
inline Vec<T> lerp(const Vec<T>& a, const Vec<T>& b, const Vec<T>& w) {  // a + w*(b - a)
  return a + w * (b - a);
}

template <typename T>
inline Vec<T> ld(const T* p, int64_t n) {
  return n == Vec<T>::size() ? Vec<T>::loadu(p) : Vec<T>::loadu(p, n);
}

template <typename T>
inline void st(const Vec<T>& v, T* p, int64_t n) {
  v.store(p, n);
}

// exp: for float ATen's inlined polynomial (20 ulp), for double Sleef's (1 ulp)
template <typename T>
inline Vec<T> vexp(const Vec<T>& a) {
  if constexpr (std::is_same_v<T, float>) {
    return a.exp_u20();
  } else {
    return a.exp();
  }
}

// NaN where a is NaN (exp_u20 clamps its input, which would turn a NaN into a number)
template <typename T>
inline Vec<T> keep_nan(const Vec<T>& r, const Vec<T>& a) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<T, float>) {  // one compare into a mask register, one blend
    const __m512 av = a;
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(av, av, _CMP_UNORD_Q), r, av);
  }
#endif
  return Vec<T>::blendv(r, a, a.isnan());
}

template <typename T>
inline Vec<T> sigmoid(const Vec<T>& a) {
  const Vec<T> one(T(1));
  const auto r = one / (one + vexp(a.neg()));
  return std::is_same_v<T, float> ? keep_nan(r, a) : r;
}

// tanh: for double Sleef's (1 ulp). For float, inlined (a Sleef call spills every live vector
// register): |x| < 0.625: x * p(x²), a degree-10 odd polynomial fitted here (relative error
// 4e-9); else sign(x) (1 - 2 / (exp(2|x|) + 1)). Relative error below 2e-6 everywhere.
template <typename T>
inline Vec<T> vtanh(const Vec<T>& a) {
  if constexpr (std::is_same_v<T, float>) {
    using V = Vec<float>;
    const V one(1.0f), two(2.0f);
    const auto x2 = a * a;
    auto p = at::vec::fmadd(x2, V(-0.00566048769f), V(0.0205914395f));
    p = at::vec::fmadd(x2, p, V(-0.0537212096f));
    p = at::vec::fmadd(x2, p, V(0.133311293f));
    p = at::vec::fmadd(x2, p, V(-0.333332606f));
    p = at::vec::fmadd(x2, p, V(0.999999996f));
    const auto ax = a.abs();
    const auto big = one - two / (vexp(ax + ax) + one);  // tanh(|x|)
    const auto r = V::blendv(V::blendv(big, big.neg(), a < V(0.0f)), a * p, ax < V(0.625f));
    return keep_nan(r, a);
  } else {
    return a.tanh();
  }
}

template <typename T>
inline T hsum(const Vec<T>& v) {  // shuffles, not a trip through memory
  return at::vec::vec_reduce_all<T>([](const Vec<T>& a, const Vec<T>& b) { return a + b; }, v);
}

// A keep mask row: (..., 1) broadcast over the row, or one value per unit.
template <typename T>
struct KeepRow {
  const T* p = nullptr;  // nullptr: no keep mask
  bool wide = false;
  Vec<T> at(int64_t j, int64_t n) const { return wide ? ld(p + j, n) : Vec<T>(*p); }
};

// keep mask of step t, row b, from a (T, B, 1) or (T, B, W) contiguous tensor
template <typename T>
inline KeepRow<T> keep_row(const Tensor& keep, int64_t t, int64_t b) {
  KeepRow<T> k;
  if (!keep.defined()) return k;
  const int64_t w = keep.size(2);
  k.p = keep.data_ptr<T>() + (t * keep.size(1) + b) * w;
  k.wide = w > 1;
  return k;
}

// Two sums over a row in one pass (full vectors, then a scalar tail so padding lanes never enter).
template <typename T, typename F>
inline std::pair<T, T> row_sums(int64_t n, const F& f) {
  const int64_t V = Vec<T>::size();
  Vec<T> s1(T(0)), s2(T(0));
  int64_t j = 0;
  for (; j + V <= n; j += V) {
    const auto [a, b] = f(j, V);
    s1 = s1 + a, s2 = s2 + b;
  }
  T r1 = hsum(s1), r2 = hsum(s2);
  if (j < n) {
    alignas(64) T b1[Vec<T>::size()], b2[Vec<T>::size()];
    const auto [a, b] = f(j, n - j);
    a.store(b1, n - j), b.store(b2, n - j);
    for (int64_t k = 0; k < n - j; ++k) r1 += b1[k], r2 += b2[k];
  }
  return {r1, r2};
}

// Layer normalisation of one row (no affine part): writes (x - mean) * rstd, returns rstd.
// One pass for the moments, shifted by x[0] (so the variance does not cancel), one to write.
template <typename T>
inline T ln_row(const T* x, T* xhat, int64_t n, double eps) {
  const int64_t V = Vec<T>::size();
  const Vec<T> k(x[0]);
  const auto [s1, s2] = row_sums<T>(n, [&](int64_t j, int64_t m) {
    const auto d = ld(x + j, m) - k;
    return std::pair{d, d * d};
  });
  const T dm = s1 / T(n), mean = x[0] + dm;
  const T var = std::max(s2 / T(n) - dm * dm, T(0));
  const T rstd = T(1) / std::sqrt(var + T(eps));
  const Vec<T> vm(mean), vr(rstd);
  for (int64_t j = 0; j < n; j += V) {
    const int64_t m = std::min(V, n - j);
    st((ld(x + j, m) - vm) * vr, xhat + j, m);
  }
  return rstd;
}

// Gradient through xhat = (x - mean) * rstd, given d xhat (in place: d becomes d x):
//     dx = rstd * (d - mean(d) - xhat * mean(d * xhat))
// sd = sum(d) and sdx = sum(d * xhat), when the caller has them from writing d.
template <typename T>
inline void ln_row_backward(T* d, const T* xhat, T rstd, int64_t n, T sd, T sdx) {
  const int64_t V = Vec<T>::size();
  const Vec<T> v1(sd / T(n)), v2(sdx / T(n)), vr(rstd);
  for (int64_t j = 0; j < n; j += V) {
    const int64_t m = std::min(V, n - j);
    st(vr * (ld(d + j, m) - v1 - ld(xhat + j, m) * v2), d + j, m);
  }
}

template <typename T>
inline void ln_row_backward(T* d, const T* xhat, T rstd, int64_t n) {
  const auto [sd, sdx] = row_sums<T>(n, [&](int64_t j, int64_t m) {
    const auto v = ld(d + j, m);
    return std::pair{v, v * ld(xhat + j, m)};
  });
  ln_row_backward(d, xhat, rstd, n, sd, sdx);
}

}  // namespace lstmlens
