"""Language modelling: predict the next character or word, sample text, score a corpus.

The model (Zaremba et al. 2014; char-rnn)::

    e_t = Dropout(E[x_t])                      # (B, T, E)   embedding of token x_t
    h_t = LSTM(e_t, (h_{t-1}, c_{t-1}))        # (B, T, D)   D = proj_size or hidden_size
    z_t = W_dec Dropout(h_t) + b_dec           # (B, T, V)   logits of x_{t+1}
    p(x_{t+1} | x_<=t) = softmax(z_t)

With ``tie_weights`` (Press & Wolf 2017) the decoder reuses the embedding matrix,
``W_dec = E`` (V, E), which needs ``E == D``: equal sizes, or ``proj_size = E``.

Training is truncated backpropagation through time over ``B`` parallel streams
(:class:`lstmlens.data.text.TokenStreams`): the final state of a segment is the
initial state of the next, detached so gradients stop at the segment boundary,
and reset to zeros when a new pass over the corpus begins. The loss is the mean
cross-entropy in nats per token; ``perplexity = exp(loss)`` and, for characters,
``bits per char = loss / ln 2``.

Generation primes the state on the prompt, then repeatedly draws the next token
from ``softmax(z / temperature)`` restricted to the ``top_k`` most likely tokens
and to the smallest set whose probability reaches ``top_p`` (nucleus sampling,
Holtzman et al. 2020), and feeds it back.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from lstmlens.data.text import Tokenizer, TokenStreams, tokenizer_from_dict
from lstmlens.io import FORMAT_VERSION
from lstmlens.layers import LSTM
from lstmlens.tasks.sampling import _check_sampling, filter_logits, sample_token
from lstmlens.variants import PRESETS, Variant

__all__ = [
    "TASK",
    "LanguageModel",
    "LanguageTask",
    "evaluate_loss",
    "filter_logits",
    "sample_token",
    "save_language_model",
    "load_language_model",
    "build_language_model",
]

TASK = "text"  # the "task" field of a saved run's config.json ("language" before format_version)

State = tuple[torch.Tensor, torch.Tensor]


class LanguageModel(nn.Module):
    """Embedding -> :class:`lstmlens.LSTM` -> dropout -> linear decoder, with its tokeniser.

    Args:
        tokenizer: the vocabulary (``V = len(tokenizer)``); kept on the model for
            generation and saved with it.
        embed_size: ``E``.
        hidden_size, num_layers, proj_size, layer_norm, recurrent_dropout, zoneout,
            forget_bias, variant: passed to :class:`lstmlens.LSTM` (``variant``: a preset
            name, a :class:`lstmlens.Variant`, or its fields as a dict).
        dropout: applied to the embeddings, between LSTM layers and before the decoder.
        tie_weights: share the embedding matrix with the decoder (needs ``E == D``).
        backend: the LSTM's kernel choice (not saved; a loaded model uses ``"auto"``).

    Shapes: ``forward(tokens (B, T) long, state) -> (logits (B, T, V), (h_n, c_n))``
    with ``h_n`` ``(num_layers, B, D)`` and ``c_n`` ``(num_layers, B, hidden_size)``.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        embed_size: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        variant: str | Variant | dict = "vanilla",
        proj_size: int = 0,
        tie_weights: bool = False,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        forget_bias: float = 0.0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"LanguageModel: tokenizer must be a Tokenizer, got {type(tokenizer)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LanguageModel: dropout must be in [0, 1), got {dropout}")
        out_size = proj_size if proj_size > 0 else hidden_size
        if tie_weights and embed_size != out_size:
            raise ValueError(
                "LanguageModel: tie_weights needs embed_size equal to the LSTM output size "
                f"(proj_size or hidden_size), got embed_size={embed_size}, output size={out_size}"
            )
        self.tokenizer = tokenizer
        self._config: dict[str, Any] = {
            "embed_size": embed_size,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "dropout": dropout,
            "variant": None,  # filled in below from the LSTM's resolved variant
            "proj_size": proj_size,
            "tie_weights": tie_weights,
            "layer_norm": layer_norm,
            "recurrent_dropout": recurrent_dropout,
            "zoneout": zoneout,
            "forget_bias": forget_bias,
        }
        vocab = len(tokenizer)
        self.embedding = nn.Embedding(vocab, embed_size)
        self.drop = nn.Dropout(dropout)
        self.lstm = LSTM(
            embed_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            proj_size=proj_size,
            variant=Variant(**variant) if isinstance(variant, dict) else variant,
            layer_norm=layer_norm,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
            forget_bias=forget_bias,
            backend=backend,
        )
        v = self.lstm.variant  # a preset is saved by name, any other Variant by its fields
        self._config["variant"] = v.name if v.name in PRESETS else dataclasses.asdict(v)
        self.decoder = nn.Linear(out_size, vocab)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def config_dict(self) -> dict[str, Any]:
        """The constructor arguments (without the tokeniser) as JSON-ready values."""
        return dict(self._config)

    def forward(
        self, tokens: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """``tokens`` (B, T) long -> logits (B, T, V) and the final ``(h_n, c_n)``."""
        if tokens.dim() != 2:
            raise ValueError(
                f"LanguageModel: expected tokens of shape (B, T), got {tuple(tokens.shape)}"
            )
        out, state = self.lstm(self.drop(self.embedding(tokens)), state)  # (B, T, D)
        return self.decoder(self.drop(out)), state  # (B, T, V)

    # ------------------------------------------------------------------ use

    def _device(self) -> torch.device:
        return self.embedding.weight.device

    def prime(self, prompt: str, who: str = "LanguageModel.prime") -> tuple[torch.Tensor, State]:
        """Run the prompt through the model: ``(logits of the next token (V,), state)``.

        An empty prompt starts from a newline token (the usual start of a passage),
        with a zero state. A prompt whose tokens are all unknown is refused.
        """
        ids = self.tokenizer.encode(prompt)
        if not ids:
            nl = self.tokenizer.stoi.get("\n")
            if nl is None:
                raise ValueError(
                    f"{who}: the prompt is empty and the vocabulary has no newline to start from"
                )
            ids = [nl]
        elif not any(ids):
            raise ValueError(
                f"{who}: the prompt {prompt[:40]!r} has only tokens unknown to the vocabulary"
            )
        x = torch.tensor([ids], dtype=torch.long, device=self._device())  # (1, T)
        logits, state = self(x)
        return logits[0, -1], state

    @torch.no_grad()
    def next_tokens(self, prompt: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after ``prompt`` with their probabilities.

        Returns ``[(token, p), ...]`` sorted by decreasing ``p`` (``<unk>`` included).
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"LanguageModel.next_tokens: k must be a positive integer, got {k!r}")
        with _eval_mode(self):
            logits, _ = self.prime(prompt, "LanguageModel.next_tokens")
        probs = torch.softmax(logits.double(), dim=-1)
        p, idx = torch.topk(probs, min(k, probs.numel()))
        return [(self.tokenizer.token(int(i)), float(q)) for q, i in zip(p, idx, strict=True)]

    def stream(
        self,
        prompt: str = "",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | torch.Generator | None = None,
    ) -> Iterator[str]:
        """Yield the continuation of ``prompt`` piece by piece (each with its spacing).

        ``length`` tokens are drawn with :func:`sample_token`; ``<unk>`` is never
        drawn. ``seed`` (an int or a ``torch.Generator``) makes the draw repeat.
        Joined, the pieces are :meth:`generate`'s result. The arguments and the
        prompt are checked (and the prompt read) before the first piece is asked for.
        """
        who = "LanguageModel.generate"
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"{who}: length must be a positive integer, got {length!r}")
        _check_sampling(temperature, top_k, top_p, who)
        generator = seed if isinstance(seed, torch.Generator) else torch.Generator()
        if seed is None:
            generator.seed()  # fresh entropy; the global RNG is left alone
        elif not isinstance(seed, torch.Generator):
            generator.manual_seed(seed)
        with torch.no_grad(), _eval_mode(self):
            logits, state = self.prime(prompt, who)
        split = self.tokenizer.split(prompt)
        previous = split[-1] if split and not prompt[-1:].isspace() else None
        return self._stream(logits, state, previous, length, (temperature, top_k, top_p), generator)

    def _stream(
        self,
        logits,
        state,
        previous,
        length,
        sampling: tuple[float, int | None, float | None],
        generator,
    ) -> Iterator[str]:
        tok = self.tokenizer
        with torch.no_grad(), _eval_mode(self):
            for _ in range(length):
                if len(tok) > 1:
                    logits[tok.unk_id] = -math.inf  # never write <unk>
                idx = sample_token(logits, *sampling, generator=generator)
                token = tok.token(idx)
                yield from tok.pieces([token], previous)
                previous = token
                x = torch.tensor([[idx]], dtype=torch.long, device=self._device())  # (1, 1)
                out, state = self(x, state)
                logits = out[0, -1]

    def generate(
        self,
        prompt: str = "",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | torch.Generator | None = None,
        callback: Callable[[str], Any] | None = None,
    ) -> str:
        """The continuation of ``prompt`` (without the prompt); see :meth:`stream`.

        ``callback(piece)`` is called with each piece as soon as it is drawn.
        """
        pieces = []
        for piece in self.stream(prompt, length, temperature, top_k, top_p, seed):
            pieces.append(piece)
            if callback is not None:
                callback(piece)
        return "".join(pieces)


