"""torch.compile and torch.export through the native kernel's custom ops (issue 14, part 1).

``torch.compile(fullgraph=True)`` fails on any graph break, so each equality below also shows
that the layer traced whole. Compiling is slow on a small machine: the preset matrix compiles
with ``backend="aot_eager"`` (dynamo, the fake shapes and the autograd formulas: everything the
compiler must understand of the ops; no code generation), one case per mode goes through
inductor, and the full matrix is marked slow.
"""

import sys

import pytest
import torch

import lstmlens
from lstmlens.kernels import native
from lstmlens.variants import PRESETS

pytestmark = pytest.mark.skipif(
    not native.status().ok, reason="the native kernel is unavailable here"
)

T, B, I, H = 5, 3, 4, 6  # noqa: E741
CONFIGS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "proj_size": {"proj_size": 3},
    "bidirectional": {"bidirectional": True},
    "2 layers": {"num_layers": 2},
}
FAST = [("vanilla", "plain"), ("fgr", "layer_norm"), ("cifg", "proj_size"), ("nog", "2 layers")]
SLOW = [
    pytest.param(v, c, marks=pytest.mark.slow)
    for v in PRESETS
    for c in CONFIGS
    if (v, c) not in FAST
]


@pytest.fixture(autouse=True)
def _fresh_compiler():
    torch._dynamo.reset()  # each case traced afresh (no cache-size limit across the matrix)
    yield


