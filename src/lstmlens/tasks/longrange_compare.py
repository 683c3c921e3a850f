r"""Race recurrent cells on a long-range task under one budget (Greff et al. 2017, in small).

Every cell gets the same model around it (one recurrent layer of ``hidden_size`` units and a linear
head), the same optimizer (Adam, learning rate ``lr``, gradient norm clipped to ``clip_norm``), the
same number of steps on the same stream of training batches (one ``torch.Generator`` seeded with
``seed``, replayed for each cell) and the same fixed test set. Every ``eval_every`` steps the test
set is scored; the first score that counts as solved (see :mod:`.longrange`) gives the steps to
solve. With ``stop_when_solved`` a cell stops there (its budget is no longer needed).

Cells: ``rnn`` (the tanh Elman RNN of ``torch.nn.RNN``), ``gru``, ``lstm`` (vanilla) and every
LSTM variant preset of :data:`lstmlens.PRESETS` (``peephole``, ``cifg``, ``nfg``, ...).
How the forget gate starts, ``forget_init``:

* ``"constant"`` (the default): ``forget_bias`` is added at initialisation to the forget-gate
  bias of the LSTMs that have one (Jozefowicz et al. 2015);
* ``"chrono"`` (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?"): per unit,
  :math:`b_f \sim \log U(1, T - 1)` and :math:`b_i = -b_f`, with ``T`` the task's length
  (the gap to bridge). A unit then forgets with a characteristic time spread over ``1..T``
  and starts writing little, instead of every unit starting at the same few-step memory.
  On the adding problem at T = 100 (hidden 64, Adam 3e-2, seeds 0-3, this recipe's
  defaults otherwise) it solved in 500-600 steps against 600-900 for the constant bias of 1
  (``benchmarks/memory_reach_adding.py`` reads the memory reach of both).

``cifg``'s forget gate is ``f = 1 - i = σ(-a_i)``, so it gets the same initial forget gate
from ``-b_f`` on its input gate; ``nfg`` has no forget gate (its ``f`` is 1) and the RNN and
GRU are left at torch's initialisation.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..layers import GRU, LSTM, RNN
from ..variants import PRESETS
from .longrange import LongRangeBatch, LongRangeTask

__all__ = [
    "CELLS",
    "CellResult",
    "CompareConfig",
    "FORGET_INITS",
    "LongRangeModel",
    "build_recurrent",
    "compare_cells",
    "format_table",
    "train_cell",
]

CELLS = ("rnn", "gru", "lstm", *PRESETS)
_TEST_SEED_OFFSET = 1_000_003  # the test set's generator: seed + this (apart from training's)
_EVAL_CHUNK = 250  # sequences per forward pass when scoring the test set


FORGET_INITS = ("constant", "chrono")


def _chrono(layer: LSTM, length: int) -> None:
    """Chrono initialisation (module docstring): b_f ~ log U(1, length - 1), b_i = -b_f, set
    on ``bias_ih`` with ``bias_hh``'s rows zeroed; a coupled forget gate through b_i alone."""
    variant, H = layer.variant, layer.hidden_size
    rows = {b: slice(k * H, (k + 1) * H) for k, b in enumerate(variant.blocks)}
    with torch.no_grad():
        for layer_index in range(layer.num_layers):
            for d in range(layer.num_directions):
                p = layer.layer_parameters(layer_index, d)
                b_f = torch.empty(H).uniform_(1.0, max(length - 1.0, 1.0)).log_()  # (H,)
                for block, value in (("f", b_f), ("i", -b_f)):
                    if block in rows:
                        p["bias_ih"][rows[block]] = value
                        p["bias_hh"][rows[block]] = 0.0


def build_recurrent(
    cell: str,
    input_size: int,
    hidden_size: int,
    forget_bias: float = 1.0,
    forget_init: str = "constant",
    length: int = 100,
) -> nn.Module:
    """One batch-first recurrent layer for a cell name (see the module docstring).

    ``forget_init`` is ``"constant"`` (add ``forget_bias``) or ``"chrono"`` (over ``length``
    steps). Raises ``ValueError`` naming the known cells for an unknown name.
    """
    name = cell.lower() if isinstance(cell, str) else cell
    if name not in CELLS:
        raise ValueError(f"build_recurrent: unknown cell {cell!r}; expected one of {list(CELLS)}")
    if forget_init not in FORGET_INITS:
        raise ValueError(
            f"build_recurrent: forget_init must be one of {FORGET_INITS}, got {forget_init!r}"
        )
    if name == "rnn":
        return RNN(input_size, hidden_size, batch_first=True, nonlinearity="tanh")
    if name == "gru":
        return GRU(input_size, hidden_size, batch_first=True)
    variant = PRESETS["vanilla" if name == "lstm" else name]
    if forget_init == "chrono":
        layer = LSTM(input_size, hidden_size, batch_first=True, variant=variant)
        if variant.has_f or variant.coupled:
            _chrono(layer, length)
        return layer
    fb = forget_bias if variant.has_f else 0.0
    layer = LSTM(input_size, hidden_size, batch_first=True, variant=variant, forget_bias=fb)
    if variant.coupled and forget_bias:
        with torch.no_grad():  # f = 1 - σ(a_i) = σ(-a_i): a forget bias b is an input bias -b
            k = variant.blocks.index("i")
            bias = layer.get_parameter("bias_ih_l0")
            bias[k * hidden_size : (k + 1) * hidden_size] -= forget_bias
    return layer