class _eval_mode:
    """Context manager: the module in eval mode inside, its previous mode restored after."""

    def __init__(self, module: nn.Module) -> None:
        self.module, self.was_training = module, module.training

    def __enter__(self) -> None:
        self.module.eval()

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was_training)


# ------------------------------------------------------------------------- training


@torch.no_grad()
def evaluate_loss(model: LanguageModel, streams: TokenStreams) -> tuple[float, int]:
    """Mean cross-entropy (nats/token) over every target of ``streams``, state carried.

    Returns ``(loss, number of tokens)``; the model is run in eval mode.
    """
    total, count = _nll_total(model, streams)
    return total / count, count


@torch.no_grad()
def _nll_total(model: LanguageModel, streams: TokenStreams) -> tuple[float, int]:
    """Summed cross-entropy (nats) over every target of ``streams`` and their number."""
    total, count, state = 0.0, 0, None
    device = model._device()
    with _eval_mode(model):
        for x, y in streams:
            logits, state = model(x.to(device), state)  # (B, T, V)
            nll = F.cross_entropy(
                logits.flatten(0, 1).float(), y.to(device).flatten(), reduction="sum"
            )
            total += float(nll)
            count += y.numel()
    return total, count


class _Sized:
    """An iterator with a length (for the trainer's progress bar)."""

    def __init__(self, iterator: Iterator, length: int) -> None:
        self.iterator, self.length = iterator, length

    def __iter__(self) -> Iterator:
        return self.iterator

    def __len__(self) -> int:
        return self.length