def _compare(module, x, backend="aot_eager", batch_first=False):
    """Compiled (fullgraph) vs eager: outputs, input and weight gradients within 1e-5."""
    compiled = torch.compile(module, fullgraph=True, dynamic=False, backend=backend)
    results = []
    for fn in (module, compiled):
        module.zero_grad()
        xi = x.clone().requires_grad_()
        out, state = fn(xi)
        h = state[0] if isinstance(state, tuple) else state
        ((out**2).sum() + (h**3).sum()).backward()
        grads = [p.grad.clone() for p in module.parameters()]
        results.append((out.detach(), h.detach(), xi.grad, grads))
    (o1, h1, dx1, g1), (o2, h2, dx2, g2) = results
    torch.testing.assert_close(o2, o1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h2, h1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx2, dx1, atol=1e-5, rtol=1e-5)
    for a, b in zip(g2, g1, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant,config", FAST + SLOW)
def test_lstm_compiles_whole_and_matches_eager(variant, config):
    torch.manual_seed(0)
    layer = lstmlens.LSTM(I, H, variant=variant, backend="native", **CONFIGS[config])
    _compare(layer, torch.randn(T, B, I))


@pytest.mark.parametrize("mode", ["GRU", "RNN"])
@pytest.mark.parametrize("config", ["plain", "bidirectional", "2 layers"])
def test_gru_rnn_compile_whole_and_match_eager(mode, config):
    torch.manual_seed(0)
    layer = getattr(lstmlens, mode)(I, H, backend="native", **CONFIGS[config])
    _compare(layer, torch.randn(T, B, I))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_inductor_matches_eager(mode):
    """The real compiler (code generated around the ops), batch first, backend ``auto``."""
    torch.manual_seed(0)
    layer = getattr(lstmlens, mode)(I, H, batch_first=True)
    _compare(layer, torch.randn(B, T, I), backend="inductor")


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_fused_backend_compiles(mode):
    """The fused backend's in-place backward cannot be traced: under compile it runs the op."""
    torch.manual_seed(0)
    layer = getattr(lstmlens, mode)(I, H, backend="fused")
    _compare(layer, torch.randn(T, B, I))


def test_export_inference_equals_eager():
    torch.manual_seed(0)
    layer = lstmlens.LSTM(I, H, variant="cifg", layer_norm=True, proj_size=3, num_layers=2)
    layer.eval()
    x = torch.randn(T, B, I)
    steps = torch.export.Dim("steps", min=2, max=1024)
    with torch.no_grad():
        program = torch.export.export(layer, (x,), dynamic_shapes=({0: steps},))
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "lstmlens_native.lstm_forward.default" in ops
    for length in (T, 11):  # a length other than the example's too; with grad mode on, too
        xi = torch.randn(length, B, I)
        (out, (h, c)), (out_e, (h_e, c_e)) = program.module()(xi), layer(xi)
        torch.testing.assert_close(out, out_e, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(h, h_e, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(c, c_e, atol=1e-6, rtol=1e-6)
    with pytest.raises(RuntimeError, match="without saving for backward"):
        out.sum().backward()  # exported for inference: nothing was kept to differentiate


@pytest.mark.parametrize(
    "op,args",
    [
        ("lstm_forward", "lstm"),
        ("gru_forward", "gru"),
        ("rnn_forward", "rnn"),
    ],
)
def test_ops_pass_torch_opcheck(op, args):
    """torch's own checks: schema, fake shapes vs the kernel's, autograd registration."""
    torch.manual_seed(0)
    x = torch.randn(T, B, I, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    if args == "lstm":
        spec_layer = lstmlens.LSTM(I, H, variant="fgr", layer_norm=True, proj_size=3)
        from lstmlens.kernels.native.abi import LSTM_SLOTS, lstm_config

        p = spec_layer.layer_parameters(0)
        w = [p[n] if n in p else torch.empty(0) for n in LSTM_SLOTS]
        h0 = torch.randn(B, 3, requires_grad=True)
        c0 = torch.randn(B, H, requires_grad=True)
        keep = torch.rand(T, B, 1)
        call = (x, h0, c0, w, lstm_config(spec_layer.spec), keep, keep, None, True)
    else:
        layer = getattr(lstmlens, args.upper())(I, H)
        w = list(layer.layer_parameters(0).values())
        extra = (False,) if args == "rnn" else ()
        call = (x, h0, w, torch.rand(T, B, 1), *extra, True)
    torch.library.opcheck(getattr(torch.ops.lstmlens_native, op), call)


def _forward_equal(model, *args):
    compiled = torch.compile(model, fullgraph=True, dynamic=False, backend="aot_eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(*args), model(*args), atol=1e-5, rtol=1e-5)


def test_forecaster_compiles_whole():
    from lstmlens.tasks.forecast_model import ForecastNet, NetConfig

    torch.manual_seed(0)
    net = ForecastNet(NetConfig(input_size=2, hidden_size=8, num_layers=2, variant="cifg"))
    _forward_equal(net.eval(), torch.randn(3, 12, 2))


def test_language_model_compiles_whole():
    from lstmlens.data.text import build_tokenizer
    from lstmlens.tasks.language import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(build_tokenizer("hello world, hello lstm"), 8, 12, proj_size=6)
    tokens = torch.randint(0, model.decoder.out_features, (2, 9))
    _forward_equal(model.eval(), tokens)


CLASSIFIERS = {
    "numeric, last": {"input_size": 2},
    "numeric, bidirectional 2 layers, mean": {
        "input_size": 2,
        "bidirectional": True,
        "num_layers": 2,
        "pooling": "mean",
    },
    "text, cifg": {"vocab_size": 11, "embed_dim": 3, "variant": "cifg"},
}


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_compiles_whole_and_matches_eager(name):
    """The classifier hands the layer its padded batch with ``lengths`` (no packing, which
    dynamo refuses): fullgraph compiles it; logits and every gradient equal eager's, and
    the logits equal those of the same layer fed the packed batch."""
    from torch.nn.utils.rnn import pack_padded_sequence

    from lstmlens.tasks.classify import SequenceClassifier

    torch.manual_seed(0)
    config = {"num_classes": 3, "hidden_size": 5, **CLASSIFIERS[name]}
    clf = SequenceClassifier(config)
    lengths = torch.tensor([7, 3, 5, 1])
    pad = torch.arange(7)[None, :] >= lengths[:, None]  # (B, L) past each end
    if clf.text:
        x = torch.randint(1, 11, (4, 7)).masked_fill(pad, 0)
    else:
        x = torch.randn(4, 7, 2).masked_fill(pad[..., None], 0.0)
    compiled = torch.compile(clf, fullgraph=True, dynamic=False, backend="aot_eager")
    results = []
    for fn in (clf, compiled):
        clf.zero_grad()
        logits = fn(x, lengths)
        (logits**2).sum().backward()
        results.append((logits.detach(), [p.grad.clone() for p in clf.parameters()]))
    (l1, g1), (l2, g2) = results
    torch.testing.assert_close(l2, l1, atol=1e-5, rtol=1e-5)
    for a, b in zip(g2, g1, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the packed path of the same layer gives the same summary
        inputs = clf.embed(x) if clf.text else (x - clf.mean) / clf.std
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = clf.rnn(packed)
        if clf.pooling == "last":
            summary = torch.cat([h_n[-2], h_n[-1]], -1) if clf.rnn.bidirectional else h_n[-1]
            torch.testing.assert_close(clf.head(summary), l1, atol=1e-6, rtol=1e-6)


def _python_calls_in(fn) -> list[str]:
    """The Python functions ``fn`` enters, itself and torch's thin op wrappers
    (``torch/_ops.py``) aside."""
    calls: list[str] = []

    def profile(frame, event, arg):
        where = frame.f_code.co_filename
        if event == "call" and where != __file__ and not where.endswith("_ops.py"):
            calls.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_forward_ops_have_cpp_autograd_kernels(mode):
    """The forward ops' autograd kernels are C++ (``autograd.h``): with no graph to record
    (no_grad) a call enters no Python at all, so eager and compiled inference pay nothing for
    autograd; with one, a call records the backward op and its gradients equal the fused
    path's (the hand-derived formulas in pure PyTorch)."""
    from lstmlens.kernels.native.abi import LSTM_SLOTS, SIMPLE_SLOTS, lstm_config

    torch.manual_seed(0)
    layer = getattr(lstmlens, mode)(I, H, backend="native")
    p = layer.layer_parameters(0)
    x, h0 = torch.randn(T, B, I), torch.zeros(B, H)
    ops = native.native_ops()
    if mode == "LSTM":
        w = [p[n] if n in p else x.new_empty(0) for n in LSTM_SLOTS]
        cfg = lstm_config(layer.spec)
        call = lambda: ops.lstm_forward(x, h0, h0, w, cfg, None, None, None, False)  # noqa: E731
    else:
        w = [p[n] for n in SIMPLE_SLOTS]
        if mode == "GRU":
            call = lambda: ops.gru_forward(x, h0, w, None, False)  # noqa: E731
        else:
            call = lambda: ops.rnn_forward(x, h0, w, None, False, False)  # noqa: E731
    assert all(t.requires_grad for t in w if t.numel())
    with torch.no_grad():
        assert _python_calls_in(call) == []
        assert not call()[0].requires_grad
    grads = []
    for backend in ("native", "fused"):
        layer.backend = backend
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        out, state = layer(xi)
        h_n = state[0] if isinstance(state, tuple) else state
        ((out**2).sum() + h_n.sum()).backward()
        grads.append([xi.grad, *(t.grad for t in layer.parameters())])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_compiled_layer_compiles_once_and_records_no_state():
    """A compiled forward writes no module state (``last_backend`` / ``last_schedule`` are
    eager records): writing it would add a guard on the old value and compile the layer twice."""
    torch.manual_seed(0)
    layer = lstmlens.LSTM(I, H, backend="native").eval()
    compiled = torch.compile(layer, fullgraph=True, dynamic=False, backend="eager")
    x = torch.randn(T, B, I)
    with torch.no_grad(), torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):
            compiled(x)
    assert (layer.last_backend, layer.last_schedule) == (None, None)
    layer(x)
    assert (layer.last_backend, layer.last_schedule) == ("native", "sequential")