class LongRangeModel(nn.Module):
    """A recurrent layer and a linear head shaped for a long-range task.

    ``forward(inputs (B, L, I), lengths (B,) or None)`` returns ``(B, L, output_size)`` for a
    per-step task (copy) and ``(B, output_size)`` read from the last step of each sequence
    otherwise (sequences of unequal ``lengths`` are packed, so padding is never read).
    """

    def __init__(
        self,
        task: LongRangeTask,
        cell: str,
        hidden_size: int,
        forget_bias: float = 1.0,
        forget_init: str = "constant",
    ):
        super().__init__()
        self.cell, self.per_step = cell, task.per_step
        self.rnn = build_recurrent(
            cell, task.input_size, hidden_size, forget_bias, forget_init, task.length
        )
        self.head = nn.Linear(hidden_size, task.output_size)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is not None:
            if self.per_step:
                raise ValueError("LongRangeModel: per-step tasks take sequences of equal length")
            packed = pack_padded_sequence(
                inputs, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            _, state = self.rnn(packed)
            h_n = state[0] if isinstance(state, tuple) else state  # (1, B, H), original order
            return self.head(h_n[-1])  # (B, O)
        out, _ = self.rnn(inputs)  # (B, L, H)
        return self.head(out if self.per_step else out[:, -1])


@dataclass
class CompareConfig:
    """The budget every cell gets."""

    steps: int = 3000  # optimizer steps per cell
    batch_size: int = 32  # training sequences per step
    hidden_size: int = 64  # units of the recurrent layer
    lr: float = 3e-2  # Adam's learning rate
    clip_norm: float | None = 1.0  # gradient norm clipped to this (None: no clipping)
    forget_bias: float = 1.0  # added to the forget-gate bias at initialisation ("constant")
    forget_init: str = "constant"  # or "chrono" (module docstring)
    eval_every: int = 100  # steps between scores on the test set
    test_size: int = 500  # sequences in the fixed test set
    seed: int = 0  # seeds the training stream, the test set and the weights
    stop_when_solved: bool = True  # stop a cell at its first solved score
    max_minutes: float | None = None  # per cell: stop at the next step after this many minutes
    total_minutes: float | None = None  # whole race: a cell may use (time left) / (cells left)

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "hidden_size", "eval_every", "test_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"CompareConfig: {key} must be a positive int, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"CompareConfig: lr must be > 0, got {self.lr}")
        if self.forget_init not in FORGET_INITS:
            raise ValueError(
                f"CompareConfig: forget_init must be one of {FORGET_INITS}, got {self.forget_init!r}"
            )


@dataclass
class CellResult:
    """How one cell did: the last test score, whether and when it solved the task."""

    cell: str
    test_loss: float  # on the test set at the end of its training
    accuracy: float | None  # copy / order; None for adding
    solved: bool  # the end-of-training score counts as solved
    steps_to_solve: int | None  # the step of the first solved score, if any
    steps: int  # steps actually taken
    seconds: float  # wall-clock training time, scoring included
    parameters: int  # trainable parameters (recurrent layer + head)
    diverged: bool = False  # the training loss became NaN or infinite
    out_of_time: bool = False  # stopped by the time limit before its steps were done
    history: list[dict[str, float]] = field(default_factory=list)  # one record per score


Progress = Callable[[str, dict[str, float]], None]


@torch.no_grad()
def _score(
    model: LongRangeModel, task: LongRangeTask, test: LongRangeBatch
) -> tuple[float, float | None]:
    """Test loss and accuracy, in chunks; chunks are weighted by their number of sequences."""
    model.eval()
    n = test.inputs.shape[0]
    loss_sum, acc_sum, acc = 0.0, 0.0, None
    for lo in range(0, n, _EVAL_CHUNK):
        part = slice(lo, min(n, lo + _EVAL_CHUNK))
        lengths = None if test.lengths is None else test.lengths[part]
        chunk = LongRangeBatch(test.inputs[part], test.targets[part], lengths)
        output = model(chunk.inputs, chunk.lengths)
        size = chunk.inputs.shape[0]
        loss_sum += float(task.loss(output, chunk)) * size
        acc = task.accuracy(output, chunk)
        if acc is not None:
            acc_sum += acc * size
    model.train()
    return loss_sum / n, (None if acc is None else acc_sum / n)


