"""Per-step latency of streaming inference (``lstmlens.stream.Stream``): one observation in,
one output out, state kept between calls; against calling the layer on a length-1 sequence
with the state passed back in (what one would write without ``Stream``).

    .venv/bin/python benchmarks/stream_latency.py [--steps 2000]
"""

import argparse
import statistics
import sys
import time

import torch

import lstmlens
from lstmlens.stream import Stream

MODELS = {  # name -> (model, input size)
    "forecaster LSTM(1, 64, 2 layers)": (lambda: lstmlens.LSTM(1, 64, num_layers=2), 1),
    "text LSTM(64, 512)": (lambda: lstmlens.LSTM(64, 512), 64),
    "cifg LSTM(8, 128, layer_norm)": (
        lambda: lstmlens.LSTM(8, 128, variant="cifg", layer_norm=True),
        8,
    ),
    "GRU(1, 64, 2 layers)": (lambda: lstmlens.GRU(1, 64, num_layers=2), 1),
}


def per_step_us(fn, xs) -> float:
    times = []
    for x in xs:
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    print("| model | Stream.step (us) | layer on length-1 input (us) |")
    print("|---|---:|---:|")
    for name, (build, I) in MODELS.items():
        torch.manual_seed(0)
        model = build().eval()
        xs = torch.randn(args.steps, 1, I)  # batch of one
        stream = Stream(model)
        state = None

        def layer_step(x, model=model):
            nonlocal state
            with torch.inference_mode():
                out, state = model(x.unsqueeze(0), state)

        per_step_us(stream.step, xs[:50])  # warm-up
        per_step_us(layer_step, xs[:50])
        a, b = per_step_us(stream.step, xs), per_step_us(layer_step, xs)
        print(f"| {name} | {a:.0f} | {b:.0f} |")


if __name__ == "__main__":
    main()
