"""Text as token ids: tokenisers, vocabularies, and the stream layout of truncated BPTT.

A tokeniser splits text into tokens (characters or words) and maps each token to an
id in a vocabulary. Id 0 is always ``<unk>``: encoding a character or word the
vocabulary does not know gives 0, never an error. Vocabularies are built from a
corpus (optionally capped to the most frequent tokens), travel with the model as
JSON and never need the corpus again.

For training, the id sequence ``x_0 .. x_{N-1}`` is cut into ``B`` parallel streams
(Zaremba et al. 2014; char-rnn), so that each row of segment ``k`` continues the same
row of segment ``k - 1`` and the hidden state can be carried from one to the next::

    L = N // B                                   # tokens per stream
    data[b, t] = x[b * L + t]                    # (B, L)
    inputs_k  = data[:, o + kT     : o + kT + T]     # (B, T)
    targets_k = data[:, o + kT + 1 : o + kT + T + 1] # (B, T): inputs shifted by one

where ``o`` is an optional offset in ``[0, T)`` that moves the cut points between epochs.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

__all__ = [
    "UNK",
    "Tokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "build_tokenizer",
    "tokenizer_from_dict",
    "load_tokenizer",
    "read_corpus",
    "split_ids",
    "TokenStreams",
]

UNK = "<unk>"

# Words (with inner apostrophes: "don't", "o'er"), single punctuation marks, and newlines.
_WORD_RE = re.compile(r"<unk>|\w+(?:'\w+)*|[^\w\s]|\n")
# Punctuation written against the word before it, and the word after it.
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%")
_NO_SPACE_AFTER = frozenset("([{$")


class Tokenizer:
    """A vocabulary plus a rule for cutting text into tokens.

    Args:
        tokens: the known tokens, in id order; ``<unk>`` is put in front as id 0
            (and dropped from ``tokens`` if it is listed there).
        lower: lower-case text before splitting it.

    Subclasses define :meth:`split` (text -> tokens) and :meth:`pieces` (tokens ->
    the strings that, concatenated, write them back as text).
    """

    level = ""
    unk_text = UNK  # how an unknown token is written back as text

    def __init__(self, tokens: Iterable[str], lower: bool = False) -> None:
        known = [t for t in tokens if t != UNK]
        for t in known:
            if not isinstance(t, str) or not t:
                raise TypeError(f"{type(self).__name__}: tokens must be non-empty str, got {t!r}")
        if len(set(known)) != len(known):
            raise ValueError(f"{type(self).__name__}: the token list has duplicates")
        self.itos: list[str] = [UNK, *known]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        self.lower = bool(lower)

    unk_id = 0

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={len(self)}, lower={self.lower})"

    # -- text <-> tokens -------------------------------------------------------
    def split(self, text: str) -> list[str]:
        """Cut ``text`` into tokens (after lower-casing if ``lower``)."""
        raise NotImplementedError

    def pieces(self, tokens: Iterable[str], previous: str | None = None) -> Iterator[str]:
        """Yield, token by token, the text that writes ``tokens`` after ``previous``.

        ``"".join(pieces(tokens))`` is :meth:`join` of the tokens; passing the
        token already written as ``previous`` lets a caller stream text one token
        at a time with the right spacing.
        """
        raise NotImplementedError

    def join(self, tokens: Iterable[str]) -> str:
        """Write tokens back as text (inverse of :meth:`split` for known tokens)."""
        return "".join(self.pieces(tokens))

    # -- tokens <-> ids --------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Text -> ids; unknown tokens become ``unk_id`` (0)."""
        get = self.stoi.get
        return [get(t, 0) for t in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; ``<unk>`` is written as :attr:`unk_text`."""
        return self.join(self.token(int(i)) for i in ids)

    def token(self, index: int) -> str:
        """The token with id ``index``."""
        if not 0 <= index < len(self.itos):
            raise ValueError(
                f"{type(self).__name__}.token: id must be in [0, {len(self.itos)}), got {index}"
            )
        return self.itos[index]

    # -- persistence -----------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready description: ``{"level", "lower", "tokens"}`` (tokens without <unk>)."""
        return {"level": self.level, "lower": self.lower, "tokens": self.itos[1:]}

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON atomically (a temp file beside it, then ``os.replace``)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class CharTokenizer(Tokenizer):
    """One token per character (Unicode code point). Unknown characters read back as U+FFFD."""

    level = "char"
    unk_text = "\ufffd"

    def split(self, text: str) -> list[str]:
        return list(text.lower() if self.lower else text)

    def pieces(self, tokens: Iterable[str], previous: str | None = None) -> Iterator[str]:
        for t in tokens:
            yield self.unk_text if t == UNK else t


class WordTokenizer(Tokenizer):
    """Words, punctuation marks and newlines as tokens.

    Splitting keeps inner apostrophes in a word (``don't``) and keeps a literal
    ``<unk>`` in the text (as in pre-processed corpora such as PTB) as the unknown
    token. Joining puts one space between tokens, none before closing punctuation
    (``. , ; : ! ? ) ] } %``), none after opening brackets and none around newlines,
    so ``split(join(tokens)) == tokens``.
    """

    level = "word"

    def split(self, text: str) -> list[str]:
        return _WORD_RE.findall(text.lower() if self.lower else text)

    def pieces(self, tokens: Iterable[str], previous: str | None = None) -> Iterator[str]:
        for t in tokens:
            glue = (
                previous is None
                or previous == "\n"
                or t == "\n"
                or t in _NO_SPACE_BEFORE
                or previous in _NO_SPACE_AFTER
            )
            yield t if glue else " " + t
            previous = t


_LEVELS: dict[str, type[Tokenizer]] = {"char": CharTokenizer, "word": WordTokenizer}


def build_tokenizer(
    text: str,
    level: str = "char",
    max_vocab: int | None = None,
    min_count: int = 1,
    lower: bool = False,
) -> Tokenizer:
    """Build a tokeniser whose vocabulary is the tokens of ``text``.

    Args:
        text: the corpus.
        level: ``"char"`` or ``"word"``.
        max_vocab: at most this many ids in all, ``<unk>`` included; the most
            frequent tokens are kept (ties: the token that sorts first).
        min_count: tokens seen fewer times map to ``<unk>``.
        lower: lower-case the text first (and every text encoded later).

    Ids follow code-point order for characters (as char-rnn) and descending
    frequency for words.
    """
    if level not in _LEVELS:
        raise ValueError(f"build_tokenizer: level must be 'char' or 'word', got {level!r}")
    if max_vocab is not None and max_vocab < 2:
        raise ValueError(f"build_tokenizer: max_vocab must be at least 2, got {max_vocab}")
    if min_count < 1:
        raise ValueError(f"build_tokenizer: min_count must be at least 1, got {min_count}")
    cls = _LEVELS[level]
    counts = Counter(cls([], lower=lower).split(text))
    counts.pop(UNK, None)
    kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
    if max_vocab is not None:
        kept = kept[: max_vocab - 1]
    if level == "char":
        kept.sort()
    return cls(kept, lower=lower)


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Rebuild a tokeniser from :meth:`Tokenizer.to_dict`."""
    if not isinstance(d, dict) or d.get("level") not in _LEVELS or "tokens" not in d:
        raise ValueError(
            "tokenizer_from_dict: expected {'level': 'char'|'word', 'lower', 'tokens'}, "
            f"got {str(d)[:80]!r}"
        )
    if not isinstance(d["tokens"], list):
        raise TypeError(f"tokenizer_from_dict: 'tokens' must be a list, got {type(d['tokens'])}")
    return _LEVELS[d["level"]](d["tokens"], lower=bool(d.get("lower", False)))


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Read a tokeniser written by :meth:`Tokenizer.save`."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"load_tokenizer: cannot read {path}: {e}") from None
    return tokenizer_from_dict(d)


def read_corpus(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file, refusing what is missing, empty or binary.

    Raises:
        ValueError: the file is missing, is a folder, is empty (or only
            whitespace), contains NUL bytes, or is not valid UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ValueError(f"read_corpus: {path} {what}; expected a UTF-8 text file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise ValueError(f"read_corpus: {path} looks binary (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"read_corpus: {path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
            f"{e.start})"
        ) from None
    if not text.strip():
        raise ValueError(f"read_corpus: {path} is empty")
    return text.removeprefix("\ufeff")


def split_ids(ids: Sequence[int] | torch.Tensor, val_fraction: float = 0.1):
    """Split an id sequence into (train, validation): the first ``1 - val_fraction`` and the rest.

    Returns two 1-D ``torch.long`` tensors; nanoGPT's split is ``val_fraction=0.1``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"split_ids: val_fraction must be in (0, 1), got {val_fraction}")
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
    n_train = int(len(ids) * (1.0 - val_fraction))
    return ids[:n_train], ids[n_train:]


class TokenStreams:
    """An id sequence laid out as ``batch_size`` parallel streams for truncated BPTT.

    Args:
        ids: 1-D ids ``(N,)``.
        batch_size: number of streams ``B``.
        seq_len: tokens per segment ``T`` (the truncation length of BPTT).

    Iterating over :meth:`segments` yields ``(inputs, targets)``, both ``(B, T)``
    long tensors (the last segment may be shorter), where ``targets`` is
    ``inputs`` shifted one token ahead and row ``b`` of segment ``k`` continues
    row ``b`` of segment ``k - 1`` (see the module docstring).

    Raises:
        ValueError: fewer than ``B * (T + 1)`` ids, i.e. not one full segment.
    """

    def __init__(self, ids: Sequence[int] | torch.Tensor, batch_size: int, seq_len: int) -> None:
        if batch_size < 1 or seq_len < 1:
            raise ValueError(
                f"TokenStreams: batch_size and seq_len must be positive, got {batch_size}, "
                f"{seq_len}"
            )
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        need = batch_size * (seq_len + 1)
        if len(ids) < need:
            raise ValueError(
                f"TokenStreams: {len(ids)} tokens is too short for one batch of {batch_size} "
                f"streams x {seq_len + 1} tokens (need at least {need})"
            )
        self.batch_size = batch_size
        self.seq_len = seq_len
        length = len(ids) // batch_size
        self.data = ids[: batch_size * length].reshape(batch_size, length)  # (B, L)

    @property
    def stream_length(self) -> int:
        """Tokens per stream ``L``."""
        return self.data.shape[1]

    def num_segments(self, offset: int = 0) -> int:
        """How many segments :meth:`segments` yields for this ``offset``."""
        usable = self.stream_length - 1 - offset  # inputs need one target after them
        return -(-usable // self.seq_len) if usable > 0 else 0

    def __len__(self) -> int:
        return self.num_segments(0)

    def segments(self, offset: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(inputs, targets)`` segments, each ``(B, T)``, starting ``offset`` tokens in."""
        if not 0 <= offset < self.seq_len:
            raise ValueError(
                f"TokenStreams.segments: offset must be in [0, {self.seq_len}), got {offset}"
            )
        end = self.stream_length - 1
        for start in range(offset, end, self.seq_len):
            stop = min(start + self.seq_len, end)
            yield self.data[:, start:stop], self.data[:, start + 1 : stop + 1]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.segments(0)

    def share(self, rank: int, world: int) -> TokenStreams:
        """Rank ``rank``'s streams when ``world`` processes split these (the rows that
        ``torch.tensor_split`` gives it; the same segments, fewer rows)."""
        part = object.__new__(TokenStreams)
        part.data = torch.tensor_split(self.data, world)[rank]
        part.batch_size, part.seq_len = part.data.shape[0], self.seq_len
        return part
