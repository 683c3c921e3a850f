"""The kinds of run folder :mod:`lstmlens.runschema` knows: forecast, language, classify.

Each kind registers one :class:`~lstmlens.runschema.RunSchema`: how its
``config.json`` is recognised, the fields its loader reads (dotted paths), and
the tensor shapes those fields imply (``V`` vocabulary, ``E`` embedding, ``H``
hidden, ``P`` projection, ``D`` directions, ``C`` classes, ``S*Q`` forecast outputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .limits import (
    MAX_BATCH,
    MAX_CLASSES,
    MAX_EMBED,
    MAX_FEATURES,
    MAX_FOLDS,
    MAX_HIDDEN,
    MAX_LAYERS,
    MAX_MEMBERS,
    MAX_STEPS,
    MAX_VOCAB,
    MAX_WINDOW,
)
from .runschema import (
    Flag,
    Int,
    Real,
    Reals,
    RnnSizes,
    RunSchema,
    Spec,
    Text,
    Texts,
    VariantSpec,
    register,
)

__all__ = ["CLASSIFY", "FORECAST", "LANGUAGE"]

_PROBABILITY = Real(0.0, 1.0, open_high=True)  # dropout, zoneout: [0, 1)
_ROWS = Int(1, 10**9, optional=True)


def _lstm(prefix: str) -> dict[str, Any]:
    """The fields of a stacked LSTM under ``prefix`` (``"net."``)."""
    return {
        f"{prefix}hidden_size": Int(1, MAX_HIDDEN),
        f"{prefix}num_layers": Int(1, MAX_LAYERS),
        f"{prefix}variant": VariantSpec(),
        f"{prefix}dropout": _PROBABILITY,
    }


# -------------------------------------------------------------------- forecast


def _forecast_sizes(c: Mapping[str, Any]) -> tuple[RnnSizes, dict[str, tuple[int, ...] | None]]:
    net = c["net"]
    h, p = net["hidden_size"], net.get("proj_size", 0)  # H, P
    outputs = net["out_steps"] * net["n_outputs"]  # S*Q
    rnn = RnnSizes("lstm.", net["num_layers"], net["input_size"], h, p)
    shapes: dict[str, tuple[int, ...] | None] = {
        "head.weight": (outputs, p or h),
        "head.bias": (outputs,),
    }
    others = net.get("members", 1) - 1  # the seed ensemble's other members: others.{k}.{0,1}
    if others:
        shapes[f"others.{others - 1}.1.weight"] = (outputs, p or h)
    shapes[f"others.{others}.1.weight"] = None  # no member more than the config says
    return rnn, shapes


def _forecast_consistent(c: Mapping[str, Any]) -> str | None:
    # known-future covariates add S inputs each (tasks/forecast.py); the scaler has 1 + C
    known = c["net"]["out_steps"] * len(c.get("future_covariates", []))
    features = c["net"]["input_size"] - known
    for key in ("mean", "scale"):
        if len(c["scaler"][key]) != features:
            return f"scaler.{key} has {len(c['scaler'][key])} entries for {features} input features"
    if not set(c.get("future_covariates", [])) <= set(c["covariates"]):
        return "future_covariates must be among the covariates"
    return None


_OPTIONAL_FLAG = Flag(optional=True)
_FORECAST_OPTIONS: dict[str, Spec] = {
    "net.members": Int(1, MAX_MEMBERS),
    "net.zero_head": Flag(),
    "net.layer_norm": Flag(),
    "net.zoneout": _PROBABILITY,
    "net.recurrent_dropout": _PROBABILITY,
    "net.proj_size": Int(0, MAX_HIDDEN),
    "net.forget_bias": Real(-1000.0, 1000.0),
    "forecast.window": Int(1, MAX_WINDOW, optional=True),
    "forecast.mode": Text(("direct", "recursive")),
    "forecast.quantiles": Reals(1000, unit=True),
    **_lstm("forecast."),
    "forecast.log": _OPTIONAL_FLAG,
    "forecast.relative": Flag(),
    "forecast.anchor": Text(
        ("level", "seasonal", "ets", "theta", "ets_theta", "theta_arima"), optional=True
    ),
    "forecast.fallback": Flag(),
    "forecast.deseasonalise": _OPTIONAL_FLAG,
    "forecast.members": Int(1, MAX_MEMBERS),
    "forecast.calibrate": Flag(),
    "forecast.batch_size": Int(1, MAX_BATCH, optional=True),
    "forecast.val_size": _ROWS,
    "forecast.test_origins": Int(1, MAX_FOLDS),
    "forecast.test_size": _ROWS,
    "forecast.season": Int(1, MAX_WINDOW, optional=True),
    "season": Int(1, MAX_WINDOW, optional=True),
    "seasonal_indices": Reals(MAX_WINDOW),
    "calibration": Reals(1000),
    "ets_fit_end": Int(1, 10**9, optional=True),
    "future_covariates": Texts(MAX_FEATURES),
}
FORECAST = register(
    RunSchema(
        name="forecast",
        # the Forecaster's own tag: a many-series run ("kind": "global") is another model
        matches=lambda c: c.get("format") == "lstmlens-forecast",
        fields={
            "net.input_size": Int(1, MAX_FEATURES),
            **_lstm("net."),
            "net.out_steps": Int(1, MAX_STEPS),
            "net.n_outputs": Int(1, 1000),
            "forecast.horizon": Int(1, MAX_STEPS),
            **_FORECAST_OPTIONS,
            "scaler.mean": Reals(MAX_FEATURES),
            "scaler.scale": Reals(MAX_FEATURES, positive=True),
            "target": Text(),
            "covariates": Texts(MAX_FEATURES),
        },
        optional=frozenset(_FORECAST_OPTIONS),
        sizes=_forecast_sizes,
        consistent=_forecast_consistent,
    )
)


# -------------------------------------------------------------------- language


def _language_sizes(c: Mapping[str, Any]) -> tuple[RnnSizes, dict[str, tuple[int, ...] | None]]:
    m = c["model"]
    vocab = len(c["tokenizer"]["tokens"]) + 1  # V: the tokens and <unk>
    e, h, p = m["embed_size"], m["hidden_size"], m.get("proj_size", 0)
    rnn = RnnSizes("lstm.", m.get("num_layers", 1), e, h, p)
    out = p or h
    return rnn, {
        "embedding.weight": (vocab, e),
        "decoder.weight": (vocab, out),
        "decoder.bias": (vocab,),
    }


_LANGUAGE_OPTIONS: dict[str, Spec] = {
    "model.num_layers": Int(1, MAX_LAYERS),
    "model.variant": VariantSpec(),
    "model.dropout": _PROBABILITY,
    "model.proj_size": Int(0, MAX_HIDDEN),
    "model.tie_weights": Flag(),
    "model.layer_norm": Flag(),
    "model.recurrent_dropout": _PROBABILITY,
    "model.zoneout": _PROBABILITY,
    "model.forget_bias": Real(-1000.0, 1000.0),
    "tokenizer.lower": Flag(),
}
LANGUAGE = register(
    RunSchema(
        name="language",
        matches=lambda c: c.get("task") in ("language", "text"),
        fields={
            "model.embed_size": Int(1, MAX_EMBED),
            "model.hidden_size": Int(1, MAX_HIDDEN),
            **_LANGUAGE_OPTIONS,
            "tokenizer.level": Text(("char", "word")),
            "tokenizer.tokens": Texts(MAX_VOCAB),
        },
        optional=frozenset(_LANGUAGE_OPTIONS),
        sizes=_language_sizes,
    )
)


# -------------------------------------------------------------------- classify


def _classify_sizes(c: Mapping[str, Any]) -> tuple[RnnSizes, dict[str, tuple[int, ...] | None]]:
    m = c["model"]
    text = "vocab_size" in m
    d = 2 if m.get("bidirectional", False) else 1  # D
    h, p, classes = m["hidden_size"], m.get("proj_size", 0), m["num_classes"]  # H, P, C
    width = m["embed_dim"] if text else m["input_size"]
    rnn = RnnSizes("rnn.", m.get("num_layers", 1), width, h, p, d)
    shapes: dict[str, tuple[int, ...] | None] = {
        "head.weight": (classes, d * (p or h)),
        "head.bias": (classes,),
    }
    if text:
        shapes["embed.weight"] = (m["vocab_size"], m["embed_dim"])
    return rnn, shapes


#: What ``classify predict`` reads from ``data``, by its ``kind``.
_CLASSIFY_DATA: dict[str, dict[str, Spec]] = {
    "numeric": {"id": Text(), "time": Text(), "label": Text(), "features": Texts(MAX_FEATURES, 1)},
    "digits": {"id": Text(), "time": Text(), "label": Text(), "features": Texts(MAX_FEATURES, 1)},
    "text": {
        "text": Text(),
        "label": Text(),
        "max_tokens": Int(1, MAX_WINDOW),
        "tokenizer.level": Text(("char", "word")),
        "tokenizer.tokens": Texts(MAX_VOCAB),
    },
}


def _classify_data(data: Mapping[str, Any]) -> str | None:
    for path, spec in _CLASSIFY_DATA[data["kind"]].items():
        value: Any = data
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        expected = spec.problem(value)
        if expected is not None:
            return f"data.{path} must be {expected} (a {data['kind']} classifier)"
    return None


def _classify_consistent(c: Mapping[str, Any]) -> str | None:
    m = c["model"]
    problem = _classify_data(c["data"])
    if problem is not None:
        return problem
    if not isinstance(c.get("classes"), list) or len(c["classes"]) != m["num_classes"]:
        return f"classes must be a list of model.num_classes ({m['num_classes']}) labels"
    if "vocab_size" in m:
        if "embed_dim" not in m:
            return "model.vocab_size given without model.embed_dim"
        tokens = c["data"].get("tokenizer", {}).get("tokens", [])
        if c["data"]["kind"] != "text" or m["vocab_size"] != len(tokens) + 1:
            return "model.vocab_size must be the number of data.tokenizer.tokens + 1"
        return None
    if "input_size" not in m:
        return "model needs input_size (numeric) or vocab_size and embed_dim (text)"
    for key in ("mean", "std"):
        if key in m and len(m[key]) != m["input_size"]:
            return f"model.{key} has {len(m[key])} entries for {m['input_size']} input features"
    return None


_CLASSIFY_OPTIONS: dict[str, Spec] = {
    "model.num_layers": Int(1, MAX_LAYERS),
    "model.proj_size": Int(0, MAX_HIDDEN),
    "model.layer_norm": Flag(),
    "model.zoneout": _PROBABILITY,
    "model.recurrent_dropout": _PROBABILITY,
    "model.forget_bias": Real(-1000.0, 1000.0),
    "model.variant": VariantSpec(),
    "model.dropout": _PROBABILITY,
    "model.bidirectional": Flag(),
    "model.pooling": Text(("last", "mean")),
    "model.input_size": Int(1, MAX_FEATURES),
    "model.vocab_size": Int(1, MAX_VOCAB),
    "model.embed_dim": Int(1, MAX_EMBED),
    "model.mean": Reals(MAX_FEATURES),
    "model.std": Reals(MAX_FEATURES, positive=True),
}
CLASSIFY = register(
    RunSchema(
        name="classify",
        matches=lambda c: (
            c.get("task") == "classify"
            or (isinstance(c.get("model"), dict) and "classes" in c and "data" in c)
        ),
        fields={
            "data.kind": Text(tuple(_CLASSIFY_DATA)),
            "model.num_classes": Int(1, MAX_CLASSES),
            "model.hidden_size": Int(1, MAX_HIDDEN),
            **_CLASSIFY_OPTIONS,
        },
        optional=frozenset(_CLASSIFY_OPTIONS),
        sizes=_classify_sizes,
        consistent=_classify_consistent,
    )
)
