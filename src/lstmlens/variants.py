"""Which gates an LSTM has, and how they are wired: the search space of Greff et al. (2017).

A :class:`Variant` is a small frozen record. The presets are the variants compared in
"LSTM: A Search Space Odyssey" (Greff, Srivastava, Koutník, Steunebrink, Schmidhuber, 2017):

========== ===================================================================
preset     meaning
========== ===================================================================
vanilla    the LSTM of ``torch.nn.LSTM``: forget gate, no peepholes
peephole   Greff's V: vanilla + peepholes ``p_i*c_{t-1}``, ``p_f*c_{t-1}``, ``p_o*c_t``
nig        ``peephole`` with no input gate (i = 1)
nfg        ``peephole`` with no forget gate (f = 1, the 1997 LSTM)
nog        ``peephole`` with no output gate (o = 1)
niaf       ``peephole`` with no input activation (g = identity)
noaf       ``peephole`` with no output activation (h = o * c)
cifg       ``peephole`` with coupled input and forget gate (f = 1 - i)
fgr        ``peephole`` + full gate recurrence: i, f, o at t also see [i, f, o] at t-1
========== ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["ACTIVATIONS", "PRESETS", "Variant", "resolve_variant"]

#: Names accepted for ``input_activation`` (g) and ``output_activation`` (applied to c before o*).
ACTIVATIONS = ("tanh", "identity")


@dataclass(frozen=True)
class Variant:
    """The wiring of an LSTM cell.

    Gate order of the weight rows is always i, f, g, o (as in torch); a gate a variant
    removes has no rows, so ``cifg`` has the blocks i, g, o and ``nfg`` the blocks i, g, o.
    """

    peepholes: bool = False  # p_i*c_{t-1} into i, p_f*c_{t-1} into f, p_o*c_t into o
    input_gate: bool = True  # False: i = 1
    forget_gate: bool = True  # False: f = 1
    output_gate: bool = True  # False: o = 1
    input_activation: str = "tanh"  # g = act(W x + R h + b): "tanh" or "identity"
    output_activation: str = "tanh"  # h = o * act(c): "tanh" or "identity"
    coupled: bool = False  # f = 1 - i (needs the input gate; the forget gate has no weights)
    full_gate_recurrence: bool = False  # [i, f, o]_{t-1} feeds the pre-activations of [i, f, o]_t

    def __post_init__(self) -> None:
        for name in ("input_activation", "output_activation"):
            value = getattr(self, name)
            if value not in ACTIVATIONS:
                raise ValueError(f"Variant: {name} must be one of {ACTIVATIONS}, got {value!r}")
        if self.coupled and not self.input_gate:
            raise ValueError(
                "Variant: coupled=True needs input_gate=True (f = 1 - i), got input_gate=False"
            )
        if self.coupled and not self.forget_gate:
            raise ValueError(
                "Variant: coupled=True derives the forget gate from the input gate, "
                "so forget_gate must stay True, got forget_gate=False"
            )

    # -- the gate layout -------------------------------------------------------------
    @property
    def has_i(self) -> bool:
        """The input gate has its own weights."""
        return self.input_gate

    @property
    def has_f(self) -> bool:
        """The forget gate has its own weights (not removed, not coupled)."""
        return self.forget_gate and not self.coupled

    @property
    def has_o(self) -> bool:
        return self.output_gate

    @property
    def blocks(self) -> tuple[str, ...]:
        """Row blocks of the weight matrices, in order, each H rows: a subset of i, f, g, o."""
        out = []
        if self.has_i:
            out.append("i")
        if self.has_f:
            out.append("f")
        out.append("g")
        if self.has_o:
            out.append("o")
        return tuple(out)

    @property
    def sigmoid_blocks(self) -> tuple[str, ...]:
        """The gates with weights that go through a sigmoid (the blocks but g)."""
        return tuple(b for b in self.blocks if b != "g")

    @property
    def peephole_gates(self) -> tuple[str, ...]:
        """Gates that own a peephole vector (only with ``peepholes``)."""
        return self.sigmoid_blocks if self.peepholes else ()

    @property
    def is_vanilla(self) -> bool:
        return self == Variant()

    @property
    def name(self) -> str:
        """The preset name when this variant is a preset, else a compact description."""
        for key, value in PRESETS.items():
            if value == self:
                return key
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]
        return "Variant(" + ", ".join(changed) + ")"

    def with_(self, **changes: Any) -> Variant:
        """A copy with some fields changed (``Variant.with_`` is ``dataclasses.replace``)."""
        return replace(self, **changes)


_PEEPHOLE = Variant(peepholes=True)

PRESETS: dict[str, Variant] = {
    "vanilla": Variant(),
    "peephole": _PEEPHOLE,
    "nig": replace(_PEEPHOLE, input_gate=False),
    "nfg": replace(_PEEPHOLE, forget_gate=False),
    "nog": replace(_PEEPHOLE, output_gate=False),
    "niaf": replace(_PEEPHOLE, input_activation="identity"),
    "noaf": replace(_PEEPHOLE, output_activation="identity"),
    "cifg": replace(_PEEPHOLE, coupled=True),
    "fgr": replace(_PEEPHOLE, full_gate_recurrence=True),
}


def resolve_variant(variant: str | Variant, owner: str = "LSTM") -> Variant:
    """A preset name or a :class:`Variant` -> a :class:`Variant`; anything else is an error naming ``owner``."""
    if isinstance(variant, Variant):
        return variant
    if isinstance(variant, str):
        try:
            return PRESETS[variant.lower()]
        except KeyError:
            raise ValueError(
                f"{owner}: unknown variant {variant!r}; expected one of {sorted(PRESETS)} "
                "or a lstmlens.Variant"
            ) from None
    raise TypeError(
        f"{owner}: variant must be a preset name or a lstmlens.Variant, got {type(variant).__name__}"
    )
