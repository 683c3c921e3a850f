// The one definition of the native kernels' argument lists: the weight slots, the config ints
// and the saved tensors, in order, with their names. Everything else is generated from the
// X-macro lists below: the enums the kernels index with, the name tables, and the text that
// lstmlens_native_abi() hands to Python, whose loader compares it with its own lists
// (kernels/native/abi.py) and refuses a library that disagrees.
//
// Layout: which gates exist and where their columns sit in a gate row, read from the config.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace lstmlens {

using at::Tensor;

// X(enum constant, name): the LSTM weight list, absent weights empty (abi.py LSTM_SLOTS)
#define LSTMLENS_LSTM_SLOTS(X)                                                                   \
  X(W_IH, weight_ih) X(W_HH, weight_hh) X(B_IH, bias_ih) X(B_HH, bias_hh) X(W_HR, weight_hr)   \
  X(P_I, peephole_i) X(P_F, peephole_f) X(P_O, peephole_o) X(W_GATE, weight_gate)              \
  X(LN_IH, ln_weight_ih) X(LN_HH, ln_weight_hh) X(LN_CW, ln_weight_c) X(LN_CB, ln_bias_c)

// the LSTM config ints: flags (0/1), then sizes (abi.py LSTM_CONFIG)
#define LSTMLENS_LSTM_CONFIG(X)                                                                  \
  X(CFG_HAS_I, has_i) X(CFG_HAS_F, has_f) X(CFG_HAS_O, has_o) X(CFG_COUPLED, coupled)           \
  X(CFG_PEEP, peepholes) X(CFG_TANH_IN, tanh_in) X(CFG_TANH_OUT, tanh_out)                      \
  X(CFG_FGR, full_gate_recurrence) X(CFG_LN, layer_norm) X(CFG_H, hidden_size)                  \
  X(CFG_PROJ, proj_size) X(CFG_BF16, bf16)

// what lstm_forward(train=true) returns and lstm_backward reads back (abi.py LSTM_SAVED)
#define LSTMLENS_LSTM_SAVED(X)                                                                   \
  X(SV_OUT, out) X(SV_HN, h_n) X(SV_CN, c_n) X(SV_C, c) X(SV_CNEW, c_new) X(SV_GATES, gates)   \
  X(SV_Y, y) X(SV_XN, xn) X(SV_RSTD_X, rstd_x) X(SV_RN, rn) X(SV_RSTD_R, rstd_r)               \
  X(SV_CNORM, c_norm) X(SV_RSTD_C, rstd_c) X(SV_SIG, sig)

// the GRU / RNN weight list (abi.py SIMPLE_SLOTS) and what their forwards save
#define LSTMLENS_SIMPLE_SLOTS(X) \
  X(S_W_IH, weight_ih) X(S_W_HH, weight_hh) X(S_B_IH, bias_ih) X(S_B_HH, bias_hh)
#define LSTMLENS_GRU_SAVED(X) X(GS_OUT, out) X(GS_HN, h_n) X(GS_GATES, gates) X(GS_HW, hn)
#define LSTMLENS_RNN_SAVED(X) X(RS_OUT, out) X(RS_HN, h_n) X(RS_ACTS, acts)

#define LSTMLENS_ENUM(e, name) e,
#define LSTMLENS_NAME(e, name) #name,
enum Slot { LSTMLENS_LSTM_SLOTS(LSTMLENS_ENUM) N_SLOTS };
enum Cfg { LSTMLENS_LSTM_CONFIG(LSTMLENS_ENUM) N_CFG };
enum Saved { LSTMLENS_LSTM_SAVED(LSTMLENS_ENUM) N_SAVED };
enum SimpleSlot { LSTMLENS_SIMPLE_SLOTS(LSTMLENS_ENUM) N_SIMPLE_SLOTS };
enum GruSaved { LSTMLENS_GRU_SAVED(LSTMLENS_ENUM) N_GRU_SAVED };
enum RnnSaved { LSTMLENS_RNN_SAVED(LSTMLENS_ENUM) N_RNN_SAVED };

