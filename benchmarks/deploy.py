"""Inference speed of a deployed model: eager lstmlens (native kernel), torch.compile,
AOTInductor and ONNX Runtime.

One thread everywhere (``torch.set_num_threads(1)``, ONNX Runtime ``intra_op_num_threads=1``),
float32, eval mode, no grad. For each model a batch of ``B`` sequences of length ``T`` is run
repeatedly; the table gives the median time of one call, the latency per sequence
(call / B) and the throughput (sequences per second), for

* the three DESIGN shapes ``(B, T, I, H)`` = (64, 100, 256, 256), (32, 30, 1, 64),
  (16, 200, 128, 512) as a vanilla one-layer LSTM (ONNX's own ``LSTM`` operator), plus the
  first shape as ``cifg`` with layer norm (a ``Scan`` over the step in ONNX);
* the demo forecaster (``lstmlens forecast train`` defaults: window 30, one feature,
  hidden 32, linear head) forecasting one series (B = 1) and a backtest's 256 windows.

Columns: ``compile`` is ``torch.compile(model, fullgraph=True, dynamic=False)`` (inductor) of
the same model, called under ``torch.no_grad()``; ``compile, in place`` the same compilation
through ``model.compile(...)`` (``nn.Module.compile``: no ``OptimizedModule`` wrapper around
the module, one Python layer less per call); with ``--aoti``, ``AOTI`` is ``torch.export`` +
AOTInductor (``torch._inductor.aoti_compile_and_package``), the compiled model without Python
around it (a minute or more to build per model). The kernels are ``torch.library`` custom ops
with C++ autograd kernels (:mod:`lstmlens.kernels.native.ops`), so every compiled form is one
graph around the very kernel eager runs, and under ``no_grad`` no form pays for autograd. A
ratio < 1 means faster than eager. Compilation is not timed.

All implementations of one model are timed in interleaved rounds (eager, compiled, ...,
eager, compiled, ...) and the median over rounds is reported, so that a load that changes
during the run touches all of them alike.

    .venv/bin/python benchmarks/deploy.py [--seconds 1.0] [--quick] [--aoti]
        [--only "B=32 T=30,forecaster B=1"]
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


def interleaved(fns: dict, budget: float, rounds: int = 10) -> dict[str, float]:
    """Seconds per call of each of ``fns`` (name -> callable): the median over ``rounds``
    interleaved rounds of the median call in each, ``budget`` seconds per callable in all."""
    for fn in fns.values():  # warm up (builds, allocations, a compiled model's first calls)
        fn()
        fn()
    per_round: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times, spent = [], 0.0
            while spent < budget / rounds or len(times) < 3:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
                spent += times[-1]
            per_round[name].append(statistics.median(times))
    return {name: statistics.median(v) for name, v in per_round.items()}


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(factory, shape, budget: float, folder: Path, aoti: bool) -> tuple[dict, float]:
    """Seconds per call by implementation, and the largest difference of any output from
    eager's."""
    B, T, I = shape  # noqa: E741
    model = factory().eval()
    batch_first = isinstance(model, ForecastNet)
    x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
    path = lstmlens.export.onnx(model, torch.randn_like(x[:2] if batch_first else x[:, :2]),
                                folder / "m.onnx", check=False)  # fmt: skip
    sess = session(path)
    feeds = {sess.get_inputs()[0].name: x.numpy()}
    first = lambda out: out[0] if isinstance(out, tuple) else out  # noqa: E731
    with torch.no_grad():
        want = first(model(x))
        compiled = torch.compile(model, fullgraph=True, dynamic=False)
        in_place = factory().eval()
        in_place.load_state_dict(model.state_dict())
        in_place.compile(fullgraph=True, dynamic=False)
        outputs = [sess.run(None, feeds)[0], first(compiled(x)).numpy(), first(in_place(x)).numpy()]
        fns = {
            "eager": lambda: model(x),
            "compile": lambda: compiled(x),
            "compile, in place": lambda: in_place(x),
        }
        if aoti:
            program = torch.export.export(model, (x,))
            package = torch._inductor.aoti_compile_and_package(
                program, package_path=str(folder / "m.pt2")
            )
            runner = torch._inductor.aoti_load_package(package)
            outputs.append(first(runner(x)).numpy())
            fns["AOTI"] = lambda: runner(x)
    diff = max(float(np.abs(o - want.numpy()).max()) for o in outputs)

    def under(context, fn):
        def call():
            with context():
                return fn()

        return call

    timed = {name: under(torch.no_grad, fn) for name, fn in fns.items()}
    timed["ORT"] = lambda: sess.run(None, feeds)
    return interleaved(timed, budget * len(timed)), diff


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per cell (1.0)")
    parser.add_argument("--quick", action="store_true", help="0.1 s per cell (a smoke run)")
    parser.add_argument("--aoti", action="store_true", help="also AOTInductor (slow to build)")
    parser.add_argument("--only", default="", help="comma-separated parts of model names")
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
    names = ["compile", "compile, in place"] + (["AOTI"] if args.aoti else []) + ["ORT"]
    head = ["model", "eager ms/call", "ms/seq", "seq/s"]
    for name in names:
        head += [f"{name} ms/call", f"{name}/eager"]
    head += ["ORT seq/s", "max |diff|"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    wanted = [w.strip() for w in args.only.split(",")] if args.only else None
    with tempfile.TemporaryDirectory() as tmp:
        for name, (factory, shape) in MODELS.items():
            if wanted and not any(w in name for w in wanted):
                continue
            t, diff = measure(factory, shape, budget, Path(tmp), args.aoti)
            B = shape[0]
            cells = [
                f"{1e3 * t['eager']:.3f}",
                f"{1e3 * t['eager'] / B:.4f}",
                f"{B / t['eager']:,.0f}",
            ]
            for other in names:
                cells += [f"{1e3 * t[other]:.3f}", f"{t[other] / t['eager']:.2f}"]
            cells += [f"{B / t['ORT']:,.0f}", f"{diff:.1e}"]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
