"""Tokenisers, vocabularies, corpus reading and the parallel-stream layout of truncated BPTT."""

import json

import pytest
import torch

from lstmlens.data.text import (
    UNK,
    CharTokenizer,
    TokenStreams,
    WordTokenizer,
    build_tokenizer,
    load_tokenizer,
    read_corpus,
    split_ids,
    tokenizer_from_dict,
)

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer"


# -- tokenisers ------------------------------------------------------------------------


def test_char_round_trip_and_vocab_order():
    tok = build_tokenizer(TEXT, level="char")
    assert isinstance(tok, CharTokenizer)
    assert tok.itos[0] == UNK and tok.unk_id == 0
    assert tok.itos[1:] == sorted(set(TEXT))  # code-point order, as char-rnn
    ids = tok.encode(TEXT)
    assert len(ids) == len(TEXT) and 0 not in ids
    assert tok.decode(ids) == TEXT


def test_char_unknown_never_crashes():
    tok = build_tokenizer("abc", level="char")
    assert tok.encode("abz\u00e9") == [1, 2, 0, 0]
    assert tok.decode([1, 0, 3]) == "a\ufffdc"


def test_char_lower():
    tok = build_tokenizer("AbC", level="char", lower=True)
    assert tok.itos[1:] == ["a", "b", "c"]
    assert tok.encode("CAB") == [3, 1, 2]


def test_word_split_and_round_trip():
    tok = build_tokenizer(TEXT, level="word")
    assert isinstance(tok, WordTokenizer)
    words = tok.split(TEXT)
    assert words[:6] == ["To", "be", ",", "or", "not", "to"]
    assert "\n" in words and "'" in words and "tis" in words
    # A normally spaced text comes back exactly.
    plain = "the cat (a big one) sat; it didn't move.\nthen: 50% more!"
    assert tok.join(tok.split(plain)) == plain
    # Token-level round trip through ids for the corpus itself.
    ids = tok.encode(TEXT)
    assert 0 not in ids
    assert tok.split(tok.decode(ids)) == words


def test_word_frequency_order_cap_and_unknown():
    text = "b a b c b a\nd"
    tok = build_tokenizer(text, level="word", max_vocab=3)
    # counts: b=3, a=2, then c=d="\n"=1 (ties broken by sort order: "\n" < "c" < "d")
    assert tok.itos == [UNK, "b", "a"]
    assert tok.encode("a b c zzz") == [2, 1, 0, 0]
    assert tok.decode([1, 0, 2]) == "b <unk> a"
    tok2 = build_tokenizer(text, level="word", min_count=2)
    assert tok2.itos == [UNK, "b", "a"]


def test_word_literal_unk_and_lower():
    tok = build_tokenizer("The cat <unk> the DOG", level="word", lower=True)
    assert UNK not in tok.itos[1:]
    assert tok.itos[1] == "the"  # two occurrences once lower-cased
    assert tok.encode("THE <unk> Cat") == [1, 0, tok.stoi["cat"]]


def test_pieces_stream_with_previous_token():
    tok = WordTokenizer(["hello", ",", "world", "\n"])
    toks = ["hello", ",", "world", "\n", "hello"]
    assert "".join(tok.pieces(toks)) == tok.join(toks) == "hello, world\nhello"
    assert list(tok.pieces(["world"], previous="hello")) == [" world"]
    assert list(tok.pieces([","], previous="hello")) == [","]