inline constexpr const char* kSlotNames[] = {LSTMLENS_LSTM_SLOTS(LSTMLENS_NAME)};
inline constexpr const char* kCfgNames[] = {LSTMLENS_LSTM_CONFIG(LSTMLENS_NAME)};
inline constexpr const char* kSavedNames[] = {LSTMLENS_LSTM_SAVED(LSTMLENS_NAME)};
inline constexpr const char* kSimpleSlotNames[] = {LSTMLENS_SIMPLE_SLOTS(LSTMLENS_NAME)};
inline constexpr const char* kGruSavedNames[] = {LSTMLENS_GRU_SAVED(LSTMLENS_NAME)};
inline constexpr const char* kRnnSavedNames[] = {LSTMLENS_RNN_SAVED(LSTMLENS_NAME)};
#undef LSTMLENS_ENUM
#undef LSTMLENS_NAME

// "key=a,b,c;" for one name table
template <size_t N>
std::string abi_entry(const char* key, const char* const (&names)[N]) {
  std::string s = std::string(key) + "=";
  for (size_t k = 0; k < N; ++k) s += (k ? "," : "") + std::string(names[k]);
  return s + ";";
}

// Which gates exist and where their columns are in a gate row: everything but the weights.
struct Layout {
  bool has_i, has_f, has_o, coupled, peep, tanh_in, tanh_out, fgr, ln, proj;
  bool bf16;               // matmul operands in bfloat16 (float32 tensors only)
  int64_t H, P, G, S;      // cell units, state units, gate columns (nG*H), sigmoid columns (nS*H)
  int64_t nG, nS;          // gate blocks, sigmoid-gate blocks
  int64_t oi, of, og, oo;  // column offsets of the blocks in a gate row (-1: absent)
  int64_t si, sf, so;      // offsets of i, f, o in the sigmoid-gate row s (full gate recurrence)

  explicit Layout(at::IntArrayRef cfg) {
    TORCH_CHECK(cfg.size() == N_CFG, "lstmlens native LSTM: expected ", int(N_CFG),
                " config ints, got ", cfg.size());
    for (int k = 0; k < CFG_H; ++k)
      TORCH_CHECK(cfg[k] == 0 || cfg[k] == 1, "lstmlens native LSTM: config ", kCfgNames[k],
                  " must be 0 or 1, got ", cfg[k]);
    TORCH_CHECK(cfg[CFG_BF16] == 0 || cfg[CFG_BF16] == 1,
                "lstmlens native LSTM: config bf16 must be 0 or 1, got ", cfg[CFG_BF16]);
    TORCH_CHECK(cfg[CFG_H] >= 1, "lstmlens native LSTM: hidden_size must be >= 1, got ",
                cfg[CFG_H]);
    TORCH_CHECK(cfg[CFG_PROJ] >= 0, "lstmlens native LSTM: proj_size must be >= 0, got ",
                cfg[CFG_PROJ]);
    has_i = cfg[CFG_HAS_I], has_f = cfg[CFG_HAS_F], has_o = cfg[CFG_HAS_O];
    coupled = cfg[CFG_COUPLED], peep = cfg[CFG_PEEP], tanh_in = cfg[CFG_TANH_IN];
    tanh_out = cfg[CFG_TANH_OUT], fgr = cfg[CFG_FGR], ln = cfg[CFG_LN], bf16 = cfg[CFG_BF16];
    H = cfg[CFG_H];
    proj = cfg[CFG_PROJ] > 0;
    P = proj ? cfg[CFG_PROJ] : H;
    int64_t k = 0, s = 0;
    oi = has_i ? H * k++ : -1;
    of = has_f ? H * k++ : -1;
    og = H * k++;
    oo = has_o ? H * k++ : -1;
    nG = k, G = H * k;
    si = has_i ? H * s++ : -1;
    sf = has_f ? H * s++ : -1;
    so = has_o ? H * s++ : -1;
    nS = s, S = H * s;
  }
};

}  // namespace lstmlens
