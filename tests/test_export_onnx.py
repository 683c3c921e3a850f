"""``lstmlens.export.onnx``: every layer and variant through ONNX Runtime equals eager.

Each model is exported on one example (batch 3, length 5) and run on another batch size and
length (2 and 7), with and without initial states: the graph fixes neither.
"""

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402

import lstmlens  # noqa: E402
import lstmlens.export  # noqa: E402
from lstmlens.export.onnx import run_onnx  # noqa: E402

OPTIONS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "proj_size": {"proj_size": 3},
    "bidirectional": {"bidirectional": True},
    "2 layers": {"num_layers": 2},
}
NATIVE = {"vanilla", "peephole"}  # through ONNX's own LSTM operator when plain


def states(m, batch):
    LD, P = m.num_layers * m.num_directions, m.proj_size or m.hidden_size
    h = torch.randn(LD, batch, P)
    return (h, torch.randn(LD, batch, m.hidden_size)) if m.mode == "LSTM" else h


def roundtrip(m, tmp_path, batch_first=False, with_state=False):
    """Export on (3, 5), run on (2, 7); returns (max error, op types of the graph)."""
    m.eval()
    shape = lambda b, t: (b, t, m.input_size) if batch_first else (t, b, m.input_size)  # noqa: E731
    example = torch.randn(shape(3, 5))
    if with_state:
        example = (example, states(m, 3))
    path = lstmlens.export.onnx(m, example, tmp_path / "m.onnx")
    x = torch.randn(shape(2, 7))
    state = states(m, 2) if with_state else None
    feeds = {"input": x.numpy()}
    if with_state:
        parts = state if m.mode == "LSTM" else (state,)
        feeds.update({n: t.numpy() for n, t in zip(("h0", "c0"), parts)})
    got = run_onnx(path, feeds)
    with torch.no_grad():
        y, s = m(x, state)
    want = [y, *(s if m.mode == "LSTM" else (s,))]
    assert [g.shape for g in got] == [tuple(w.shape) for w in want]
    err = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    return err, ops


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("variant", sorted(lstmlens.PRESETS))
def test_every_variant_matches_eager(variant, option, tmp_path):
    m = lstmlens.LSTM(4, 6, variant=variant, **OPTIONS[option])
    err, ops = roundtrip(m, tmp_path)
    assert err < 1e-5
    native = variant in NATIVE and option in ("plain", "bidirectional", "2 layers")
    assert ("LSTM" in ops) == native and ("Scan" in ops) != native


@pytest.mark.parametrize("variant", ["vanilla", "peephole", "cifg", "fgr", "nfg"])
def test_batch_first_with_initial_states(variant, tmp_path):
    m = lstmlens.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True, variant=variant)
    err, _ = roundtrip(m, tmp_path, batch_first=True, with_state=True)
    assert err < 1e-5


def test_layer_norm_with_projection_and_states(tmp_path):
    m = lstmlens.LSTM(4, 6, 2, proj_size=2, layer_norm=True, variant="noaf", bidirectional=True)
    err, _ = roundtrip(m, tmp_path, with_state=True)
    assert err < 1e-5


@pytest.mark.parametrize(
    "make",
    [
        lambda: lstmlens.GRU(4, 6),
        lambda: lstmlens.GRU(4, 6, num_layers=2, bidirectional=True),
        lambda: lstmlens.GRU(4, 6, bias=False),
        lambda: lstmlens.RNN(4, 6, nonlinearity="tanh", num_layers=2),
        lambda: lstmlens.RNN(4, 6, nonlinearity="relu", bidirectional=True),
    ],
    ids=["gru", "gru-2-bi", "gru-nobias", "rnn-tanh-2", "rnn-relu-bi"],
)
@pytest.mark.parametrize("with_state", [False, True], ids=["zeros", "state"])
def test_gru_and_rnn_use_the_onnx_operators(make, with_state, tmp_path):
    m = make()
    err, ops = roundtrip(m, tmp_path, with_state=with_state)
    assert err < 1e-5
    assert m.mode in ops and "Scan" not in ops


def test_training_mode_exports_eval_semantics_and_leaves_the_mode(tmp_path):
    m = lstmlens.LSTM(4, 6, num_layers=2, dropout=0.5, zoneout=0.3, recurrent_dropout=0.2)
    m.train()
    path = lstmlens.export.onnx(m, torch.randn(5, 3, 4), tmp_path / "m.onnx")
    assert m.training
    x = torch.randn(7, 2, 4)
    (y, *_) = run_onnx(path, {"input": x.numpy()})
    with torch.no_grad():
        want = m.eval()(x)[0]
    np.testing.assert_allclose(y, want.numpy(), atol=1e-5)


def test_bad_input_names_the_problem(tmp_path):
    m = lstmlens.LSTM(4, 6)
    with pytest.raises(TypeError, match="cannot export a Linear"):
        lstmlens.export.onnx(torch.nn.Linear(2, 2), torch.randn(1, 2), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="batched 3-D"):
        lstmlens.export.onnx(m, torch.randn(5, 4), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset must be >= 17"):
        lstmlens.export.onnx(m, torch.randn(5, 3, 4), tmp_path / "m.onnx", opset=13)
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnx_names_the_install_command(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a)
    )
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'lstmlens\[export\]'"):
        lstmlens.export.onnx(lstmlens.LSTM(4, 6), torch.randn(5, 3, 4), tmp_path / "m.onnx")


