"""Sampling the next token: temperature, top-k and nucleus (top-p) filtering of logits.

``filter_logits`` divides by the temperature and masks the tokens outside the top-k and the
top-p set with -inf; ``sample_token`` draws one id from the softmax of what remains, with an
explicit ``torch.Generator`` so that a seed repeats a sample.
"""

from __future__ import annotations

import math

import torch

__all__ = ["filter_logits", "sample_token"]


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None, who: str) -> None:
    if not (isinstance(temperature, (int, float)) and temperature > 0 and temperature < math.inf):
        raise ValueError(f"{who}: temperature must be a positive number, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"{who}: top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise ValueError(f"{who}: top_p must be in (0, 1] or None, got {top_p!r}")


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Logits (..., V) / ``temperature`` in float64, with tokens outside top-k/top-p at -inf.

    top-k keeps the ``top_k`` largest logits (ties at the threshold are kept);
    top-p then keeps the most likely tokens, in decreasing order, up to and
    including the first one at which their probability reaches ``top_p``.
    """
    _check_sampling(temperature, top_k, top_p, "filter_logits")
    z = logits.double() / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]  # (..., 1)
        z = z.masked_fill(z < kth, -math.inf)
    if top_p is not None and top_p < 1:
        sorted_z, order = torch.sort(z, dim=-1, descending=True)
        probs = torch.softmax(sorted_z, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the tokens ranked above
        drop_sorted = before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        z = z.masked_fill(drop, -math.inf)
    return z


def sample_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> int:
    """Draw one id from ``softmax(filter_logits(logits (V,), ...))`` with ``generator``."""
    probs = torch.softmax(filter_logits(logits.float().cpu(), temperature, top_k, top_p), dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