class LanguageTask:
    """The trainer's task for a :class:`LanguageModel`: stateful truncated BPTT.

    Args:
        model: the language model (its tokeniser decides whether ``val_bpc`` is reported).
        train_ids, val_ids: 1-D token ids.
        batch_size: parallel streams ``B``.
        seq_len: BPTT truncation length ``T``.
        random_offset: start each pass at a random offset in ``[0, T)`` drawn from the
            trainer's generator, so segment boundaries move between passes.
        segments_per_epoch: make a trainer epoch this many segments (validation runs
            between them) instead of a whole pass; the streams and the carried state
            continue from one epoch to the next, and a new pass starts when one ends.

    ``validate`` returns ``val_loss`` (nats/token), ``val_ppl`` (``exp(val_loss)``)
    and, for characters, ``val_bpc`` (``val_loss / ln 2``). Validation runs the
    validation ids as ``min(B, N_val // (T + 1))`` streams with their own state.
    """

    def __init__(
        self,
        model: LanguageModel,
        train_ids: torch.Tensor,
        val_ids: torch.Tensor,
        batch_size: int = 32,
        seq_len: int = 100,
        random_offset: bool = True,
        segments_per_epoch: int | None = None,
    ) -> None:
        if segments_per_epoch is not None and segments_per_epoch < 1:
            raise ValueError(
                f"LanguageTask: segments_per_epoch must be positive, got {segments_per_epoch}"
            )
        try:
            self.train_streams = TokenStreams(train_ids, batch_size, seq_len)
        except ValueError as e:
            raise ValueError(f"LanguageTask: the training split is too short: {e}") from None
        val_streams = min(batch_size, len(val_ids) // (seq_len + 1))
        if val_streams < 1:
            raise ValueError(
                f"LanguageTask: the validation split has {len(val_ids)} tokens, fewer than "
                f"one segment of {seq_len + 1}"
            )
        self.val_streams = TokenStreams(val_ids, val_streams, seq_len)
        self.model = model
        self.random_offset = random_offset
        self.segments_per_epoch = segments_per_epoch
        self.state: State | None = None  # carried across segments, always detached
        self._cursor: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    def _offset(self, generator: torch.Generator) -> int:
        """Where the next pass starts in each stream: 0, or random in [0, T)."""
        if not self.random_offset:
            return 0
        offset = int(torch.randint(self.train_streams.seq_len, (1,), generator=generator))
        return offset if self.train_streams.num_segments(offset) else 0

    def _pass(self, offset: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.state = None  # a new pass starts from zeros
        yield from self.train_streams.segments(offset)

    def _endless(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from self._pass(self._offset(generator))

    def train_batches(self, epoch: int, generator: torch.Generator) -> _Sized:
        """The segments of this epoch: a whole pass, or the next ``segments_per_epoch``."""
        if self.segments_per_epoch is None:
            offset = self._offset(generator)
            return _Sized(self._pass(offset), self.train_streams.num_segments(offset))
        if self._cursor is None:
            self._cursor = self._endless(generator)
        segments = itertools.islice(self._cursor, self.segments_per_epoch)
        return _Sized(segments, self.segments_per_epoch)

    def batch_rows(self) -> int:
        """Parallel streams per batch (a distributed run needs at least one per process)."""
        return int(self.train_streams.batch_size)

    def training_loss(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """Cross-entropy of one segment, starting from the carried (detached) state."""
        x, y = batch  # (B, T), (B, T)
        device = next(model.parameters()).device
        logits, state = model(x.to(device), self.state)  # (B, T, V)
        self.state = (state[0].detach(), state[1].detach())
        return F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten())

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Loss over the whole validation split (nats/token), perplexity, bits/char."""
        loss, _ = evaluate_loss(cast(LanguageModel, model), self.val_streams)
        return self._metrics(loss)

    def validate_share(self, model: nn.Module, where: Any) -> dict[str, float]:
        """:meth:`validate` on several processes: each rank scores its validation streams
        (``where``: the trainer's :class:`~lstmlens.train.distributed.Ranks`) and the totals
        are summed over the ranks; every rank scores all of them when there are fewer
        streams than ranks."""
        from lstmlens.train.distributed import reduce_sum

        if self.val_streams.batch_size < where.world_size:
            return self.validate(model)
        mine = self.val_streams.share(where.rank, where.world_size)
        total, count = reduce_sum(list(_nll_total(cast(LanguageModel, model), mine)), where)
        return self._metrics(total / count)

    def _metrics(self, loss: float) -> dict[str, float]:
        metrics = {"val_loss": loss, "val_ppl": math.exp(min(loss, 700.0))}
        if self.model.tokenizer.level == "char":
            metrics["val_bpc"] = loss / math.log(2)
        return metrics


# ------------------------------------------------------------------------- save/load


def save_language_model(
    run_dir: str | os.PathLike, model: LanguageModel, extra: dict[str, Any] | None = None
) -> None:
    """Save weights and ``config.json`` (task, model arguments, tokeniser, ``extra``)."""
    from lstmlens.train import save_model

    config = {
        **(extra or {}),
        "task": TASK,
        "format_version": FORMAT_VERSION,
        "model": model.config_dict(),
        "tokenizer": model.tokenizer.to_dict(),
    }
    save_model(run_dir, model, config)


def build_language_model(config: dict[str, Any]) -> LanguageModel:
    """Rebuild an (untrained) :class:`LanguageModel` from a saved ``config.json``.

    Raises ``ValueError`` when the config belongs to another task or is incomplete.
    """
    task = config.get("task")
    if task not in (TASK, "language"):
        raise ValueError(
            f"load_language_model: this run folder holds a {task!r} model, not a text model"
        )
    try:
        tokenizer = tokenizer_from_dict(config["tokenizer"])
        return LanguageModel(tokenizer, **config["model"])
    except (KeyError, TypeError) as e:
        raise ValueError(
            f"load_language_model: config.json is incomplete or malformed ({e})"
        ) from None


def load_language_model(run_dir: str | os.PathLike) -> tuple[LanguageModel, dict[str, Any]]:
    """Load a model saved by :func:`save_language_model`: ``(model in eval mode, config)``."""
    from lstmlens.train import load_model

    return load_model(run_dir, build_language_model)
