"""Where a compiled LSTM call's time goes, beside eager: the per-call cost around one kernel.

One vanilla ``lstmlens.LSTM`` layer (native backend), float32, eval, ``torch.no_grad()``, one
thread. Each line is the median thread-CPU time of one call (``time.thread_time_ns``: what
this thread spent, robust to other processes on a shared machine), over rounds that rotate
the order of the implementations; the last column is the difference from the kernel alone.

* ``kernel alone``: ``torch.ops.lstmlens_native.lstm_forward`` called directly, zero states
  made as the layer makes them: what every other line runs too;
* ``kernel, dynamo only``: the same call traced by dynamo, run by its ``eager`` backend (the
  FX graph, no AOTAutograd, no inductor): dynamo's own per-call cost;
* ``kernel, compiled``: the same call through inductor (adds AOTAutograd's runtime wrapper
  and inductor's generated ``call``);
* ``eager layer``: ``layer(x)``, the Python around the kernel (input checks, backend and
  schedule selection, weight slots, states);
* ``torch.compile(layer)`` and ``layer.compile()``: the whole layer compiled
  (``fullgraph=True, dynamic=False``);
* ``torch.compile(layer), guards skipped``: the same under
  ``torch.compiler.set_stance(skip_guard_eval_unsafe=True)``, a diagnostic only (unsafe: it
  does not check that the inputs still match the compiled program): the cost of the guards.

    PYTHONPATH=src python benchmarks/compile_overhead.py [--shape 32,30,1,64] [--rounds 300]
"""

import argparse
import statistics
import sys
import time

import torch

import lstmlens
from lstmlens.kernels.native import native_ops
from lstmlens.kernels.native.abi import LSTM_SLOTS, lstm_config


def implementations(B: int, T: int, I: int, H: int) -> dict:  # noqa: E741
    def layer():
        torch.manual_seed(0)
        return lstmlens.LSTM(I, H, backend="native").eval()

    x = torch.randn(T, B, I)
    eager = layer()
    ops, p = native_ops(), eager.layer_parameters(0)
    w = [p[n] if n in p else x.new_empty(0) for n in LSTM_SLOTS]
    cfg = lstm_config(eager.spec)

    def kernel(x):
        z = x.new_zeros(1, x.shape[1], H)
        return ops.lstm_forward(x, z[0], z[0], w, cfg, None, None, None, False)

    compiled = torch.compile(layer(), fullgraph=True, dynamic=False)
    in_place = layer()
    in_place.compile(fullgraph=True, dynamic=False)
    dynamo_only = torch.compile(kernel, fullgraph=True, dynamic=False, backend="eager")
    kernel_compiled = torch.compile(kernel, fullgraph=True, dynamic=False)

    def unguarded():
        with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
            return compiled(x)

    return {
        "kernel alone": lambda: kernel(x),
        "kernel, dynamo only": lambda: dynamo_only(x),
        "kernel, compiled": lambda: kernel_compiled(x),
        "eager layer": lambda: eager(x),
        "torch.compile(layer)": lambda: compiled(x),
        "layer.compile()": lambda: in_place(x),
        "torch.compile(layer), guards skipped": unguarded,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="32,30,1,64", help="B,T,I,H (32,30,1,64)")
    parser.add_argument("--rounds", type=int, default=300, help="rotated rounds (300)")
    args = parser.parse_args()
    B, T, I, H = (int(v) for v in args.shape.split(","))  # noqa: E741
    torch.set_num_threads(1)
    if native_ops() is None:
        print("the native kernel is unavailable here", file=sys.stderr)
        return 1
    with torch.no_grad():
        fns = implementations(B, T, I, H)
        items = list(fns.items())
        for _, fn in items:  # compile and warm up
            for _ in range(20):
                fn()
        times: dict[str, list[float]] = {name: [] for name in fns}
        for r in range(args.rounds):
            for name, fn in items[r % len(items) :] + items[: r % len(items)]:
                t0 = time.thread_time_ns()
                for _ in range(5):
                    fn()
                times[name].append((time.thread_time_ns() - t0) / 5e3)
    base = statistics.median(times["kernel alone"])
    print(f"(B, T, I, H) = ({B}, {T}, {I}, {H}); torch {torch.__version__}; 1 thread; us per call")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"{name:40s} {m:9.1f}  {m - base:+8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
