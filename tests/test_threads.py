"""Commands train on one torch thread by default; --threads changes it, 0 keeps torch's."""

import pytest
import torch

from lstmlens.cli import main as cli_main
from lstmlens.train.threads import torch_threads


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(0):
        assert torch.get_num_threads() == before
    with pytest.raises(
        ValueError, match="torch_threads: expected a number of threads >= 0, got -1"
    ):
        with torch_threads(-1):
            pass


@pytest.mark.parametrize(
    "command",
    [
        ["text", "train"],
        ["forecast", "train"],
        ["classify", "train"],
        ["longrange", "adding"],
        ["inspect", "RUN"],
    ],
)
def test_every_training_command_takes_threads(command):
    parser = cli_main.build_parser()
    assert parser.parse_args(command).threads == 1
    assert parser.parse_args([*command, "--threads", "0"]).threads == 0


def test_main_runs_the_command_on_those_threads(monkeypatch, capsys):
    seen = {}
    parser = cli_main.build_parser()

    def fake(args):
        seen["threads"] = torch.get_num_threads()
        return 0

    monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
    args = parser.parse_args(["text", "train"])
    args.func = fake
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    before = torch.get_num_threads()
    assert cli_main.main(["text", "train"]) == 0
    assert seen["threads"] == 1 and torch.get_num_threads() == before


def test_negative_threads_is_one_line_exit_2(capsys):
    assert cli_main.main(["text", "train", "--threads", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--threads" in err[0]
