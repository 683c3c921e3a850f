"""``lstmlens bench`` in-process: the table it prints, its argument errors, the FLOP counts."""

import time

import pytest
import torch

from lstmlens import bench
from lstmlens.bench import Peak, Shape, default_backend, lstm_flops, shape_flops
from lstmlens.cli import main as cli_main
from lstmlens.cli.bench import parse_shapes
from lstmlens.cli.common import CLIError
from lstmlens.kernels import registry


@pytest.fixture(autouse=True)
def quick_peak(monkeypatch):
    """The command's peak measurement on a small matmul (the full one takes seconds)."""
    monkeypatch.setattr(
        "lstmlens.cli.bench.matmul_peak", lambda: bench.matmul_peak(sizes=(64,), repeats=1)
    )


def test_bench_prints_one_row_per_impl_and_mode(capsys):
    argv = ["bench", "--shapes", "2,3,2,4;1,2,1,3", "--variants", "vanilla,cifg",
            "--repeats", "1", "--quiet"]  # fmt: skip
    assert cli_main.main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = [line for line in out.splitlines() if line.startswith("| (")][1:]  # after the header
    best = default_backend()  # what auto runs here: native where it is built
    impls = ("torch.nn.LSTM", f"{best}:vanilla", f"{best}:cifg")
    want = {(s, i, m) for s in ("(2, 3, 2, 4)", "(1, 2, 1, 3)") for i in impls
            for m in ("train", "infer")}  # fmt: skip
    got = {tuple(c.strip() for c in line.split("|")[1:4]) for line in rows}
    assert got == want and len(rows) == len(want)
    for line in rows:  # the baseline's ratio is 1 by definition
        cells = [c.strip() for c in line.split("|")]
        if cells[2] == "torch.nn.LSTM":
            assert cells[5] == "1.00"


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["--shapes", "2,3,4"], "B,T,I,H[,LAYERS][,bi]"),
        (["--shapes", "2,x,4,5"], "B,T,I,H[,LAYERS][,bi]"),
        (["--shapes", "0,3,4,5"], "B,T,I,H[,LAYERS][,bi]"),
        (["--shapes", "2,3,4,5,0"], "B,T,I,H[,LAYERS][,bi]"),
        (["--shapes", "2,3,4,5,1,2"], "B,T,I,H[,LAYERS][,bi]"),
        (["--threads", "-1"], "--threads"),
        (["--variants", "vanilla,bogus"], "--variants must be among"),
        (["--modes", "fast"], "--modes must be among"),
        (["--backend", "cuda"], "--backend must be among native, fused, reference"),
    ],
)
def test_bench_bad_arguments_are_one_line_errors(capsys, argv, msg):
    assert cli_main.main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlens: error: bench:") and msg in err and err.count("\n") == 1


def test_parse_shapes():
    assert parse_shapes("64,100,256,256; 32,30,1,64;") == [(64, 100, 256, 256, 1, False),
                                                           (32, 30, 1, 64, 1, False)]  # fmt: skip
    assert parse_shapes("64,100,256,256,2;32,200,128,256,bi;1,2,3,4,3,bi") == [
        Shape(64, 100, 256, 256, layers=2),
        Shape(32, 200, 128, 256, bidirectional=True),
        Shape(1, 2, 3, 4, 3, True),
    ]
    with pytest.raises(CLIError):
        parse_shapes(";")


def test_flops_count_the_variant_matmuls():
    # per step and sequence, forward: 2*nG*H*(I+H) (+ 2*(nS*H)^2 with full gate recurrence)
    assert lstm_flops(1, 1, 1, 1, train=False) == 2 * 4 * 2
    assert lstm_flops(1, 1, 1, 1, train=False, variant="cifg") == 2 * 3 * 2
    assert lstm_flops(1, 1, 1, 1, train=False, variant="fgr") == 2 * 4 * 2 + 2 * 3**2
    assert lstm_flops(2, 5, 3, 4, train=True, variant="layer_norm") == 3 * 2 * 10 * 16 * 7


def test_bench_times_every_registered_backend_with_all(capsys):
    argv = ["bench", "--shapes", "1,2,1,3", "--variants", "cifg", "--backend", "all",
            "--modes", "infer", "--repeats", "1", "--quiet"]  # fmt: skip
    assert cli_main.main(argv) == 0
    out = capsys.readouterr().out
    for name in registry.names():
        assert f"| {name}:cifg | infer |" in out


