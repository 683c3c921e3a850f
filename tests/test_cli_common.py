"""The CLI skeleton in-process: dispatch, exit statuses, common train options, run folders."""

import argparse
import importlib.machinery
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstmlens.cli import main as cli_main
from lstmlens.cli.common import (
    RUN_MARKER,
    CLIError,
    add_train_args,
    prepare_run_dir,
    reporter_from_args,
    train_config_from_args,
)
from lstmlens.train import TrainConfig, Trainer, load_model, save_json_atomic, save_model
from lstmlens.train.lock import LOCK_FILE


def train_parser():
    parser = argparse.ArgumentParser(prog="t")
    add_train_args(parser)
    return parser


# ------------------------------------------------------------- train options


def test_default_train_options_give_the_default_config():
    args = train_parser().parse_args([])
    assert train_config_from_args(args) == TrainConfig()
    assert (args.variant, args.layers, args.hidden, args.dropout) == ("vanilla", 1, 64, 0.0)
    assert (args.quiet, args.force, args.resume) == (False, False, False)


def test_train_options_reach_the_config(monkeypatch):
    monkeypatch.setattr("lstmlens.precision.native_bf16", lambda: True)  # else refused
    argv = "--epochs 7 --max-minutes 2.5 --seed 3 --lr 0.01 --optimizer sgd --weight-decay 0.1"
    argv += " --schedule cosine --clip 0 --patience 4 --precision bf16 --variant cifg --layers 2"
    args = train_parser().parse_args(argv.split())
    expected = TrainConfig(
        epochs=7,
        max_minutes=2.5,
        seed=3,
        lr=0.01,
        optimizer="sgd",
        weight_decay=0.1,
        schedule="cosine",
        clip_norm=None,
        patience=4,
        precision="bf16",
    )
    assert train_config_from_args(args) == expected
    assert (args.variant, args.layers) == ("cifg", 2)


@pytest.mark.parametrize(
    "argv",
    [
        "--epochs 0",
        "--epochs two",
        "--lr -1",
        "--lr nan",
        "--max-minutes 0",
        "--optimizer lbfgs",
        "--schedule step",
        "--precision fp16",
        "--dropout 1",
        "--clip -1",
        "--patience 0",
    ],
)
def test_bad_train_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        train_parser().parse_args(argv.split())
    assert stop.value.code == 2
    assert "error: argument " + argv.split()[0] in capsys.readouterr().err


def test_reporter_from_args_is_quiet_and_logs_in_the_run(tmp_path):
    reporter = reporter_from_args(argparse.Namespace(quiet=True), tmp_path)
    reporter.message("hello")
    assert reporter.quiet and (tmp_path / "train.log").read_text() == "hello\n"


# ---------------------------------------------------------------- run folder


def make_run(folder):
    prepare_run_dir(folder)
    (folder / "checkpoint.json").unlink()  # the mark of a run that trained nothing yet
    save_model(folder, nn.Linear(2, 1), {"n": 1})
    save_json_atomic(folder / "metrics.json", {"mae": 1.0})
    (folder / "forecast.png").write_bytes(b"png")
    return folder


def test_a_new_or_empty_folder_becomes_a_marked_run(tmp_path):
    assert prepare_run_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b" / RUN_MARKER).is_file()
    (tmp_path / "empty").mkdir()
    prepare_run_dir(tmp_path / "empty")
    prepare_run_dir(tmp_path / "empty")  # holding only the marker counts as empty
    names = sorted(p.name for p in (tmp_path / "empty").iterdir())
    assert names == [LOCK_FILE, RUN_MARKER, "checkpoint.json"]  # lock, marker, nothing trained


