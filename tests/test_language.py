"""The language model: shapes, weight tying, stateful TBPTT, sampling, next tokens, save/load."""

import math

import pytest
import torch

import lstmlens
from lstmlens.data.text import TokenStreams, build_tokenizer
from lstmlens.tasks.language import (
    LanguageModel,
    LanguageTask,
    build_language_model,
    evaluate_loss,
    filter_logits,
    load_language_model,
    sample_token,
    save_language_model,
)

TEXT = (
    "the quick brown fox jumps over the lazy dog.\n"
    "a stitch in time saves nine; the early bird catches the worm.\n"
) * 4


def char_model(**kw) -> LanguageModel:
    torch.manual_seed(0)
    args = {"embed_size": 8, "hidden_size": 12, **kw}
    return LanguageModel(build_tokenizer(TEXT, "char"), **args).eval()


# -- model -----------------------------------------------------------------------------


def test_forward_shapes_and_state():
    m = char_model(num_layers=2, proj_size=5)
    x = torch.randint(len(m.tokenizer), (3, 7))
    logits, (h, c) = m(x)
    assert logits.shape == (3, 7, len(m.tokenizer))
    assert h.shape == (2, 3, 5) and c.shape == (2, 3, 12)
    assert isinstance(m.lstm, lstmlens.LSTM)
    with pytest.raises(ValueError, match=r"expected tokens of shape \(B, T\)"):
        m(x[0])


def test_weight_tying():
    m = char_model(embed_size=12, tie_weights=True)
    assert m.decoder.weight is m.embedding.weight
    p = char_model(embed_size=6, proj_size=6, tie_weights=True)  # tying through the projection
    assert p.decoder.weight is p.embedding.weight
    with pytest.raises(ValueError, match="tie_weights needs embed_size.*embed_size=8, output"):
        char_model(tie_weights=True)
    untied = char_model(embed_size=12)
    assert untied.decoder.weight is not untied.embedding.weight


def test_any_variant_and_its_config():
    m = char_model(variant="cifg", num_layers=2, dropout=0.1)
    assert m.config_dict()["variant"] == "cifg"
    custom = lstmlens.Variant(peepholes=True, output_activation="identity", coupled=True)
    m2 = char_model(variant=custom)
    assert m2.config_dict()["variant"]["coupled"] is True
    assert char_model(variant=m2.config_dict()["variant"]).lstm.variant == custom


# -- stateful truncated BPTT -----------------------------------------------------------


def make_task(model, **kw):
    ids = torch.tensor(model.tokenizer.encode(TEXT))
    return LanguageTask(model, ids[:400], ids[400:], batch_size=2, seq_len=5, **kw)


