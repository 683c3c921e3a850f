"""The native ops check every argument before they touch memory (issue 17, item 3).

Each case calls ``torch.ops.lstmlens_native`` directly, the way no public API would, with one
argument wrong, and expects a RuntimeError naming that argument: never a crash, never output.
Before the checks, an empty ``peephole_o`` crashed the process (SIGSEGV), wrong-shaped weights
read past their buffers, and a transposed ``weight_hh`` printed oneMKL errors and returned
numbers. An empty batch or sequence gives empty outputs, and gradients for them.
"""

import pytest
import torch

from lstmlens.cells import CellSpec, lstm_param_shapes
from lstmlens.kernels.native import abi, loader
from lstmlens.variants import resolve_variant

T, B, I, H, P = 3, 2, 5, 4, 3


@pytest.fixture(scope="module", autouse=True)
def ops():
    st = loader.status()
    if st.reason in ("no-compiler", "disabled"):
        pytest.skip(f"native kernel not built: {st.summary()}")
    assert st.ok, st.detail
    return torch.ops.lstmlens_native


def lstm_args(variant="fgr", proj=P, layer_norm=True, bias=True, T=T, B=B):
    """Valid arguments of lstm_forward for a layout that uses every slot (fgr has peepholes)."""
    spec = CellSpec(resolve_variant(variant), H, proj, layer_norm, bias)
    shapes = lstm_param_shapes(spec, I)
    g = torch.Generator().manual_seed(0)
    w = {n: torch.randn(*s, generator=g) for n, s in shapes.items()}
    x = torch.randn(T, B, I, generator=g)
    h0, c0 = torch.zeros(B, spec.state_size), torch.zeros(B, H)
    return {"x": x, "h0": h0, "c0": c0, "w": w, "cfg": abi.lstm_config(spec)}


def lstm_forward(ops, a, train=False, keep_h=None, keep_c=None, rmask=None):
    w = [a["w"].get(n, torch.empty(0)) for n in abi.LSTM_SLOTS]
    return ops.lstm_forward(a["x"], a["h0"], a["c0"], w, a["cfg"], keep_h, keep_c, rmask, train)


def lstm_backward(ops, a, saved, d_out=None, d_hn=None, d_cn=None):
    w = [a["w"].get(n, torch.empty(0)) for n in abi.LSTM_SLOTS]
    return ops.lstm_backward(
        a["x"], a["h0"], w, a["cfg"], None, None, None, saved, d_out, d_hn, d_cn
    )


def test_valid_arguments_run(ops):
    out, h, c = lstm_forward(ops, lstm_args())
    assert out.shape == (T, B, P) and h.shape == (B, P) and c.shape == (B, H)


def wrong_shape(t):
    return torch.zeros(*(s + 1 for s in t.shape)) if t.dim() else torch.zeros(2)


@pytest.mark.parametrize("slot", abi.LSTM_SLOTS)
@pytest.mark.parametrize("how", ["wrong shape", "empty", "float64", "non-contiguous"])
def test_every_lstm_weight_slot_is_checked(ops, slot, how):
    a = lstm_args()
    t = a["w"][slot]
    a["w"][slot] = {
        "wrong shape": lambda: wrong_shape(t),
        "empty": lambda: torch.empty(0),
        "float64": lambda: t.double(),
        "non-contiguous": lambda: torch.stack([t, t], -1)[..., 0],
    }[how]()
    with pytest.raises(RuntimeError, match=rf"^lstmlens native LSTM: {slot} must be") as e:
        lstm_forward(ops, a)
    assert "\n" not in str(e.value)


def test_issue_reproductions_name_the_parameter(ops):
    """The cases of issue 17 as reported: each a one-line error naming the parameter."""
    a = lstm_args("peephole", proj=0, layer_norm=False)
    a["w"]["peephole_o"] = torch.empty(0)  # crashed with SIGSEGV
    with pytest.raises(RuntimeError, match=r"peephole_o must be \(H\) = \(4\), got \(0\)"):
        lstm_forward(ops, a)
    a = lstm_args("vanilla", proj=0, layer_norm=False)
    a["w"]["weight_hh"] = a["w"]["weight_hh"].t().contiguous()  # printed oneMKL errors
    msg = r"lstmlens native LSTM: weight_hh must be \(4H, P\) = \(16, 4\), got \(4, 16\)"
    with pytest.raises(RuntimeError, match=msg):
        lstm_forward(ops, a)
    a = lstm_args("fgr", proj=0, layer_norm=False)
    a["w"]["weight_gate"] = torch.zeros(4, 4)  # read past its buffer
    with pytest.raises(RuntimeError, match=r"weight_gate must be \(3H, 3H\) = \(12, 12\)"):
        lstm_forward(ops, a)


def test_transposed_weight_prints_nothing(ops, capfd):
    a = lstm_args("vanilla", proj=0, layer_norm=False)
    a["w"]["weight_hh"] = a["w"]["weight_hh"].t().contiguous()
    with pytest.raises(RuntimeError):
        lstm_forward(ops, a)
    assert capfd.readouterr().err == ""  # no oneMKL parameter errors


