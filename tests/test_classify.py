"""Sequence classification: CSV reading, packing, pooling, metrics, training, save/load/predict."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lstmlens.data.sequences import (
    LabelledSequences,
    pad_batch,
    read_numeric_sequences,
    read_texts,
    stratified_split,
)
from lstmlens.tasks.classify import SequenceClassifier, class_weights, predict_logits
from lstmlens.tasks.classify_metrics import classification_metrics, confusion_matrix
from lstmlens.tasks.classify_run import (
    ClassifyOptions,
    DataSpec,
    load_classifier,
    predict,
    prepare_classifier,
    train_classifier,
)
from lstmlens.train import TrainConfig


def write_numeric(path, n_per_class=12, seed=0, shuffle=True):
    """Two classes that a sign tells apart: 'up' sequences rise, 'down' ones fall; lengths 2..6."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(2 * n_per_class):
        label = "up" if k % 2 == 0 else "down"
        n = int(rng.integers(2, 7))
        sign = 1.0 if label == "up" else -1.0
        for t in range(n):
            rows.append(
                {
                    "seq": f"s{k}",
                    "t": t,
                    "a": sign * (0.5 + rng.random()),
                    "b": rng.normal(),
                    "label": label,
                }
            )
    frame = pd.DataFrame(rows)
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=seed)  # rows in any order
    frame.to_csv(path, index=False)
    return frame


# ------------------------------------------------------------------------------ reading


def test_read_numeric_groups_and_orders_by_time(tmp_path):
    path = tmp_path / "d.csv"
    frame = write_numeric(path)
    data, features = read_numeric_sequences(path, "seq", "t", "label")
    assert features == ["a", "b"] and data.classes == ["down", "up"]
    assert len(data) == 24
    for seq_id, seq, y in zip(data.ids, data.sequences, data.labels):
        rows = frame[frame.seq == seq_id].sort_values("t")
        np.testing.assert_allclose(seq.numpy(), rows[["a", "b"]].to_numpy(np.float32))
        assert data.classes[int(y)] == rows.label.iloc[0]


def test_read_numeric_dates_and_selected_features(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame(
        {
            "id": [1, 1, 2, 2],
            "when": ["2024-01-02", "2024-01-01", "2024-01-01", "2024-01-03"],
            "x": [2.0, 1.0, 5.0, 6.0],
            "junk": ["a", "b", "c", "d"],
            "y": [0, 0, 1, 1],
        }
    ).to_csv(path, index=False)
    data, features = read_numeric_sequences(path, "id", "when", "y", ["x"])
    assert features == ["x"] and data.ids == ["1", "2"]
    assert data.sequences[0].flatten().tolist() == [1.0, 2.0]  # sorted by date
    with pytest.raises(ValueError, match="'junk' holds 'a'.*not a number"):
        read_numeric_sequences(path, "id", "when", "y")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["label"]), "no column 'label'"),
        (lambda f: f.assign(label="up"), "has one class"),
        (lambda f: f.assign(a=f.a.where(f.index != 3, np.nan)), "NaN"),
        (
            lambda f: f.assign(label=np.where(f.index == 0, "down", f.label)).assign(
                label=lambda g: np.where((g.seq == g.seq.iloc[0]) & (g.index != 0), "up", g.label)
            ),
            "more than one label",
        ),
        (lambda f: pd.concat([f, f.iloc[:1]]), "two rows at time"),
    ],
)
def test_read_numeric_bad_input(tmp_path, change, message):
    path = tmp_path / "d.csv"
    frame = write_numeric(path, shuffle=False)
    change(frame).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        read_numeric_sequences(path, "seq", "t", "label")