def test_flops_of_a_stack_sum_its_layers_and_directions():
    # layer 0 reads I, layer 1 reads dirs*H; each direction counts once
    one = lstm_flops(2, 5, 3, 4, train=True)
    assert shape_flops(Shape(2, 5, 3, 4), train=True) == one
    two = lstm_flops(2, 5, 4, 4, train=True)
    assert shape_flops(Shape(2, 5, 3, 4, layers=2), train=True) == one + two
    bi = lstm_flops(2, 5, 8, 4, train=False, variant="fgr")
    want = 2 * (lstm_flops(2, 5, 3, 4, False, "fgr") + bi)
    assert shape_flops(Shape(2, 5, 3, 4, 2, True), train=False, variant="fgr") == want


def _slow_at_first(costs):
    """A function whose k-th call sleeps costs[k] seconds (0 once they run out); it counts
    its calls."""

    def fn():
        fn.calls += 1
        if fn.calls <= len(costs):
            time.sleep(costs[fn.calls - 1])

    fn.calls = 0
    return fn


def test_warm_up_runs_until_the_time_stops_falling():
    fn = _slow_at_first([0.06, 0.02, 0.006])  # e.g. torch.nn.LSTM's first training steps
    assert bench.warm_up(fn) >= 4 and fn.calls >= 4  # past the slow calls, then one more
    # and those calls are not what gets timed: the median is the steady state
    fns = {"cold": _slow_at_first([0.06, 0.02, 0.006]), "warm": _slow_at_first([])}
    assert bench.time_interleaved(fns, repeats=1)["cold"] < 5.0
    assert bench.warm_up(_slow_at_first([]), min_calls=3) >= 3


def test_every_implementation_is_warmed_up_the_baseline_included(monkeypatch):
    warmed = []
    real = bench.warm_up

    def spy(fn, *a, **k):
        warmed.append(fn)
        return real(fn, *a, **k)

    monkeypatch.setattr(bench, "warm_up", spy)
    impls = ["torch.nn.LSTM", f"{default_backend()}:vanilla", "reference:cifg"]
    rows = bench.run_benchmark([(2, 3, 2, 4)], impls, ["train", "infer"], repeats=1)
    assert len(warmed) == len(rows) == 6 and len(set(map(id, warmed))) == 6


def test_bench_table_has_gflops_and_peak_columns_and_the_stacked_shapes(capsys, monkeypatch):
    monkeypatch.setattr("lstmlens.cli.bench.matmul_peak", lambda: Peak(1, 50.0, None))
    argv = ["bench", "--shapes", "2,3,2,4,2;2,3,2,4,1,bi", "--variants", "vanilla",
            "--repeats", "1", "--threads", "1", "--quiet"]  # fmt: skip
    threads = torch.get_num_threads()
    try:
        assert cli_main.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert out.startswith("matmul peak (1 threads") and "fp32 50 GFLOP/s" in out
    assert "| ms | x torch.nn.LSTM | GFLOP/s | % fp32 peak |" in out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| (")][1:]
    assert {r[0].strip() for r in rows} == {"(2, 3, 2, 4) x2", "(2, 3, 2, 4) bi"}
    assert len(rows) == 8 and all(len(r) == 7 for r in rows)
    for r in rows:  # GFLOP/s and % of peak are numbers (small here)
        assert float(r[5]) >= 0 and float(r[6]) >= 0


def test_peak_percentage_is_gflops_over_the_fp32_peak():
    peak = Peak(1, 10.0, None)
    rows = bench.run_benchmark([Shape(4, 5, 3, 8, 2, True)], ["torch.nn.LSTM"], ["infer"], 1,
                               peak=peak)  # fmt: skip
    (row,) = rows
    assert row.gflops == pytest.approx(shape_flops(row.shape, False) / row.ms / 1e6)
    assert row.peak == pytest.approx(100 * row.gflops / 10.0)


def test_matmul_peak_measures_fp32_and_bf16_only_where_native(monkeypatch):
    monkeypatch.setattr(bench, "native_bf16", lambda: False)
    peak = bench.matmul_peak(sizes=(64,), repeats=1)
    assert peak.fp32 > 0 and peak.bf16 is None and "bf16 not native here" in peak.line()
    monkeypatch.setattr(bench, "native_bf16", lambda: True)
    assert bench.matmul_peak(sizes=(64,), repeats=1).bf16 > 0


def test_the_default_table_has_the_stacked_and_bidirectional_shapes():
    assert Shape(64, 100, 256, 256, layers=2) in bench.DESIGN_SHAPES
    assert Shape(32, 200, 128, 256, bidirectional=True) in bench.DESIGN_SHAPES
    assert Shape(64, 100, 256, 256, 2).label() == "(64, 100, 256, 256) x2"
    assert Shape(32, 200, 128, 256, 1, True).label() == "(32, 200, 128, 256) bi"