def train_cell(
    task: LongRangeTask,
    cell: str,
    config: CompareConfig | None = None,
    progress: Progress | None = None,
    test: LongRangeBatch | None = None,
    models: dict[str, nn.Module] | None = None,
) -> CellResult:
    """Train one cell on ``task`` under ``config`` and score it (module docstring).

    ``progress(cell, record)`` is called after every score with ``step``, ``train_loss``
    (mean since the last score), ``test_loss``, ``accuracy`` (if any) and ``seconds``.
    ``test`` is the test set (default: drawn from ``seed`` + an offset). The trained model
    is put in ``models[cell]`` when ``models`` is given.
    """
    config = config or CompareConfig()
    if test is None:
        test_gen = torch.Generator().manual_seed(config.seed + _TEST_SEED_OFFSET)
        test = task.sample(config.test_size, test_gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = LongRangeModel(
            task, cell, config.hidden_size, config.forget_bias, config.forget_init
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    stream = torch.Generator().manual_seed(config.seed)
    deadline = None if config.max_minutes is None else config.max_minutes * 60.0
    started = time.monotonic()
    history: list[dict[str, float]] = []
    solved_at: int | None = None
    diverged = out_of_time = False
    window: list[float] = []
    step = 0
    test_loss, accuracy = math.nan, None
    model.train()
    while step < config.steps:
        batch = task.sample(config.batch_size, stream)
        loss = task.loss(model(batch.inputs, batch.lengths), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_norm:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        step += 1
        value = float(loss.detach())
        window.append(value)
        diverged = not math.isfinite(value)
        out_of_time = deadline is not None and time.monotonic() - started > deadline
        if step % config.eval_every and step < config.steps and not (diverged or out_of_time):
            continue
        test_loss, accuracy = _score(model, task, test)
        record = {
            "step": step,
            "train_loss": sum(window) / len(window),
            "test_loss": test_loss,
            "seconds": time.monotonic() - started,
        }
        if accuracy is not None:
            record["accuracy"] = accuracy
        window = []
        history.append(record)
        if progress is not None:
            progress(cell, record)
        if solved_at is None and task.solved(test_loss, accuracy):
            solved_at = step
            if config.stop_when_solved:
                break
        if diverged or out_of_time:
            break
    if models is not None:
        models[cell] = model.eval()
    return CellResult(
        cell=cell,
        test_loss=test_loss,
        accuracy=accuracy,
        solved=math.isfinite(test_loss) and task.solved(test_loss, accuracy),
        steps_to_solve=solved_at,
        steps=step,
        seconds=time.monotonic() - started,
        parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        diverged=diverged,
        out_of_time=out_of_time and step < config.steps and solved_at is None,
        history=history,
    )


def compare_cells(
    task: LongRangeTask,
    cells: Sequence[str],
    config: CompareConfig | None = None,
    progress: Progress | None = None,
    models: dict[str, nn.Module] | None = None,
) -> list[CellResult]:
    """:func:`train_cell` for each of ``cells`` in turn, all on the same data; one row each.

    With ``models``, each trained model is kept there under its cell name."""
    config = config or CompareConfig()
    unknown = [c for c in cells if c.lower() not in CELLS]
    if unknown or not cells:
        raise ValueError(f"compare_cells: expected cells from {list(CELLS)}, got {list(cells)!r}")
    test_gen = torch.Generator().manual_seed(config.seed + _TEST_SEED_OFFSET)
    test = task.sample(config.test_size, test_gen)
    started = time.monotonic()
    results = []
    for k, cell in enumerate(cells):
        cell_config = config
        if config.total_minutes is not None:
            left = config.total_minutes - (time.monotonic() - started) / 60.0
            share = max(left, 0.0) / (len(cells) - k)
            cap = share if config.max_minutes is None else min(share, config.max_minutes)
            cell_config = dataclasses.replace(config, max_minutes=cap)
        results.append(train_cell(task, cell.lower(), cell_config, progress, test, models))
    return results


def _verdict(r: CellResult) -> str:
    if r.solved:
        return "yes"
    if r.diverged:
        return "diverged"
    return "no (time)" if r.out_of_time else "no"


def format_table(task: LongRangeTask, results: Sequence[CellResult]) -> str:
    """The comparison as a Markdown table, with the task's memoryless baseline on top."""
    has_acc = any(r.accuracy is not None for r in results)
    head = ["cell", "params", "test loss"] + (["accuracy"] if has_acc else [])
    head += ["steps to solve", "solved", "steps", "seconds"]
    rows = []
    for r in results:
        row = [r.cell, f"{r.parameters:,}", f"{r.test_loss:.4g}"]
        if has_acc:
            row.append("-" if r.accuracy is None else f"{100 * r.accuracy:.1f}%")
        solve = "-" if r.steps_to_solve is None else str(r.steps_to_solve)
        row += [
            solve,
            _verdict(r),
            str(r.steps),
            f"{r.seconds:.0f}",
        ]
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    title = f"{task.name}, length {task.length}: memoryless baseline loss {task.baseline_loss:.4g}"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([title, "", line(head), rule, *(line(r) for r in rows)])
