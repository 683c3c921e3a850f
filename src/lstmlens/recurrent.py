r"""What every recurrent layer shares: stacking, directions, packing, state and torch interop.

Shapes (as in torch): ``N`` batch, ``L`` sequence length, ``D`` = 2 if bidirectional else 1,
``H_in`` input features, ``H_cell`` = hidden_size, ``H_out`` = proj_size or hidden_size.

* input: ``(L, N, H_in)``, ``(N, L, H_in)`` with ``batch_first``, ``(L, H_in)`` unbatched, or a
  ``PackedSequence`` (then the output is packed too), or a padded batch with ``lengths`` (B,)
  passed to ``forward``: packing's meaning without packing (the output stays padded, zeros past
  each length), which ``torch.compile(fullgraph=True)`` traces.
* ``h_0`` / ``h_n``: ``(D * num_layers, N, H_out)``; ``c_0`` / ``c_n``: ``(D * num_layers, N, H_cell)``.
* output: ``(L, N, D * H_out)`` (or batch-first / unbatched / packed like the input).

Layer ``k`` > 0 reads the concatenated outputs of layer ``k-1`` (both directions), with dropout
between layers in training. The reverse direction reads each sequence backwards within its own
length. How a layer-direction is run over the sequence is the ``backend``'s business:
one of the registered kernels (:mod:`lstmlens.kernels.registry`): ``"reference"`` (the
per-step loop over the cell, the oracle), ``"fused"`` (one autograd Function with a
hand-derived backward), ``"native"`` (the same scheme compiled in C++), ...; ``"auto"`` takes
the first registered one that runs this input here, and ``layer.last_backend`` says which ran
(in eager calls: a compiled call records nothing).
How the layer-directions are scheduled is a registry too (:mod:`lstmlens.kernels.schedule`):
``"sequential"`` (the loop in :meth:`RecurrentBase._stack`) or ``"wavefront"`` (the native
kernel runs the stack's layers and directions concurrently); ``schedule="auto"`` picks by a
measured rule and ``layer.last_schedule`` says which ran.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .kernels import registry
from .kernels import schedule as _schedules
from .kernels.registry import Backend

__all__ = ["LayerRecorder", "RecurrentBase"]

#: called by a layer being inspected: (layer, direction, {gate name: (T, B, units)})
LayerRecorder = Callable[[int, int, dict[str, Tensor]], None]


class RecurrentBase(nn.Module):
    """Stacking, directions, packing, unbatched input and initial states, for every mode."""

    mode = "RNN"
    _state_count = 1  # tensors in the state: 2 for LSTM (h, c)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        backend: str = "auto",
        device: Any = None,
        dtype: torch.dtype | None = None,
        schedule: str = "auto",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("proj_size", proj_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name}: {arg} should be of type int, got {type(value).__name__}")
        if hidden_size <= 0 or input_size <= 0 or num_layers <= 0:
            raise ValueError(
                f"{name}: input_size, hidden_size and num_layers must be positive, got "
                f"{input_size}, {hidden_size}, {num_layers}"
            )
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout should be a number in [0, 1], got {dropout}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(f"{name}: proj_size must be in [0, hidden_size), got {proj_size}")
        if backend != registry.AUTO and backend not in registry.names():
            choices = (registry.AUTO, *registry.names())
            raise ValueError(f"{name}: backend must be one of {choices}, got {backend!r}")
        if schedule != registry.AUTO and schedule not in _schedules.names():
            choices = (registry.AUTO, *_schedules.names())
            raise ValueError(f"{name}: schedule must be one of {choices}, got {schedule!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout={dropout} and num_layers=1: dropout acts between layers, "
                "so it has no effect here",
                UserWarning,
                stacklevel=3,
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size, self.backend = bidirectional, proj_size, backend
        self._recorder: LayerRecorder | None = None
        self.last_backend: str | None = None  # the backend that ran the latest eager forward
        self.schedule = schedule  # how the layer-directions run: "auto", "sequential", ...
        self.last_schedule: str | None = None  # the schedule that ran the latest eager forward
        self._names: list[list[dict[str, str]]] = []  # [layer][direction] canonical -> attribute
        D = 2 if bidirectional else 1
        out_size = proj_size or hidden_size
        for layer in range(num_layers):
            per_dir = []
            for d in range(D):
                layer_in = input_size if layer == 0 else out_size * D
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                names = {}
                for key, shape in self._param_shapes(layer_in).items():
                    param = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
                    self.register_parameter(key + suffix, param)
                    names[key] = key + suffix
                per_dir.append(names)
            self._names.append(per_dir)
        self.reset_parameters()

    # -- to be provided by each mode -------------------------------------------------------
    def _param_shapes(self, layer_input_size: int) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _run(
        self,
        kernel: Backend,
        x: Tensor,
        state: tuple[Tensor, ...],
        p: dict[str, Tensor],
        keep: Tensor | None,
        recorder: list | None,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One layer-direction over time-major ``x`` (T, B, I) on ``kernel``; ``keep``
        (T, B, 1) marks padded steps; ``recorder`` collects each step's gates when given."""
        raise NotImplementedError

    # -- parameters ----------------------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def layer_parameters(self, layer: int, direction: int = 0) -> dict[str, Tensor]:
        """The parameters of one layer-direction by canonical name (``weight_ih``, ...)."""
        return {k: getattr(self, n) for k, n in self._names[layer][direction].items()}

    def reset_parameters(self) -> None:
        """torch's initialisation: every weight uniform in ±1/sqrt(hidden_size)."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            nn.init.uniform_(w, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """No-op, for code written for ``torch.nn.LSTM`` (there is no cuDNN weight buffer here)."""

    # -- forward ---------------------------------------------------------------------------------
    def forward(
        self, input: Tensor | PackedSequence, hx: Any = None, lengths: Tensor | None = None
    ) -> tuple[Any, Any]:
        """``lengths`` (B,) with a padded batched ``input``: each sequence ends there (the
        packed input's meaning, without packing: the output stays padded, zeros past each
        length, and ``torch.compile`` traces it whole)."""
        seq = self._time_major(input, lengths)  # x: (T, B, I)
        x = seq.x
        states0 = self._initial_states(hx, x.shape[1], seq.batched, x)
        kernel = self._select_kernel(x)
        pad = _Padding.of(seq.lengths, x)
        output, states = self._select_schedule(kernel, x).run(self, kernel, x, states0, pad)
        if not seq.batched:
            states = tuple(s.squeeze(1) for s in states)
        return self._restore_layout(output, seq, pad), (states if len(states) > 1 else states[0])

    def _time_major(
        self, input: Tensor | PackedSequence, lengths: Tensor | None = None
    ) -> _Sequence:
        """Any accepted input -> time-major ``x`` (T, B, I), checked, with what undoes it."""
        name = type(self).__name__
        if lengths is not None:
            return _padded(name, self._time_major(input), lengths)
        if isinstance(input, PackedSequence):
            x, lengths = pad_packed_sequence(input)  # (T, B, I), original batch order
            seq = _Sequence(x, True, lengths, input.sorted_indices, input.unsorted_indices)
        elif isinstance(input, Tensor):
            if input.dim() not in (2, 3):
                raise ValueError(
                    f"{name}: Expected input to be 2D (unbatched) or 3D (batched), "
                    f"got {input.dim()}D instead"
                )
            if input.dim() == 2:
                seq = _Sequence(input.unsqueeze(1), batched=False)  # (T, 1, I)
            else:
                seq = _Sequence(input.transpose(0, 1) if self.batch_first else input, True)
        else:
            raise TypeError(
                f"{name}: expected input to be a Tensor or PackedSequence, got {type(input).__name__}"
            )
        x, w = seq.x, self.weight_ih_l0
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {x.shape[-1]}"
            )
        if x.dtype != w.dtype:
            raise TypeError(
                f"{name}: input dtype {x.dtype} does not match the weights' dtype {w.dtype}"
            )
        if x.shape[0] == 0:  # torch.nn.LSTM refuses it too
            raise ValueError(f"{name}: expected a sequence of at least one step, got length 0")
        return seq

    def _select_kernel(self, x: Tensor) -> Backend:
        """The registered backend that runs this input (recorded in ``last_backend``)."""
        kernel = registry.select(
            self.backend,
            self.mode,
            x.device,
            x.dtype,
            getattr(self, "spec", None),
            recording=self._recorder is not None,
            owner=type(self).__name__,
        )
        self._note("last_backend", kernel.name)
        return kernel

    def _select_schedule(self, kernel: Backend, x: Tensor) -> _schedules.Schedule:
        """The registered schedule that runs the stack (recorded in ``last_schedule``)."""
        chosen = _schedules.select(
            self.schedule, self, kernel, x, self._recorder is not None, type(self).__name__
        )
        self._note("last_schedule", chosen.name)
        return chosen

    def _note(self, attr: str, name: str) -> None:
        """Record which backend or schedule ran, in eager calls only: a compiled program has
        its choice baked in, and writing module state inside a traced forward would add a
        guard on it and compile the layer a second time (the second call sees the new value)."""
        if not torch.compiler.is_compiling() and getattr(self, attr) != name:
            setattr(self, attr, name)  # (only on change: nn.Module's __setattr__ is not free)

    def _stack(
        self, kernel: Backend, x: Tensor, states0: list[Tensor], pad: _Padding
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Every layer and direction, one after another (the ``sequential`` schedule):
        ``(output (T, B, D*H_out), (h_n[, c_n]))``."""
        D = self.num_directions
        finals: list[list[Tensor]] = [[] for _ in range(self._state_count)]
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                state = tuple(s[layer * D + d] for s in states0)
                recorder: list | None = None if self._recorder is None else []
                xin = pad.reverse(layer_in) if d else layer_in
                p = self.layer_parameters(layer, d)
                out, state_n = self._run(kernel, xin, state, p, pad.keep, recorder)
                outs.append(pad.reverse(out) if d else out)
                if recorder is not None:
                    self._record(layer, d, recorder, pad)
                for j, s in enumerate(state_n):
                    finals[j].append(s)
            layer_in = torch.cat(outs, dim=-1) if D == 2 else outs[0]  # (T, B, D*H_out)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        return layer_in, tuple(torch.stack(f) for f in finals)  # each (D*num_layers, B, units)

    def _record(self, layer: int, d: int, steps: list[dict[str, Tensor]], pad: _Padding) -> None:
        """Hand one layer-direction's gates, (T, B, units) each in input order, to the lens."""
        assert self._recorder is not None
        gates = {g: torch.stack([r[g] for r in steps]) for g in steps[0]}
        self._recorder(layer, d, {g: pad.reverse(v) if d else v for g, v in gates.items()})

    def _restore_layout(self, output: Tensor, seq: _Sequence, pad: _Padding) -> Any:
        """Time-major ``output`` back to the input's layout (unbatched, packed, batch-first)."""
        if pad.valid is not None:
            output = output * pad.valid  # padded steps read as zeros, as in torch
        if not seq.batched:
            return output.squeeze(1)
        if seq.lengths is not None and not seq.padded:
            return _repack(output, seq.lengths, seq.sorted_idx, seq.unsorted_idx)
        return output.transpose(0, 1) if self.batch_first else output

    def _state_shapes(self, B: int) -> list[tuple[int, int, int]]:
        L = self.num_layers * self.num_directions
        return [(L, B, self.proj_size or self.hidden_size), (L, B, self.hidden_size)][
            : self._state_count
        ]

    def _initial_states(self, hx: Any, B: int, batched: bool, x: Tensor) -> list[Tensor]:
        name = type(self).__name__
        shapes = self._state_shapes(B)
        if hx is None:
            return [x.new_zeros(s) for s in shapes]
        given = (hx,) if self._state_count == 1 else hx
        if self._state_count == 2 and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{name}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
        states = []
        for j, (t, shape) in enumerate(zip(given, shapes)):
            label = "hidden" if self._state_count == 1 else f"hidden[{j}]"
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {label} must be a Tensor, got {type(t).__name__}")
            want = shape if batched else (shape[0], shape[2])
            if tuple(t.shape) != want:
                raise ValueError(f"{name}: Expected {label} size {want}, got {tuple(t.shape)}")
            if t.dtype != x.dtype:
                raise TypeError(
                    f"{name}: {label} dtype {t.dtype} does not match input dtype {x.dtype}"
                )
            states.append(t if batched else t.unsqueeze(1))
        return states

    # -- torch interop -----------------------------------------------------------------------------
    def _torch_kwargs(self) -> dict[str, Any]:
        return dict(
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bias=self.bias,
            batch_first=self.batch_first,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
        )

    @classmethod
    def from_torch(cls, module: nn.Module, **kwargs: Any):
        """The same function as a ``torch.nn`` module of this mode (weights copied)."""
        torch_cls = getattr(nn, cls.mode)
        if not isinstance(module, torch_cls):
            raise TypeError(
                f"{cls.__name__}.from_torch: expected a torch.nn.{cls.mode}, got {type(module).__name__}"
            )
        w = module.weight_ih_l0
        args: dict[str, Any] = dict(
            input_size=module.input_size,
            hidden_size=module.hidden_size,
            num_layers=module.num_layers,
            bias=module.bias,
            batch_first=module.batch_first,
            dropout=module.dropout,
            bidirectional=module.bidirectional,
        )
        if cls.mode == "LSTM":
            args["proj_size"] = module.proj_size
        if cls.mode == "RNN":
            args["nonlinearity"] = module.nonlinearity
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            new = cls(**args, **kwargs, device=w.device, dtype=w.dtype)
        new.load_state_dict(module.state_dict())
        return new

    def to_torch(self) -> nn.Module:
        """A ``torch.nn`` module computing the same function (weights copied)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            w = self.weight_ih_l0
            m = getattr(nn, self.mode)(**self._torch_kwargs(), device=w.device, dtype=w.dtype)
        m.load_state_dict(self.state_dict())
        return m

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for key, default in (
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
            ("proj_size", 0),
            ("backend", "auto"),
            ("schedule", "auto"),
        ):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)!r}"
        return s


def _repack(
    out: Tensor, lengths: Tensor, sorted_idx: Tensor | None, unsorted_idx: Tensor | None
) -> PackedSequence:
    """Padded (T, B, F) in original batch order -> a PackedSequence with the input's indices."""
    if sorted_idx is not None:
        out, lengths = out.index_select(1, sorted_idx), lengths[sorted_idx.cpu()]
    packed = pack_padded_sequence(out, lengths, enforce_sorted=True)
    return PackedSequence(packed.data, packed.batch_sizes, sorted_idx, unsorted_idx)


