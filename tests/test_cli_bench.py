"""``lstmlens bench`` in-process: the table it prints, its argument errors, the FLOP counts."""

import pytest

from lstmlens.bench import default_backend, lstm_flops
from lstmlens.cli import main as cli_main
from lstmlens.cli.bench import parse_shapes
from lstmlens.cli.common import CLIError
from lstmlens.kernels import registry


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
        (["--shapes", "2,3,4"], "four integers"),
        (["--shapes", "2,x,4,5"], "four integers"),
        (["--shapes", "0,3,4,5"], "four integers"),
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
    assert parse_shapes("64,100,256,256; 32,30,1,64;") == [(64, 100, 256, 256), (32, 30, 1, 64)]
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