@pytest.mark.parametrize(
    "slot,kw",
    [("weight_hr", {"proj": 0}), ("ln_weight_c", {"layer_norm": False}),
     ("peephole_i", {"variant": "nig"}), ("peephole_o", {"variant": "vanilla"}),
     ("weight_gate", {"variant": "peephole"})],
)  # fmt: skip
def test_a_weight_the_layout_does_not_use_must_be_empty(ops, slot, kw):
    a = lstm_args(**kw)
    a["w"][slot] = torch.zeros(H)
    with pytest.raises(RuntimeError, match=rf"{slot} must be empty \(no "):
        lstm_forward(ops, a)


def test_one_bias_without_the_other(ops):
    a = lstm_args()
    del a["w"]["bias_hh"]
    with pytest.raises(RuntimeError, match=r"bias_hh must be \(4H\) = \(16\), got \(0\)"):
        lstm_forward(ops, a)


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("x", torch.zeros(T, B), r"x must be 3-D \(T, B, I\), got \(3, 2\)"),
        ("x", torch.zeros(T, B, I, dtype=torch.float16), "x must be float32 or float64"),
        ("x", torch.zeros(T, I, B).transpose(1, 2), "x must be contiguous"),
        ("x", torch.zeros(T, B, I + 1), r"weight_ih must be \(4H, I\) = \(16, 6\)"),
        ("h0", torch.zeros(B, H), r"h0 must be \(B, P\) = \(2, 3\), got \(2, 4\)"),
        ("h0", torch.zeros(B, P, dtype=torch.float64), "h0 must be float32 like x"),
        ("c0", torch.zeros(B + 1, H), r"c0 must be \(B, H\) = \(2, 4\), got \(3, 4\)"),
        ("cfg", [1, 1, 1], "expected 12 config ints, got 3"),
    ],
)
def test_inputs_and_config_are_checked(ops, name, value, message):
    a = lstm_args()
    a[name] = value
    with pytest.raises(RuntimeError, match=message):
        lstm_forward(ops, a)


def test_bad_config_values(ops):
    for k, v, message in [(0, 2, "has_i must be 0 or 1"), (9, 0, "hidden_size must be >= 1"),
                          (10, -1, "proj_size must be >= 0")]:  # fmt: skip
        a = lstm_args()
        a["cfg"][k] = v
        with pytest.raises(RuntimeError, match=message):
            lstm_forward(ops, a)


@pytest.mark.parametrize(
    "name,shape,message",
    [
        ("keep_h", (T, B, 2), r"keep_h must be \(T, B, 1\|P\) = \(3, 2, 1\|3\)"),
        ("keep_c", (T + 1, B, 1), r"keep_c must be \(T, B, 1\|H\)"),
        ("rmask", (B, H), r"rmask must be \(B, P\) = \(2, 3\)"),
    ],
)
def test_masks_are_checked(ops, name, shape, message):
    with pytest.raises(RuntimeError, match=message):
        lstm_forward(ops, lstm_args(), **{name: torch.zeros(shape)})


def test_backward_checks_saved_tensors_and_gradients(ops):
    a = lstm_args()
    saved = lstm_forward(ops, a, train=True)
    assert len(saved) == len(abi.LSTM_SAVED)
    assert len(lstm_backward(ops, a, saved, d_hn=torch.ones(B, P))) == 3 + len(abi.LSTM_SLOTS)
    for k in (abi.LSTM_SAVED.index("gates"), abi.LSTM_SAVED.index("sig")):
        bad = list(saved)
        bad[k] = torch.zeros(1)
        with pytest.raises(RuntimeError, match=f"saved {abi.LSTM_SAVED[k]} must be"):
            lstm_backward(ops, a, bad)
    with pytest.raises(RuntimeError, match="expected 14 saved tensors, got 13"):
        lstm_backward(ops, a, saved[:13])
    with pytest.raises(RuntimeError, match=r"d_hn must be \(B, P\) = \(2, 3\)"):
        lstm_backward(ops, a, saved, d_hn=torch.ones(B, H))
    with pytest.raises(RuntimeError, match=r"d_out must be \(T, B, P\)"):
        lstm_backward(ops, a, saved, d_out=torch.ones(T, B))


@pytest.mark.parametrize("Tn,Bn", [(0, B), (T, 0), (0, 0)])
def test_empty_batch_or_sequence_gives_empty_outputs(ops, Tn, Bn):
    a = lstm_args(T=Tn, B=Bn)
    a["h0"], a["c0"] = torch.randn(Bn, P), torch.randn(Bn, H)
    out, h, c = lstm_forward(ops, a)
    assert out.shape == (Tn, Bn, P)
    assert torch.equal(h, a["h0"]) and torch.equal(c, a["c0"])
    saved = lstm_forward(ops, a, train=True)
    d_hn, d_cn = torch.randn(Bn, P), torch.randn(Bn, H)
    dx, dh0, dc0, *grads = lstm_backward(ops, a, saved, d_hn=d_hn, d_cn=d_cn)
    assert dx.shape == a["x"].shape and torch.equal(dh0, d_hn) and torch.equal(dc0, d_cn)
    for name, g in zip(abi.LSTM_SLOTS, grads):
        want = a["w"].get(name, torch.empty(0))
        assert g.shape == want.shape and not g.any()


