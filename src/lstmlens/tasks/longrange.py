r"""Long-range synthetic tasks: the problems a plain RNN cannot learn and an LSTM can.

Each task draws fresh batches from a ``torch.Generator`` (so a seed gives the same data on every
machine), knows its loss, its accuracy where one applies, the loss of the best memoryless answer,
and when it counts as solved. All tensors are batch-first: ``B`` sequences of ``L`` steps.

**Adding problem** (Hochreiter & Schmidhuber 1997, experiment 4, in the form of Le et al. 2015).
Input ``(B, T, 2)``: channel 0 holds values ``u_t ~ U[0, 1]``; channel 1 is a marker, 1 at exactly
two steps (``t1`` uniform in the first half ``[0, T//2)``, ``t2`` in the second half
``[T//2, T)``), 0 elsewhere. Target ``(B,)``: ``u_{t1} + u_{t2}``. Loss: mean squared error.
Answering 1 whatever the input scores ``E[(u1 + u2 - 1)^2] = Var(u1 + u2) = 2/12 ≈ 0.167``.
Solved: test MSE < 0.01.

**Copy memory** (Arjovsky et al. 2016). Tokens ``0`` blank, ``1..8`` symbols, ``9`` delimiter.
Input: 10 symbols drawn from ``1..8``, then ``T - 1`` blanks, the delimiter, then 10 blanks:
``L = T + 20`` steps, one-hot ``(B, L, 10)``. Target ``(B, L)``: blank for the first ``T + 10``
steps, then the 10 symbols in order; output classes ``0..8``. Loss: cross-entropy averaged over
all ``L`` steps. The memoryless baseline (blank for ``T + 10`` steps, then uniform over the 8
symbols) scores ``10 ln 8 / (T + 20)``. Accuracy: the fraction of the 10 recalled symbols right.
Solved: accuracy >= 99%.

**Temporal order** (Hochreiter & Schmidhuber 1997, experiment 6). Alphabet of 8 symbols
``a b c d X Y E B``, one-hot ``(B, L, 8)``. A sequence starts with ``E``, ends with the trigger
symbol ``B``, and is otherwise random symbols from ``{a, b, c, d}``, except at 2 (task 6a) or 3
(task 6b) positions that hold ``X`` or ``Y``. With ``length = 100`` the paper's numbers hold:
the length is uniform in ``[100, 110]``; 6a: ``t1 ∈ [10, 20]``, ``t2 ∈ [50, 60]``; 6b:
``t1 ∈ [10, 20]``, ``t2 ∈ [33, 43]``, ``t3 ∈ [66, 76]`` (1-based positions, the ``E`` being
step 1). Another ``T`` scales every one of these numbers by ``T / 100`` (integer division).
(Some re-implementations swap the names of the start and trigger symbols; only their roles
matter: one fixed symbol opens every sequence, another closes it and asks for the answer.)
The class is the order of the relevant symbols read as bits (X = 0, Y = 1): 6a has 4 classes
XX, XY, YX, YY (the paper's Q, R, S, U), 6b has 8 (XXX = Q ... YYY = C). Sequences in a batch
differ in length: the inputs are zero-padded at the end and ``lengths`` says where each ends (the
model packs them). Loss: cross-entropy at the last step (the paper used squared error on
sigmoid outputs); accuracy: the fraction of sequences classified right; chance is ``1/4`` (``1/8``)
and the memoryless loss ``ln 4`` (``ln 8``). Solved: accuracy >= 99%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "TASKS",
    "AddingProblem",
    "CopyMemory",
    "LongRangeBatch",
    "LongRangeTask",
    "TemporalOrder",
    "make_task",
]

SOLVED_MSE = 0.01  # adding: solved below this test MSE
SOLVED_ACCURACY = 0.99  # copy / order: solved at or above this accuracy


@dataclass(frozen=True)
class LongRangeBatch:
    """One batch of a long-range task.

    Attributes:
        inputs: ``(B, L, input_size)`` float32, batch-first.
        targets: adding ``(B,)`` float32; copy ``(B, L)`` int64; order ``(B,)`` int64.
        lengths: ``(B,)`` int64 true lengths when the sequences differ (order), else ``None``.
    """

    inputs: Tensor
    targets: Tensor
    lengths: Tensor | None = None


class LongRangeTask:
    """What every long-range task provides (see the module docstring for the three tasks).

    Attributes:
        name: ``"adding"``, ``"copy"`` or ``"order"``.
        length: ``T``, the task's difficulty (the gap to bridge).
        input_size: features per step of ``inputs``.
        output_size: regression outputs (adding: 1) or classes.
        per_step: True when the model answers at every step (copy), else only at the end.
        min_length: the smallest ``T`` the task is defined for.
    """

    name = ""
    input_size = 0
    output_size = 0
    per_step = False
    min_length = 1

    def __init__(self, length: int) -> None:
        owner = type(self).__name__
        if not isinstance(length, int) or isinstance(length, bool):
            raise TypeError(f"{owner}: length should be an int, got {type(length).__name__}")
        if length < self.min_length:
            raise ValueError(
                f"{owner}: length must be at least {self.min_length} for the {self.name} task, "
                f"got {length}"
            )
        self.length = length

    @property
    def baseline_loss(self) -> float:
        """The test loss of the best answer that ignores what must be remembered."""
        raise NotImplementedError

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> LongRangeBatch:
        """A fresh batch of ``batch_size`` sequences drawn with ``generator``."""
        raise NotImplementedError

    def loss(self, output: Tensor, batch: LongRangeBatch) -> Tensor:
        """The training loss of the model's ``output`` (see :meth:`output_shape`)."""
        raise NotImplementedError

    def accuracy(self, output: Tensor, batch: LongRangeBatch) -> float | None:
        """The fraction of symbols (copy) or sequences (order) right; ``None`` for adding."""
        return None

    def solved(self, loss: float, accuracy: float | None) -> bool:
        """Whether a test loss / accuracy counts as solving the task."""
        return accuracy is not None and accuracy >= SOLVED_ACCURACY

    def relevant_steps(self, batch: LongRangeBatch) -> Tensor:
        """``(B, L)`` bool: the input steps whose content the answer needs (adding: the two
        marked steps; copy: the 10 symbols; order: the ``X`` / ``Y`` steps)."""
        raise NotImplementedError

    def _check_batch(self, batch_size: int) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(
                f"{type(self).__name__}.sample: batch_size must be a positive int, got {batch_size!r}"
            )