@dataclass(frozen=True)
class _Sequence:
    """A checked input, time-major, and what is needed to give the output the input's layout."""

    x: Tensor  # (T, B, I)
    batched: bool
    lengths: Tensor | None = None  # (B,), packed input or padded input with lengths
    sorted_idx: Tensor | None = None
    unsorted_idx: Tensor | None = None
    padded: bool = False  # lengths came with a padded tensor: the output stays padded


def _padded(name: str, seq: _Sequence, lengths: Tensor) -> _Sequence:
    """A checked padded batch ``seq`` with its ``lengths`` (B,) (bad ones: one-line errors)."""
    if seq.lengths is not None:
        raise ValueError(f"{name}: lengths go with a padded tensor, not a PackedSequence")
    if not seq.batched:
        raise ValueError(f"{name}: lengths need a batched (3-D) input, got an unbatched one")
    if not isinstance(lengths, Tensor) or lengths.dtype.is_floating_point or lengths.is_complex():
        raise TypeError(f"{name}: lengths must be an integer tensor (B,), got {lengths!r:.60}")
    T, B = seq.x.shape[0], seq.x.shape[1]
    if lengths.shape != (B,):
        raise ValueError(
            f"{name}: lengths must have shape ({B},) for a batch of {B}, got {tuple(lengths.shape)}"
        )
    lengths = lengths.to("cpu", torch.long)
    if (
        not torch.compiler.is_compiling()
        and B
        and not bool(((lengths >= 1) & (lengths <= T)).all())
    ):
        raise ValueError(f"{name}: lengths must be in [1, {T}], got {lengths.tolist()}")
    return _Sequence(seq.x, True, lengths, padded=True)