# -- GRU and RNN -------------------------------------------------------------------------------


def simple_args(mode, T=T, B=B, bias=True):
    nG = 3 if mode == "gru" else 1
    g = torch.Generator().manual_seed(0)
    w = [torch.randn(nG * H, I, generator=g), torch.randn(nG * H, H, generator=g)]
    w += [torch.randn(nG * H, generator=g) for _ in range(2)] if bias else [torch.empty(0)] * 2
    return torch.randn(T, B, I, generator=g), torch.zeros(B, H), w


def simple_forward(ops, mode, x, h0, w, keep=None, train=False):
    if mode == "gru":
        return ops.gru_forward(x, h0, w, keep, train)
    return ops.rnn_forward(x, h0, w, keep, False, train)


def simple_backward(ops, mode, x, h0, w, saved, d_hn=None):
    if mode == "gru":
        return ops.gru_backward(x, h0, w, None, saved, None, d_hn)
    return ops.rnn_backward(x, h0, w, None, False, saved, None, d_hn)


@pytest.mark.parametrize("mode", ["gru", "rnn"])
def test_gru_rnn_arguments_are_checked(ops, mode):
    name = f"lstmlens native {mode.upper()}"
    G = "3H" if mode == "gru" else "H"
    x, h0, w = simple_args(mode)
    assert simple_forward(ops, mode, x, h0, w)[0].shape == (T, B, H)
    cases = [
        (0, torch.zeros(1, I), rf"weight_ih must be \({G}, I\)"),
        (1, w[1].t().contiguous() if mode == "gru" else w[1][:1], "weight_hh must be"),
        (1, torch.zeros(0), rf"weight_hh must be \({G}, H\) with H >= 1, got \(0\)"),
        (2, torch.zeros(2), rf"bias_ih must be \({G}\)"),
        (3, torch.empty(0), rf"bias_hh must be \({G}\)"),
        (1, w[1].double(), "weight_hh must be float32 like x"),
    ]
    for k, bad, message in cases:
        ws = list(w)
        ws[k] = bad
        with pytest.raises(RuntimeError, match=f"^{name}: {message}"):
            simple_forward(ops, mode, x, h0, ws)
    with pytest.raises(RuntimeError, match=r"h0 must be \(B, H\) = \(2, 4\), got \(2, 3\)"):
        simple_forward(ops, mode, x, torch.zeros(B, 3), w)
    with pytest.raises(RuntimeError, match=r"keep_h must be \(T, B, 1\|H\)"):
        simple_forward(ops, mode, x, h0, w, keep=torch.zeros(T, B, 3))
    saved = simple_forward(ops, mode, x, h0, w, train=True)
    bad = list(saved)
    bad[-1] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="saved .* must be"):
        simple_backward(ops, mode, x, h0, w, bad)
    with pytest.raises(RuntimeError, match="expected . saved tensors"):
        simple_backward(ops, mode, x, h0, w, saved[:-1])
    with pytest.raises(RuntimeError, match=r"d_hn must be \(B, H\)"):
        simple_backward(ops, mode, x, h0, w, saved, d_hn=torch.ones(B, 1))


@pytest.mark.parametrize("mode", ["gru", "rnn"])
@pytest.mark.parametrize("Tn,Bn", [(0, B), (T, 0)])
def test_gru_rnn_empty_batch_or_sequence(ops, mode, Tn, Bn):
    x, h0, w = simple_args(mode, T=Tn, B=Bn)
    out, h = simple_forward(ops, mode, x, h0, w)
    assert out.shape == (Tn, Bn, H) and torch.equal(h, h0)
    saved = simple_forward(ops, mode, x, h0, w, train=True)
    d_hn = torch.randn(Bn, H)
    dx, dh0, *grads = simple_backward(ops, mode, x, h0, w, saved, d_hn=d_hn)
    assert dx.shape == x.shape and torch.equal(dh0, d_hn)
    assert [g.shape for g in grads] == [t.shape for t in w] and not any(g.any() for g in grads)


def test_layers_pass_the_checks(ops):
    """What functions.py passes satisfies the checks (forward and backward)."""
    import lstmlens

    m = lstmlens.LSTM(I, H, variant="fgr", layer_norm=True, proj_size=P, backend="native")
    x = torch.randn(T, B, I, requires_grad=True)
    out, (h, c) = m(x)
    out.sum().backward()
    assert x.grad is not None and out.shape == (T, B, P)