class AddingProblem(LongRangeTask):
    """The adding problem: sum the two marked values of ``T`` (module docstring)."""

    name = "adding"
    input_size = 2
    output_size = 1
    min_length = 2

    @property
    def baseline_loss(self) -> float:
        return 1.0 / 6.0  # Var(u1 + u2) = 2 * (1/12), the MSE of answering 1

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> LongRangeBatch:
        self._check_batch(batch_size)
        B, T, half = batch_size, self.length, self.length // 2
        values = torch.rand(B, T, generator=generator)  # (B, T)
        first = torch.randint(0, half, (B,), generator=generator)
        second = torch.randint(half, T, (B,), generator=generator)
        marks = torch.zeros(B, T)
        rows = torch.arange(B)
        marks[rows, first] = 1.0
        marks[rows, second] = 1.0
        targets = values[rows, first] + values[rows, second]  # (B,)
        return LongRangeBatch(torch.stack([values, marks], dim=-1), targets)  # inputs (B, T, 2)

    def loss(self, output: Tensor, batch: LongRangeBatch) -> Tensor:
        return F.mse_loss(output.reshape(-1), batch.targets)  # output (B, 1) -> (B,)

    def solved(self, loss: float, accuracy: float | None) -> bool:
        return loss < SOLVED_MSE

    def relevant_steps(self, batch: LongRangeBatch) -> Tensor:
        return batch.inputs[..., 1] > 0  # the marker channel


