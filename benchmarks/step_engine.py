"""The native kernel's per-step GEMM engine, measured (kernels/native/engine.py).

1. the per-step product alone, (B, H) @ (H, 4H), as GFLOP/s: ``torch.mm`` (MKL sgemm),
   ``F.linear`` and oneDNN's packed linear (``torch.ops.mkldnn._linear_pointwise``);
2. the whole kernel (vanilla and fgr, train and inference) with each engine, interleaved.

    PYTHONPATH=src .venv/bin/python benchmarks/step_engine.py [--threads 1] [--repeats 3]
"""

import argparse

import torch

from lstmlens.bench import Shape, _impls, _step, time_interleaved
from lstmlens.kernels.native import engine
from lstmlens.precision import cpu_model

SHAPES = (Shape(64, 100, 256, 256), Shape(32, 30, 1, 64), Shape(16, 200, 128, 512))


def per_step(B: int, H: int, rounds: int) -> dict[str, float]:
    a, w = torch.randn(B, H), torch.randn(4 * H, H)
    fns = {
        "torch.mm": lambda: torch.mm(a, w.t()),
        "F.linear": lambda: torch.nn.functional.linear(a, w),
    }
    if hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        pw = torch.ops.mkldnn._reorder_linear_weight(w, B)
        fns["oneDNN packed linear"] = lambda: torch.ops.mkldnn._linear_pointwise(
            a, pw, None, "none", [], ""
        )
    return {k: 8.0 * B * H * H / ms / 1e6 for k, ms in time_interleaved(fns, rounds).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_model()}, {args.threads} threads, torch {torch.__version__}")
    for s in SHAPES:
        rates = per_step(s.B, s.H, 200)
        print(f"per-step ({s.B}, {s.H}) @ ({s.H}, {4 * s.H}):",
              ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items()))  # fmt: skip
    print("| shape | mode | impl | " + " | ".join(f"{e} ms" for e in engine.ENGINES) + " |")
    print("|---|---|---|" + "---:|" * len(engine.ENGINES))
    for s in SHAPES:
        x = torch.randn(s.T, s.B, s.I)
        models = _impls(s, ["native:vanilla", "native:fgr"])
        for mode in ("train", "infer"):
            best: dict[tuple[str, str], float] = {}
            for _ in range(2):  # the engines alternate, twice: the best of each
                for e in engine.ENGINES:
                    with engine.using(e):
                        steps = {k: _step(m, x, mode) for k, m in models.items()}
                        for k, ms in time_interleaved(steps, args.repeats).items():
                            best[k, e] = min(best.get((k, e), float("inf")), ms)
            for k in models:
                cells = " | ".join(f"{best[k, e]:.1f}" for e in engine.ENGINES)
                print(f"| {s.label()} | {mode} | {k} | {cells} |")


if __name__ == "__main__":
    main()