def test_an_existing_run_is_never_overwritten_without_force(tmp_path):
    run = make_run(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(CLIError, match=f"{run} already exists and is not empty; use --force"):
        prepare_run_dir(run)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_force_removes_only_run_files(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    (run / "data.csv").write_text("x\n1\n")
    (run / "sub").mkdir()
    (run / "sub" / "config.json").write_text("{}")
    prepare_run_dir(run, force=True)
    names = sorted(p.name for p in run.iterdir())
    assert names == [LOCK_FILE, RUN_MARKER, "checkpoint.json", "data.csv", "notes.txt", "sub"]
    assert (run / "sub" / "config.json").is_file()


def test_force_refuses_a_folder_lstmlens_did_not_make(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"png")
    with pytest.raises(CLIError, match="not an lstmlens run folder"):
        prepare_run_dir(tmp_path, force=True)
    assert (tmp_path / "photo.png").is_file()


def test_resume_needs_a_checkpoint_and_touches_nothing(tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(CLIError, match="cannot resume: no checkpoint in .*checkpoint.json"):
        prepare_run_dir(run, resume=True)
    with pytest.raises(CLIError, match="cannot resume"):
        prepare_run_dir(tmp_path / "nothing", resume=True)
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(CLIError, match="--force and --resume cannot be used together"):
        prepare_run_dir(run, force=True, resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CLIError, match="exists and is not a folder"):
        prepare_run_dir(tmp_path / "file")


# ------------------------------------------------------------ main, dispatch


class Task:
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 3, generator=g)
        self.y = self.x.sum(1, keepdim=True)

    def train_batches(self, epoch, generator):
        return [(self.x[i], self.y[i]) for i in torch.randperm(32, generator=generator).split(8)]

    def training_loss(self, model, batch):
        return F.mse_loss(model(batch[0]), batch[1])

    def validate(self, model):
        return {"val_loss": F.mse_loss(model(self.x), self.y).item()}


def fake_module():
    """``lstmlens.cli.fake``: a ``fit`` command written like a real one, and failing ones."""

    def fit(args):
        run = prepare_run_dir(args.out, args.force, args.resume)
        torch.manual_seed(args.seed)
        model = nn.Linear(3, 1)
        trainer = Trainer(
            model, Task(), train_config_from_args(args), run, reporter_from_args(args, run)
        )
        result = trainer.fit(resume=args.resume)
        save_model(run, model, {"in": 3})
        print(f"epochs {len(result.history)}")

    def fail(args):
        raise {
            "cli": CLIError("no such column 'price' in data.csv"),
            "value": ValueError("LSTM: expected input of 3 dims,\n got 2"),
            "missing": FileNotFoundError(2, "No such file or directory", "data.csv"),
            "interrupt": KeyboardInterrupt(),
            "status": SystemExit(3),
        }[args.kind]

    def register(subparsers):
        parser = subparsers.add_parser("fake", help="a test command")
        actions = parser.add_subparsers(dest="action")
        fit_parser = actions.add_parser("fit")
        fit_parser.add_argument("--out", required=True)
        add_train_args(fit_parser)
        fit_parser.set_defaults(func=fit, epochs=2)
        fail_parser = actions.add_parser("fail")
        fail_parser.add_argument("kind")
        fail_parser.set_defaults(func=fail)

    module = types.ModuleType("lstmlens.cli.fake")
    module.__spec__ = importlib.machinery.ModuleSpec("lstmlens.cli.fake", None)
    module.register = register
    return module


@pytest.fixture
def fake_cli(monkeypatch):
    monkeypatch.setitem(sys.modules, "lstmlens.cli.fake", fake_module())
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", (*cli_main.SUBCOMMANDS, "fake"))


def test_help_version_and_usage_errors(fake_cli, capsys):
    assert cli_main.main(["--help"]) == 0
    assert "fake" in capsys.readouterr().out
    assert cli_main.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("lstmlens ")
    assert cli_main.main([]) == 2
    assert cli_main.main(["nonsense"]) == 2
    assert cli_main.main(["fake", "fit", "--out", "x", "--epochs", "0"]) == 2
    capsys.readouterr()
    assert cli_main.main(["fake"]) == 2
    assert (
        capsys.readouterr().err
        == "lstmlens: error: fake: an action is needed; see lstmlens fake -h\n"
    )


@pytest.mark.parametrize(
    "kind, status, message",
    [
        ("cli", 2, "lstmlens: error: no such column 'price' in data.csv\n"),
        ("value", 2, "lstmlens: error: LSTM: expected input of 3 dims, got 2\n"),
        ("missing", 2, "lstmlens: error: data.csv: No such file or directory\n"),
        ("interrupt", 130, "lstmlens: interrupted\n"),
        ("status", 3, ""),
    ],
)
def test_errors_become_one_line_and_a_status(fake_cli, capsys, kind, status, message):
    assert cli_main.main(["fake", "fail", kind]) == status
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", message)


def test_a_train_command_end_to_end(fake_cli, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli_main.main(["fake", "fit", "--out", str(run), "--quiet"]) == 0
    assert capsys.readouterr() == ("epochs 2\n", "")
    weights = (run / "model.safetensors").read_bytes()

    assert cli_main.main(["fake", "fit", "--out", str(run), "--quiet", "--epochs", "3"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (run / "model.safetensors").read_bytes() == weights

    argv = ["fake", "fit", "--out", str(run), "--quiet", "--epochs", "4", "--resume"]
    assert cli_main.main(argv) == 0
    assert capsys.readouterr().out == "epochs 4\n"
    assert (run / "model.safetensors").read_bytes() != weights

    assert cli_main.main(["fake", "fit", "--out", str(run), "--force"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "epochs 2\n" and "epoch 2/2  train_loss" in captured.err
    assert (run / "model.safetensors").read_bytes() == weights  # same seed, same model
    model, config = load_model(run, lambda config: nn.Linear(config["in"], 1))
    assert config == {"in": 3} and (run / "train.log").is_file()