class CopyMemory(LongRangeTask):
    """The copy-memory task: reproduce 10 symbols after ``T`` steps (module docstring)."""

    name = "copy"
    n_symbols = 10  # symbols to remember
    alphabet = 8  # symbols are 1..alphabet; 0 is the blank
    input_size = 10  # one-hot over blank, 1..8, delimiter
    output_size = 9  # blank or one of 1..8
    per_step = True
    min_length = 1
    delimiter = 9

    @property
    def baseline_loss(self) -> float:
        return self.n_symbols * math.log(self.alphabet) / (self.length + 2 * self.n_symbols)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> LongRangeBatch:
        self._check_batch(batch_size)
        B, T, S = batch_size, self.length, self.n_symbols
        L = T + 2 * S
        symbols = torch.randint(1, self.alphabet + 1, (B, S), generator=generator)  # (B, S)
        tokens = torch.zeros(B, L, dtype=torch.long)
        tokens[:, :S] = symbols
        tokens[:, S + T - 1] = self.delimiter  # after the T - 1 blanks
        targets = torch.zeros(B, L, dtype=torch.long)
        targets[:, T + S :] = symbols
        inputs = F.one_hot(tokens, self.input_size).float()  # (B, L, 10)
        return LongRangeBatch(inputs, targets)

    def loss(self, output: Tensor, batch: LongRangeBatch) -> Tensor:
        return F.cross_entropy(output.reshape(-1, self.output_size), batch.targets.reshape(-1))

    def accuracy(self, output: Tensor, batch: LongRangeBatch) -> float | None:
        recall = slice(-self.n_symbols, None)  # the last 10 steps, where the symbols come back
        right = output[:, recall].argmax(-1) == batch.targets[:, recall]  # (B, 10)
        return float(right.float().mean())

    def relevant_steps(self, batch: LongRangeBatch) -> Tensor:
        steps = torch.arange(batch.inputs.shape[1], device=batch.inputs.device)
        return (steps < self.n_symbols).expand(batch.inputs.shape[0], -1)


class TemporalOrder(LongRangeTask):
    """The temporal-order task of Hochreiter & Schmidhuber's experiment 6a / 6b (module docstring).

    Args:
        length: ``T``; 100 gives the paper's task.
        relevant: 2 (experiment 6a, 4 classes) or 3 (experiment 6b, 8 classes).
    """

    name = "order"
    input_size = 8
    min_length = 20  # below this the scaled positions collide with the first step
    symbols = ("a", "b", "c", "d", "X", "Y", "E", "B")
    X, START, TRIGGER = 4, 6, 7  # token ids; Y = X + 1
    # 1-based position windows at T = 100, per number of relevant symbols
    WINDOWS = {2: ((10, 20), (50, 60)), 3: ((10, 20), (33, 43), (66, 76))}

    def __init__(self, length: int, relevant: int = 2) -> None:
        if relevant not in self.WINDOWS:
            raise ValueError(f"TemporalOrder: relevant must be 2 or 3, got {relevant!r}")
        super().__init__(length)
        self.relevant = relevant
        self.output_size = 2**relevant

    @property
    def baseline_loss(self) -> float:
        return math.log(self.output_size)

    def _scaled(self, p: int) -> int:
        return p * self.length // 100

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> LongRangeBatch:
        self._check_batch(batch_size)
        B, T = batch_size, self.length
        lengths = torch.randint(T, T + T // 10 + 1, (B,), generator=generator)  # (B,) in [T, 1.1T]
        L = int(lengths.max())
        tokens = torch.randint(0, 4, (B, L), generator=generator)  # distractors a..d
        rows = torch.arange(B)
        tokens[:, 0] = self.START
        labels = torch.zeros(B, dtype=torch.long)
        for lo, hi in self.WINDOWS[self.relevant]:
            pos = torch.randint(self._scaled(lo), self._scaled(hi) + 1, (B,), generator=generator)
            bit = torch.randint(0, 2, (B,), generator=generator)  # 0: X, 1: Y
            tokens[rows, pos - 1] = self.X + bit  # 1-based position -> index
            labels = labels * 2 + bit
        tokens[rows, lengths - 1] = self.TRIGGER
        inputs = F.one_hot(tokens, self.input_size).float()  # (B, L, 8)
        pad = torch.arange(L).unsqueeze(0) >= lengths.unsqueeze(1)  # (B, L) past each end
        inputs[pad] = 0.0
        return LongRangeBatch(inputs, labels, lengths)

    def loss(self, output: Tensor, batch: LongRangeBatch) -> Tensor:
        return F.cross_entropy(output, batch.targets)  # output (B, classes)

    def accuracy(self, output: Tensor, batch: LongRangeBatch) -> float | None:
        return float((output.argmax(-1) == batch.targets).float().mean())

    def relevant_steps(self, batch: LongRangeBatch) -> Tensor:
        return batch.inputs[..., self.X : self.X + 2].sum(-1) > 0  # X or Y; padding is all 0


TASKS = {"adding": AddingProblem, "copy": CopyMemory, "order": TemporalOrder}


def make_task(name: str, length: int, **options: int) -> LongRangeTask:
    """The task called ``name`` (``adding``, ``copy``, ``order``) at difficulty ``length``.

    ``options`` go to the task (``relevant=3`` for temporal order 6b).
    """
    if name not in TASKS:
        raise ValueError(f"make_task: unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name](length, **options)
