"""Inference speed of a deployed model: eager lstmlens (native kernel) against ONNX Runtime.

One thread everywhere (``torch.set_num_threads(1)``, ONNX Runtime ``intra_op_num_threads=1``),
float32, eval mode, no grad. For each model a batch of ``B`` sequences of length ``T`` is run
repeatedly; the table gives the median time of one call, the latency per sequence
(call / B) and the throughput (sequences per second), for

* the three DESIGN shapes ``(B, T, I, H)`` = (64, 100, 256, 256), (32, 30, 1, 64),
  (16, 200, 128, 512) as a vanilla one-layer LSTM (ONNX's own ``LSTM`` operator), plus the
  first shape as ``cifg`` with layer norm (a ``Scan`` over the step in ONNX);
* the demo forecaster (``lstmlens forecast train`` defaults: window 30, one feature,
  hidden 32, linear head) forecasting one series (B = 1) and a backtest's 256 windows.

The ``compile ms/call`` column is ``torch.compile(model, fullgraph=True, dynamic=False)``
(inductor) of the same model: the kernels are ``torch.library`` custom ops
(:mod:`lstmlens.kernels.native.ops`), so the whole model is one graph around them;
``compile/eager`` < 1 means the compiled model is faster. Compilation time is not counted.

    .venv/bin/python benchmarks/deploy.py [--seconds 1.0] [--quick]
"""

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import lstmlens
import lstmlens.export
from lstmlens.kernels import native
from lstmlens.tasks.forecast_model import ForecastNet, NetConfig


def lstm(I: int, H: int, **kw):  # noqa: E741
    return lstmlens.LSTM(I, H, backend="native", **kw)


def demo_forecaster():
    net = ForecastNet(NetConfig(input_size=1, hidden_size=32))
    net.lstm.backend = "native"
    return net


# name -> (model factory, (B, T, I))
MODELS = {
    "LSTM B=64 T=100 I=256 H=256": (lambda: lstm(256, 256), (64, 100, 256)),
    "LSTM B=32 T=30 I=1 H=64": (lambda: lstm(1, 64), (32, 30, 1)),
    "LSTM B=16 T=200 I=128 H=512": (lambda: lstm(128, 512), (16, 200, 128)),
    "cifg+LN B=64 T=100 I=256 H=256": (
        lambda: lstm(256, 256, variant="cifg", layer_norm=True),
        (64, 100, 256),
    ),
    "demo forecaster B=1": (demo_forecaster, (1, 30, 1)),
    "demo forecaster B=256": (demo_forecaster, (256, 30, 1)),
}


def median_seconds(fn, budget: float) -> float:
    fn()  # warm up (builds, allocations)
    fn()
    times, spent = [], 0.0
    while spent < budget or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return statistics.median(times)


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(name: str, factory, shape, budget: float, folder: Path) -> tuple[float, ...]:
    """Seconds per call: eager, compiled, ONNX Runtime; the largest difference of their
    outputs from eager's."""
    B, T, I = shape  # noqa: E741
    model = factory().eval()
    batch_first = isinstance(model, ForecastNet)
    x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
    path = lstmlens.export.onnx(model, torch.randn_like(x[:2] if batch_first else x[:, :2]),
                                folder / "m.onnx", check=False)  # fmt: skip
    sess = session(path)
    feeds = {sess.get_inputs()[0].name: x.numpy()}
    with torch.no_grad():

        def eager():
            return model(x)

        want = eager()
        want = want[0] if isinstance(want, tuple) else want
        got = sess.run(None, feeds)[0]
        diff = float(np.abs(got - want.numpy()).max())
        t_eager = median_seconds(eager, budget)
        compiled = torch.compile(model, fullgraph=True, dynamic=False)
        got_c = compiled(x)
        got_c = got_c[0] if isinstance(got_c, tuple) else got_c
        diff = max(diff, float((got_c - want).abs().max()))
        t_compiled = median_seconds(lambda: compiled(x), budget)
    t_onnx = median_seconds(lambda: sess.run(None, feeds), budget)
    return t_eager, t_compiled, t_onnx, diff


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per cell (1.0)")
    parser.add_argument("--quick", action="store_true", help="0.1 s per cell (a smoke run)")
    args = parser.parse_args()
    budget = 0.1 if args.quick else args.seconds
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    import onnxruntime

    print(f"CPU: {cpu}; 1 thread; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")
    state = native.status()
    print(
        "eager backend: "
        + ("native (compiled kernel)" if state.ok else f"fused: {state.summary()}")
    )
    head = ("model", "eager ms/call", "ms/seq", "seq/s", "compile ms/call", "compile/eager",
            "ORT ms/call", "ms/seq", "seq/s", "ORT/eager", "max |diff|")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (factory, shape) in MODELS.items():
            t_e, t_c, t_o, diff = measure(name, factory, shape, budget, Path(tmp))
            B = shape[0]
            cells = [f"{1e3 * t_e:.3f}", f"{1e3 * t_e / B:.4f}", f"{B / t_e:,.0f}",
                     f"{1e3 * t_c:.3f}", f"{t_c / t_e:.2f}",
                     f"{1e3 * t_o:.3f}", f"{1e3 * t_o / B:.4f}", f"{B / t_o:,.0f}",
                     f"{t_o / t_e:.2f}", f"{diff:.1e}"]  # fmt: skip
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