def test_task_models_export_whole(tmp_path):
    """Language model (with state), classifier (numeric, text; last and mean pooling),
    forecast network: ONNX Runtime equals eager on a batch and length unlike the example's."""
    from lstmlens.data.text import CharTokenizer
    from lstmlens.tasks.classify import SequenceClassifier
    from lstmlens.tasks.forecast_model import ForecastNet, NetConfig
    from lstmlens.tasks.language import LanguageModel

    lm = LanguageModel(CharTokenizer(list("abcde")), embed_size=4, hidden_size=6,
                       num_layers=2, proj_size=3, variant="cifg").eval()  # fmt: skip
    state = (torch.randn(2, 3, 3), torch.randn(2, 3, 6))
    path = lstmlens.export.onnx(lm, (torch.randint(0, 6, (3, 5)), state), tmp_path / "lm.onnx")
    tokens, state = torch.randint(0, 6, (2, 9)), (torch.randn(2, 2, 3), torch.randn(2, 2, 6))
    got = run_onnx(path, {"tokens": tokens.numpy(), "h0": state[0].numpy(), "c0": state[1].numpy()})
    with torch.no_grad():
        logits, (h, c) = lm(tokens, state)
    for g, w in zip(got, (logits, h, c)):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-5)

    base = {"num_classes": 3, "hidden_size": 5, "num_layers": 2, "bidirectional": True}
    lengths = torch.tensor([6, 2, 4, 1])
    for config, x in (
        ({**base, "input_size": 2, "mean": [1.0, -1.0], "std": [2.0, 0.5]}, torch.randn(4, 6, 2)),
        ({**base, "vocab_size": 7, "embed_dim": 3, "pooling": "mean"}, torch.randint(0, 7, (4, 6))),
    ):
        model = SequenceClassifier(config).eval()
        example = (x[:2, :3], torch.tensor([3, 2]))
        path = lstmlens.export.onnx(model, example, tmp_path / "cls.onnx")
        name = "x" if x.is_floating_point() else "tokens"
        (got,) = run_onnx(path, {name: x.numpy(), "lengths": lengths.numpy()})
        with torch.no_grad():
            want = model(x, lengths)
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5)

    net = ForecastNet(NetConfig(input_size=2, hidden_size=5, variant="peephole", out_steps=3,
                                n_outputs=2)).eval()  # fmt: skip
    path = lstmlens.export.onnx(net, torch.randn(2, 8, 2), tmp_path / "fc.onnx")
    x = torch.randn(5, 12, 2)
    (got,) = run_onnx(path, {"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("variant", ["vanilla", "fgr"])
def test_one_sequence_of_one_step(variant, tmp_path):
    m = lstmlens.LSTM(4, 6, num_layers=2, bidirectional=True, variant=variant).eval()
    path = lstmlens.export.onnx(m, torch.randn(5, 3, 4), tmp_path / "m.onnx")
    x = torch.randn(1, 1, 4)
    got = run_onnx(path, {"input": x.numpy()})
    with torch.no_grad():
        y, (h, c) = m(x)
    for g, w in zip(got, (y, h, c)):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-6)


def test_forecaster_with_unknown_parts_is_refused():
    from lstmlens.export.forecast import check_known
    from lstmlens.tasks.forecast import ForecastConfig, Forecaster
    from lstmlens.tasks.forecast_model import ForecastNet, NetConfig

    fc = Forecaster(ForecastConfig(window=4))
    fc.net = ForecastNet(NetConfig(input_size=1))
    check_known(fc)
    fc.net.add_module("norm", torch.nn.Identity())
    with pytest.raises(ValueError, match=r"does not know the forecast net's \['norm'\]"):
        check_known(fc)


@pytest.mark.parametrize("variant", ["vanilla", "peephole", "cifg", "fgr"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
def test_packed_sequences_read_each_length(variant, batch_first, tmp_path):
    """A PackedSequence example adds a ``lengths`` input: states stop at each sequence's end,
    the reverse direction starts there, the padded output is zero past it."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    m = lstmlens.LSTM(4, 6, 2, bidirectional=True, batch_first=batch_first, variant=variant)
    m.eval()

    def packed(lengths):
        B, T = len(lengths), max(lengths)
        x = torch.randn(B, T, 4) if batch_first else torch.randn(T, B, 4)
        lengths = torch.tensor(lengths)
        return pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)

    path = lstmlens.export.onnx(m, packed([5, 2, 4]), tmp_path / "m.onnx")
    p = packed([3, 7, 1, 5])
    x, lengths = pad_packed_sequence(p, batch_first=batch_first)
    got = run_onnx(path, {"input": x.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        y, (h, c) = m(p)
    for g, w in zip(got, (pad_packed_sequence(y, batch_first=batch_first)[0], h, c)):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: lstmlens.LSTM(4, 6, bias=False),
        lambda: lstmlens.LSTM(4, 6, bias=False, variant="nig", layer_norm=True),
        lambda: lstmlens.GRU(4, 6, num_layers=2, bidirectional=True),
        lambda: lstmlens.RNN(4, 6, nonlinearity="relu", bidirectional=True),
    ],
    ids=["lstm-nobias", "nig-ln-nobias", "gru-2-bi", "rnn-relu-bi"],
)
def test_packed_and_unbiased_layers(make, tmp_path):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    m = make().eval()
    example = pack_padded_sequence(
        torch.randn(5, 3, 4), torch.tensor([5, 2, 4]), enforce_sorted=False
    )
    path = lstmlens.export.onnx(m, example, tmp_path / "m.onnx")
    lengths = torch.tensor([3, 7, 1, 5])
    p = pack_padded_sequence(torch.randn(7, 4, 4), lengths, enforce_sorted=False)
    got = run_onnx(path, {"input": pad_packed_sequence(p)[0].numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        y, s = m(p)
    want = [pad_packed_sequence(y)[0], *(s if m.mode == "LSTM" else (s,))]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-5)