@dataclass(frozen=True)
class _Padding:
    """Sequences of different lengths in one padded batch (all None when none is shorter)."""

    keep: Tensor | None = None  # (T, B, 1): 1 on padded steps (the state is carried through)
    valid: Tensor | None = None  # (T, B, 1): 1 - keep
    rev_idx: Tensor | None = None  # (T, B): step index of each sequence read backwards

    @classmethod
    def of(cls, lengths: Tensor | None, x: Tensor) -> _Padding:
        T = x.shape[0]
        if lengths is None:
            return cls()
        if not torch.compiler.is_compiling() and not bool((lengths < T).any()):
            return cls()  # (a data-dependent shortcut: a trace keeps the masks)
        steps = torch.arange(T).unsqueeze(1)  # (T, 1)
        valid_b = steps < lengths.unsqueeze(0)  # (T, B)
        valid = valid_b.to(device=x.device, dtype=x.dtype).unsqueeze(-1)  # (T, B, 1)
        rev_idx = torch.where(valid_b, lengths.unsqueeze(0) - 1 - steps, steps).to(x.device)
        return cls(1 - valid, valid, rev_idx)

    def reverse(self, t: Tensor) -> Tensor:
        """Each sequence of ``t`` (T, B, ...) in reverse order within its own length."""
        if self.rev_idx is None:
            return t.flip(0)
        return t.gather(0, self.rev_idx.unsqueeze(-1).expand_as(t))