def test_save_load_json(tmp_path):
    for level in ("char", "word"):
        tok = build_tokenizer(TEXT, level=level, lower=True)
        path = tmp_path / f"{level}.json"
        tok.save(path)
        d = json.loads(path.read_text(encoding="utf-8"))
        assert d["level"] == level and d["lower"] is True
        again = load_tokenizer(path)
        assert again == tok and type(again) is type(tok)
        assert again.encode(TEXT) == tok.encode(TEXT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["char.json", "word.json"]  # no temp left


def test_tokenizer_errors(tmp_path):
    with pytest.raises(ValueError, match="level must be"):
        build_tokenizer("abc", level="byte")
    with pytest.raises(ValueError, match="max_vocab"):
        build_tokenizer("abc", max_vocab=1)
    with pytest.raises(ValueError, match="duplicates"):
        CharTokenizer(["a", "a"])
    with pytest.raises(ValueError, match="tokenizer_from_dict"):
        tokenizer_from_dict({"level": "byte", "tokens": []})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="load_tokenizer"):
        load_tokenizer(bad)
    with pytest.raises(ValueError, match=r"id must be in \[0, 4\)"):
        build_tokenizer("abc").token(4)


# -- corpus files ----------------------------------------------------------------------


def test_read_corpus_good_and_bad(tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes("\ufeffhéllo\n".encode())
    assert read_corpus(good) == "héllo\n"
    with pytest.raises(ValueError, match="does not exist"):
        read_corpus(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="is a folder"):
        read_corpus(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b" \n\n")
    with pytest.raises(ValueError, match="is empty"):
        read_corpus(empty)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8 text.*0xe9 at offset 3"):
        read_corpus(latin)
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"PK\x03\x04\x00\x00abc")
    with pytest.raises(ValueError, match="binary"):
        read_corpus(binary)


def test_split_ids():
    train, val = split_ids(list(range(100)), 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    with pytest.raises(ValueError, match="val_fraction"):
        split_ids([1, 2, 3], 1.0)


# -- stream layout ---------------------------------------------------------------------


def test_streams_layout_and_continuity():
    n, b, t = 103, 4, 6
    ids = torch.arange(n)
    streams = TokenStreams(ids, batch_size=b, seq_len=t)
    length = n // b  # 25 tokens per stream, the last 3 ids are dropped
    assert streams.data.shape == (b, length)
    segs = list(streams)
    assert len(segs) == len(streams) == 4  # 24 predictable positions: 6 + 6 + 6 + 6
    for k, (x, y) in enumerate(segs):
        assert x.shape == y.shape == (b, t)
        for row in range(b):
            # Stream `row` is the contiguous slice ids[row*L : (row+1)*L]; segment k holds
            # positions k*T .. k*T+T-1 of it, and targets are the next ids.
            first = row * length + k * t
            assert x[row].tolist() == list(range(first, first + t))
            assert y[row].tolist() == list(range(first + 1, first + t + 1))
        if k:
            # Row b of segment k starts exactly where row b of segment k-1 ended.
            assert torch.equal(x[:, 0], segs[k - 1][0][:, -1] + 1)
            assert torch.equal(x[:, 0], segs[k - 1][1][:, -1])


def test_streams_offset_and_short_last_segment():
    streams = TokenStreams(torch.arange(40), batch_size=2, seq_len=6)  # L = 20, 19 targets
    segs = list(streams.segments(offset=2))  # 17 positions: 6 + 6 + 5
    assert [x.shape[1] for x, _ in segs] == [6, 6, 5] == [y.shape[1] for _, y in segs]
    assert streams.num_segments(2) == 3
    joined = torch.cat([x for x, _ in segs], dim=1)
    assert joined[0].tolist() == list(range(2, 19)) and joined[1].tolist() == list(range(22, 39))
    assert segs[-1][1][1, -1].item() == 39  # the very last id is a target
    with pytest.raises(ValueError, match="offset must be in"):
        next(streams.segments(offset=6))


def test_streams_too_short():
    TokenStreams(torch.arange(14), batch_size=2, seq_len=6)  # exactly one segment fits
    with pytest.raises(ValueError, match="too short for one batch.*need at least 14"):
        TokenStreams(torch.arange(13), batch_size=2, seq_len=6)
    with pytest.raises(ValueError, match="must be positive"):
        TokenStreams(torch.arange(13), batch_size=0, seq_len=6)