def test_state_is_carried_and_detached():
    m = char_model()  # dropout 0: train and eval compute the same function
    task = make_task(m, random_offset=False)
    epoch = task.train_batches(1, torch.Generator())
    segs = list(epoch)
    assert task.state is None and len(segs) == len(epoch) == len(task.train_streams)
    task.training_loss(m, segs[0])
    h1, c1 = task.state
    assert h1.grad_fn is None and not h1.requires_grad and not c1.requires_grad
    loss2 = task.training_loss(m, segs[1])
    # Carried: two segments from the carried state equal one run over both segments.
    joined = torch.cat([segs[0][0], segs[1][0]], dim=1)  # (B, 2T)
    full_logits, (h_full, c_full) = m(joined)
    torch.testing.assert_close(task.state[0], h_full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(task.state[1], c_full, rtol=1e-5, atol=1e-6)
    want = torch.nn.functional.cross_entropy(full_logits[:, 5:].flatten(0, 1), segs[1][1].flatten())
    torch.testing.assert_close(loss2, want, rtol=1e-5, atol=1e-6)
    # Detached: the gradient of segment 2 does not reach back into segment 1, so it equals
    # the gradient from a fresh start at the (constant) carried state.
    loss2.backward()
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    logits1, st = m(segs[0][0])
    logits2, _ = m(segs[1][0], (st[0].detach(), st[1].detach()))
    torch.nn.functional.cross_entropy(logits2.flatten(0, 1), segs[1][1].flatten()).backward()
    for g, p in zip(grads, m.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-7)


def test_state_reset_at_each_pass_and_epoch_slices():
    m = char_model()
    task = make_task(m, random_offset=False, segments_per_epoch=30)
    n = len(task.train_streams)  # 40 segments per pass (199 targets per stream)
    gen = torch.Generator()
    epoch = task.train_batches(1, gen)
    first = list(epoch)
    assert len(first) == len(epoch) == 30
    task.training_loss(m, first[-1])
    second = iter(task.train_batches(2, gen))
    # Epoch 2 continues the pass where epoch 1 stopped; the state carries over.
    x, _ = next(second)
    assert torch.equal(x, list(task.train_streams)[30][0]) and task.state is not None
    rest = list(second)
    assert len(rest) == 29 and task.state is None  # the pass ended after n - 31 more
    assert torch.equal(rest[n - 31][0], list(task.train_streams)[0][0])


def test_random_offset_moves_the_cuts():
    task = make_task(char_model())
    starts = set()
    gen = torch.Generator().manual_seed(1)
    for epoch in range(1, 6):
        x, _ = next(iter(task.train_batches(epoch, gen)))
        starts.add(int(x[0, 0]))
    assert len(starts) > 1


def test_evaluate_loss_equals_full_sequence_loss():
    m = char_model()
    ids = torch.tensor(m.tokenizer.encode(TEXT))
    streams = TokenStreams(ids, batch_size=3, seq_len=7)
    loss, count = evaluate_loss(m, streams)
    data = streams.data  # (3, L): each stream in one piece, from a zero state
    with torch.no_grad():
        logits, _ = m(data[:, :-1])
    want = torch.nn.functional.cross_entropy(logits.flatten(0, 1).double(), data[:, 1:].flatten())
    assert count == data[:, 1:].numel()
    assert loss == pytest.approx(float(want), rel=1e-5)


def test_validate_metrics():
    m = char_model()
    metrics = make_task(m).validate(m)
    assert metrics["val_ppl"] == pytest.approx(math.exp(metrics["val_loss"]))
    assert metrics["val_bpc"] == pytest.approx(metrics["val_loss"] / math.log(2))
    torch.manual_seed(0)
    w = LanguageModel(build_tokenizer(TEXT, "word"), embed_size=4, hidden_size=4)
    ids = torch.tensor(w.tokenizer.encode(TEXT))
    assert "val_bpc" not in LanguageTask(w, ids[:60], ids[60:], 2, 4).validate(w)


def test_task_split_too_short():
    m = char_model()
    ids = torch.tensor(m.tokenizer.encode(TEXT))
    with pytest.raises(ValueError, match="training split is too short"):
        LanguageTask(m, ids[:10], ids, batch_size=2, seq_len=5)
    with pytest.raises(ValueError, match="validation split has 5 tokens"):
        LanguageTask(m, ids, ids[:5], batch_size=2, seq_len=5)


def test_trainer_lowers_the_loss():
    from lstmlens.train import TrainConfig, Trainer

    m = char_model(hidden_size=24)
    ids = torch.tensor(m.tokenizer.encode(TEXT))
    task = LanguageTask(m, ids[:400], ids[400:], batch_size=8, seq_len=10)  # 5 segments
    result = Trainer(m, task, TrainConfig(epochs=3, lr=1e-2, seed=0)).fit()
    losses = [r["val_loss"] for r in result.history]
    assert losses[-1] < losses[0] < math.log(len(m.tokenizer)) + 0.1


# -- sampling --------------------------------------------------------------------------


def test_filter_logits_top_k_top_p():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    inf = -math.inf
    assert filter_logits(logits, top_k=2)[2:].tolist() == [inf, inf]
    # top-p keeps tokens until their mass reaches p: 0.5 < 0.7 <= 0.5 + 0.3.
    kept = torch.isfinite(filter_logits(logits, top_p=0.7)).tolist()
    assert kept == [True, True, False, False]
    assert torch.isfinite(filter_logits(logits, top_p=0.5)).tolist() == [True, False, False, False]
    assert torch.isfinite(filter_logits(logits, top_p=1.0)).all()
    z = filter_logits(logits, temperature=0.5)
    want = torch.tensor([25, 9, 2.25, 0.25], dtype=torch.float64) / 36.5  # p_i^2 / sum p^2
    torch.testing.assert_close(torch.softmax(z, -1), want)
    gen = torch.Generator().manual_seed(0)
    assert {sample_token(logits, top_k=1, generator=gen) for _ in range(20)} == {0}
    for bad in ({"temperature": 0}, {"temperature": -1.0}, {"top_k": 0}, {"top_p": 0.0}):
        with pytest.raises(ValueError, match="filter_logits"):
            filter_logits(logits, **bad)


def test_seeded_sampling_repeats():
    m = char_model()
    a = m.generate("the ", length=40, seed=3)
    assert a == m.generate("the ", length=40, seed=3)
    assert a != m.generate("the ", length=40, seed=4)
    assert len(a) == 40 and "\ufffd" not in a
    gen = torch.Generator().manual_seed(3)
    assert m.generate("the ", length=40, seed=gen) == a
    pieces = []
    assert m.generate("the ", length=40, seed=3, callback=pieces.append) == "".join(pieces) == a
    assert "".join(m.stream("the ", length=40, seed=3, top_k=5, top_p=0.9)) == m.generate(
        "the ", length=40, seed=3, top_k=5, top_p=0.9
    )


@torch.no_grad()
def test_temperature_to_zero_is_argmax():
    m = char_model()
    tok = m.tokenizer
    ids = tok.encode("a stitch")
    greedy = []
    for _ in range(25):  # greedy decoding, written independently of the sampler
        logits, _ = m(torch.tensor([ids]))
        nxt = int(logits[0, -1, 1:].argmax()) + 1  # <unk> (id 0) is never generated
        ids.append(nxt)
        greedy.append(nxt)
    for seed in (0, 1):
        out = m.generate("a stitch", length=25, temperature=1e-6, seed=seed)
        assert out == tok.decode(greedy)


def test_next_tokens_sorted_probabilities():
    m = char_model()
    top = m.next_tokens("the quick", k=5)
    probs = [p for _, p in top]
    assert len(top) == 5 and probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1
    everything = m.next_tokens("the quick", k=len(m.tokenizer) + 10)
    assert len(everything) == len(m.tokenizer)
    assert sum(p for _, p in everything) == pytest.approx(1.0, abs=1e-9)
    with torch.no_grad():
        logits, _ = m(torch.tensor([m.tokenizer.encode("the quick")]))
    want = torch.softmax(logits[0, -1].double(), -1)
    for token, p in top:
        assert p == pytest.approx(float(want[m.tokenizer.stoi[token]]), rel=1e-5)


def test_word_level_generation_spacing():
    torch.manual_seed(0)
    m = LanguageModel(build_tokenizer(TEXT, "word"), embed_size=6, hidden_size=6)
    out = m.generate("the lazy", length=12, seed=0)
    assert out.startswith((" ", ".", ",", ";", "\n")) and "<unk>" not in out
    assert m.generate("the lazy ", length=12, seed=0) == out.lstrip(" ")
    assert m.generate("", length=5, seed=0)  # an empty prompt starts from a newline


def test_prompt_and_argument_errors():
    m = char_model()
    with pytest.raises(ValueError, match="only tokens unknown"):
        m.generate("XYZ", length=5)
    with pytest.raises(ValueError, match="only tokens unknown"):
        m.stream("XYZ", length=5)  # refused at once, before the first piece is asked for
    with pytest.raises(ValueError, match="only tokens unknown"):
        m.next_tokens("@@@", k=3)
    with pytest.raises(ValueError, match="length must be a positive integer"):
        m.generate("the", length=0)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        m.generate("the", temperature=0.0)
    with pytest.raises(ValueError, match="k must be a positive"):
        m.next_tokens("the", k=0)
    no_newline = LanguageModel(build_tokenizer("abc", "char"), embed_size=2, hidden_size=2)
    with pytest.raises(ValueError, match="prompt is empty"):
        no_newline.generate("", length=3)
    assert m.generate("theX", length=3, seed=0)  # some unknown characters are fine


# -- save / load -----------------------------------------------------------------------


@pytest.mark.parametrize("level", ["char", "word"])
def test_save_load_identical_logits(tmp_path, level):
    torch.manual_seed(0)
    custom = lstmlens.Variant(peepholes=True, coupled=True)
    m = LanguageModel(
        build_tokenizer(TEXT, level, lower=True),
        embed_size=5,
        hidden_size=7,
        proj_size=5,
        num_layers=2,
        tie_weights=True,
        variant=custom if level == "word" else "peephole",
    ).eval()
    save_language_model(tmp_path / "run", m, {"level_note": level})
    again, config = load_language_model(tmp_path / "run")
    assert config["task"] == "text" and config["level_note"] == level
    assert again.tokenizer == m.tokenizer and again.config_dict() == m.config_dict()
    assert again.decoder.weight is again.embedding.weight
    x = torch.tensor([m.tokenizer.encode(TEXT[:30])])
    assert torch.equal(again(x)[0], m(x)[0])
    assert again.generate("the", length=20, seed=5) == m.generate("the", length=20, seed=5)


def test_load_refuses_another_task():
    with pytest.raises(ValueError, match="holds a 'forecast' model, not a text model"):
        build_language_model({"task": "forecast", "model": {}})
    with pytest.raises(ValueError, match="malformed"):
        build_language_model({"task": "language", "model": {}})
