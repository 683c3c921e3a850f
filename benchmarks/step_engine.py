"""The native kernel's per-step GEMM engine, measured (kernels/native/engine.py).

1. the per-step product alone, (B, H) @ (H, 4H), as GFLOP/s: ``torch.mm`` (MKL sgemm),
   ``F.linear`` and oneDNN's packed linear (``torch.ops.mkldnn._linear_pointwise``);
2. the whole kernel (vanilla and fgr, train and inference) with each engine, interleaved;
3. fgr as two products per step (the default), with its gate recurrence folded into the
   recurrent product, and with that product in bf16 (native-bf16 CPUs), against native
   vanilla and torch.nn.LSTM, in one interleaved run (``--fold``).

    PYTHONPATH=src .venv/bin/python benchmarks/step_engine.py [--threads 1] [--repeats 3]
"""

import argparse

import torch

from lstmlens.bench import Shape, _impls, _step, time_interleaved
from lstmlens.kernels.native import engine
from lstmlens.precision import cpu_model, native_bf16

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
    ap.add_argument("--fold", action="store_true", help="only part 3")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_model()}, {args.threads} threads, torch {torch.__version__}")
    if args.fold:
        fold_table(args.repeats)
        return
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


def _with(setter, step):
    """``step`` run with the kernel switch ``setter`` on (then off again)."""

    def run():
        setter(True)
        try:
            step()
        finally:
            setter(False)

    return run


def fold_table(repeats: int) -> None:
    """fgr folded / two products / native vanilla / torch.nn.LSTM: ms and ratio to torch."""
    names = ["torch.nn.LSTM", "native:vanilla", "native:fgr"]
    print("| shape | mode | torch.nn.LSTM ms | vanilla | fgr | fgr folded | fgr, W_gate in bf16 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for s in (*SHAPES, Shape(64, 100, 256, 256, 2), Shape(32, 200, 128, 256, 1, True)):
        x = torch.randn(s.T, s.B, s.I)
        models = _impls(s, names)
        for mode in ("train", "infer"):
            steps = {k: _step(m, x, mode) for k, m in models.items()}
            steps["fgr folded"] = _with(engine.fold_fgr, steps["native:fgr"])
            if native_bf16():
                steps["fgr bf16 gate"] = _with(engine.fgr_bf16, steps["native:fgr"])
            ms = time_interleaved(steps, repeats)
            base = ms["torch.nn.LSTM"]
            cells = " | ".join(f"{ms[k] / base:.2f}x" for k in list(ms)[1:])
            print(f"| {s.label()} | {mode} | {base:.1f} | {cells} |")


if __name__ == "__main__":
    main()