def test_read_missing_and_empty_files(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        read_numeric_sequences(tmp_path / "nope.csv", "a", "b", "c")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_texts(tmp_path / "e.csv", "text", "label")


def test_read_texts_refuses_empty_text(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["good film", "  ", "bad"], "label": [1, 0, 0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="empty at data row 2"):
        read_texts(path, "text", "label")


def test_stratified_split_keeps_every_class_in_training():
    labels = torch.tensor([0] * 20 + [1] * 10 + [2] * 2)
    train, val, test = stratified_split(labels, (0.2, 0.2), seed=0)
    assert sorted(train + val + test) == list(range(32)) and not set(train) & set(val)
    assert set(labels[train].tolist()) == {0, 1, 2}
    assert (labels[val] == 0).sum() == 4 and (labels[test] == 1).sum() == 2
    assert stratified_split(labels, (0.2, 0.2), seed=0) == (train, val, test)
    with pytest.raises(ValueError, match="no validation or test"):
        stratified_split(torch.tensor([0, 1]), (0.1, 0.1), seed=0)


# ------------------------------------------------------------------------------- metrics


def test_metrics_against_hand_computed_values():
    truth = torch.tensor([0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 1, 2, 2])
    m = confusion_matrix(truth, pred, 3)
    assert m.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    s = classification_metrics(truth, pred, 3)
    # F1: class 0: p=1, r=2/3 -> 0.8; class 1: p=1/2, r=1/2 -> 0.5; class 2: p=1/2, r=1 -> 2/3
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["per_class_f1"] == pytest.approx([0.8, 0.5, 2 / 3])
    assert s["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_balanced_class_weights():
    w = class_weights(torch.tensor([0, 0, 0, 1]), 3)
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


# --------------------------------------------------------------------------------- model


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_packed_unequal_lengths_equal_each_sequence_alone(bidirectional, pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(
        {
            "num_classes": 3,
            "input_size": 2,
            "hidden_size": 5,
            "bidirectional": bidirectional,
            "pooling": pooling,
        }
    ).eval()
    seqs = [torch.randn(n, 2) for n in (4, 1, 6, 3)]
    x, lengths = pad_batch(seqs)
    x[0, 4:] = 100.0  # garbage in the padding must not matter
    together = model(x, lengths)
    for i, s in enumerate(seqs):
        alone = model(s.unsqueeze(0), torch.tensor([len(s)]))
        torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-5, atol=1e-6)


def test_mean_pooling_is_the_mean_of_the_outputs():
    torch.manual_seed(0)
    model = SequenceClassifier(
        {"num_classes": 2, "input_size": 1, "hidden_size": 3, "pooling": "mean"}
    ).eval()
    s = torch.randn(5, 1)
    out, _ = model.rnn(s.unsqueeze(0))  # (1, 5, 3)
    expected = model.head(out.mean(1))
    torch.testing.assert_close(model(s.unsqueeze(0), torch.tensor([5])), expected)


def test_text_model_takes_token_ids():
    model = SequenceClassifier(
        {"num_classes": 2, "vocab_size": 10, "embed_dim": 4, "hidden_size": 3}
    ).eval()
    x, lengths = pad_batch([torch.tensor([1, 2, 3]), torch.tensor([4])])
    assert model(x, lengths).shape == (2, 2)


# ----------------------------------------------------------------------------- training


def small_options(**kw):
    base = dict(hidden_size=8, batch_size=8, val_fraction=0.25, test_fraction=0.25)
    return ClassifyOptions(**{**base, **kw})


def test_tiny_separable_numeric_set_reaches_100_percent(tmp_path):
    path = tmp_path / "d.csv"
    write_numeric(path, n_per_class=12)
    spec = DataSpec(path=str(path), id="seq", time="t", label="label")
    model, metrics = train_classifier(spec, small_options(), TrainConfig(epochs=25, lr=3e-2))
    assert metrics["test_accuracy"] == 1.0 and metrics["test_macro_f1"] == 1.0
    assert metrics["sizes"] == {"train": 12, "val": 6, "test": 6}
    assert np.trace(np.array(metrics["confusion"])) == 6


def test_tiny_separable_text_set_reaches_100_percent(tmp_path):
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    filler = ["the", "a", "film", "was", "very", "it"]
    rows = []
    for k in range(40):
        label = "pos" if k % 2 == 0 else "neg"
        words = list(rng.choice(filler, size=int(rng.integers(2, 6))))
        words.insert(int(rng.integers(0, len(words) + 1)), "great" if label == "pos" else "awful")
        rows.append({"review": " ".join(words), "sentiment": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    spec = DataSpec(path=str(path), text="review", label="sentiment")
    opts = small_options(pooling="mean", bidirectional=True, embed_dim=8)
    model, metrics = train_classifier(spec, opts, TrainConfig(epochs=30, lr=3e-2))
    assert metrics["test_accuracy"] == 1.0 and metrics["sizes"]["test"] == 10


def test_saved_run_predicts_identical_outputs(tmp_path):
    path = tmp_path / "d.csv"
    write_numeric(path, n_per_class=6)
    spec = DataSpec(path=str(path), id="seq", time="t", label="label")
    run = tmp_path / "run"
    model, metrics = train_classifier(spec, small_options(), TrainConfig(epochs=2), run_dir=run)
    assert {"config.json", "model.safetensors", "metrics.json", "confusion.png"} <= {
        p.name for p in run.iterdir()
    }
    loaded, config = load_classifier(run)
    data, probs = predict(loaded, config, path)
    direct = torch.softmax(predict_logits(model, data), -1)
    assert torch.equal(probs, direct)  # same weights, same standardisation, same numbers
    assert data.labels is not None and len(data) == 12


def test_prepare_refuses_bad_options_before_training(tmp_path):
    path = tmp_path / "d.csv"
    write_numeric(path, n_per_class=4)
    spec = DataSpec(path=str(path), id="seq", time="t", label="label")
    with pytest.raises(ValueError, match="pooling"):
        prepare_classifier(spec, small_options(pooling="max"), TrainConfig())
    run = prepare_classifier(spec, small_options(class_weights="balanced"), TrainConfig())
    assert run.task.weights is not None and math.isclose(float(run.task.weights.sum()), 2.0)


def test_digits_default_data_shapes():
    run = prepare_classifier(DataSpec(), ClassifyOptions(hidden_size=4), TrainConfig())
    data = run.task.train
    assert data.classes == [str(c) for c in range(10)]
    assert all(s.shape == (8, 8) for s in data.sequences[:5])
    assert isinstance(run.test, LabelledSequences)
    assert len(run.task.train) + len(run.task.val) + len(run.test) == 1797
