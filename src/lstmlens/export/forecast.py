r"""A forecast run as one ONNX graph: raw history window in, forecasts in the data's units out.

The graph is :meth:`lstmlens.tasks.forecast.Forecaster.predict_at` for one pass of the
network (``S`` steps), with the scaling in float64 as in eager and the network in float32::

    history (B, W, F) float64, the data's units: target then covariates
    z  = history, with log(z[..., 0]) when the run models log y
    u  = (z - mean) / scale                              the run's scaler (training rows)
    b  = u[:, -1, 0] if relative else 0                  (B,)
    q  = sort_Q(net(float32(u - b e_0))) + b             (B, S, Q) model scale
    forecast = q * scale_0 + mean_0  (exp() of it with log)

Longer horizons roll forward outside the graph (the serving script does it): append ``S``
rows whose target is the median forecast and whose covariates repeat the last row, keep the
last ``W`` rows, run again. The sidecar JSON says all this and carries the run's last ``W``
rows and the labels of the steps that follow, so ``examples/serve_onnx.py`` reproduces
``lstmlens forecast predict RUN``.

To adapt to another forecaster (say per-window normalisation), change :func:`forecast_graph`
and the ``preprocessing`` text of :func:`forecast_sidecar`; the network part is
:func:`lstmlens.export.modules.forecast_body`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .graph import Graph
from .modules import forecast_body

__all__ = ["forecast_run"]

#: forecast labels stored in the sidecar, in horizons (the serving script's --steps limit)
FUTURE_HORIZONS = 10


#: the forecaster as this exporter knows it: config fields that change the maths, the net's parts
KNOWN_CONFIG = {"window", "horizon", "mode", "quantiles", "hidden_size", "num_layers", "variant",
                "dropout", "log", "relative", "batch_size", "val_size", "test_size", "season"}  # fmt: skip
KNOWN_NET = {"input_size", "hidden_size", "num_layers", "variant", "dropout", "out_steps",
             "n_outputs"}  # fmt: skip
KNOWN_MODULES = {"lstm", "head"}
#: options added with the anchored forecaster, and the values that keep the maths above
#: (the last value as anchor, no seasonal indices, one member, no calibration)
NEUTRAL = {"anchor": (None, "level"), "deseasonalise": (None, False), "members": None,
           "calibrate": None, "test_origins": None}  # fmt: skip
NEUTRAL_NET = {"members": (1,), "zero_head": None}  # the net: one member; any initialisation


def check_known(fc: Any) -> None:
    """Refuse a forecaster with options this exporter does not write (instead of a wrong graph)."""
    import dataclasses

    for obj, known, neutral in (
        (fc.config, KNOWN_CONFIG, NEUTRAL),
        (fc.net.config, KNOWN_NET, NEUTRAL_NET),
    ):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in neutral:
                allowed = neutral[f.name]
                if allowed is None or value in allowed:
                    continue
                raise ValueError(
                    f"the ONNX exporter does not know the forecast option {f.name}={value!r} yet"
                )
            if f.name not in known and value != f.default:
                raise ValueError(
                    f"the ONNX exporter does not know the forecast option {f.name}={value!r} yet"
                )
    if getattr(fc, "future", ()):
        raise ValueError("the ONNX exporter does not know known-future covariates yet")
    if np.any(np.asarray(getattr(fc, "indices", [0.0])) != 0) or getattr(fc, "calibration", []):
        raise ValueError("the ONNX exporter does not know seasonal indices or calibration yet")
    children = {k for k, v in fc.net.named_children() if k != "others" or len(v)}
    extra = children - KNOWN_MODULES
    if extra:
        raise ValueError(f"the ONNX exporter does not know the forecast net's {sorted(extra)} yet")


def forecast_graph(g: Graph, fc: Any) -> None:
    """Inputs ``history`` (B, W, F) float64; output ``forecast`` (B, S, Q) float64, sorted on Q."""
    c, net, scaler = fc.config, fc.net, fc.scaler
    F = net.config.input_size
    history = g.input("history", ["batch", c.window, F], elem=g.double)
    z = history
    if c.log:
        target, rest = (
            g.op("Slice", history, g.ints([0]), g.ints([1]), g.ints([2])),
            g.op("Slice", history, g.ints([1]), g.ints([F]), g.ints([2])),
        )
        z = g.op("Concat", g.op("Log", target), rest, axis=2)
    mean = g.weight("mean", scaler.mean, np.float64)
    scale = g.weight("scale", scaler.scale, np.float64)
    u = g.op("Div", g.op("Sub", z, mean), scale)  # (B, W, F)
    base = None
    if c.relative:
        base = g.op("Slice", u, g.ints([-1, 0]), g.ints([c.window, 1]), g.ints([1, 2]))  # (B,1,1)
        e0 = np.zeros(F)
        e0[0] = 1.0
        u = g.op("Sub", u, g.op("Mul", base, g.weight("e0", e0, np.float64)))
    y = forecast_body(g, net, g.op("Cast", u, to=g.float))  # (B, S, Q) float32
    Q = net.config.n_outputs
    if Q > 1:
        y = g.op("TopK", y, g.ints([Q]), outputs=2, axis=-1, largest=0, sorted=1)[0]
    q = g.op("Cast", y, to=g.double)
    if base is not None:
        q = g.op("Add", q, base)
    scale0 = g.weight("scale0", scaler.scale[0], np.float64)
    out = g.op("Add", g.op("Mul", q, scale0), g.weight("mean0", scaler.mean[0], np.float64))
    if c.log:
        out = g.op("Exp", out)
    g.output(out, "forecast", ["batch", net.config.out_steps, Q], elem=g.double)


def forecast_sidecar(fc: Any, cfg: dict[str, Any], run: Path) -> dict[str, Any]:
    """What the serving side needs besides the graph."""
    c = fc.config
    levels = list(c.quantiles)
    from ..tasks.forecast_model import median_index

    side: dict[str, Any] = {
        "inputs": {
            "history": f"(B, {c.window}, {fc.net.config.input_size}) float64: the last "
            f"{c.window} rows of the target then the covariates {list(fc.covariates)}, "
            "in the data's units, oldest first"
        },
        "outputs": {
            "forecast": f"(B, {c.out_steps}, {max(1, len(levels))}) float64: the next "
            f"{c.out_steps} steps in the data's units, one column per quantile level (sorted)"
        },
        "preprocessing": (
            "none outside the graph: log (when 'log'), the run's scaler and the "
            "relative-to-last-value encoding are inside it"
        ),
        "postprocessing": (
            "point forecast = forecast[..., median_index]; for more than steps_per_call steps "
            "append steps_per_call rows (target = the point forecast, covariates = the last "
            "row's), keep the last window rows and run again"
        ),
        "target": fc.target,
        "covariates": list(fc.covariates),
        "window": c.window,
        "horizon": c.horizon,
        "steps_per_call": c.out_steps,
        "quantile_levels": levels,
        "median_index": median_index(c.quantiles),
        "log": c.log,
        "relative": c.relative,
    }
    side.update(_history(fc, cfg, run))
    return side


def _history(fc: Any, cfg: dict[str, Any], run: Path) -> dict[str, Any]:
    """The run's last ``W`` rows and the labels of the steps after them (when the data loads)."""
    from ..tasks.forecast_run import run_series

    try:
        series = run_series(run, fc, cfg)
    except (ValueError, OSError, KeyError):
        return {}
    steps = FUTURE_HORIZONS * fc.config.horizon
    index = series.future_index(steps)
    dated = hasattr(index[0], "date")
    return {
        "history": series.features[-fc.config.window :].tolist(),
        "future_label": "date" if dated else "step",
        "future": [str(t.date()) if dated else str(t) for t in index],
    }


def forecast_run(g: Graph, run: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """Build the graph of forecast run ``run`` into ``g``; returns the sidecar."""
    from ..tasks.forecast import Forecaster

    fc, cfg = Forecaster.load(run)
    assert fc.net is not None  # a loaded forecaster has its net
    fc.net.eval()
    check_known(fc)
    forecast_graph(g, fc)
    return forecast_sidecar(fc, cfg, run)
