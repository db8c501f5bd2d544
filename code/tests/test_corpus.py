import hashlib
import warnings

import pytest
import torch

from seqlab.data import CORPORA, CharCorpus, CharTokenizer, Download, corpus, fetch, load_text, pydoc_text


def test_embedded_corpus_is_python_help_text():
    text = pydoc_text()
    assert len(text) > 400_000
    assert "assert" in text and "lambda" in text


def test_tokenizer_round_trip():
    tok = CharTokenizer("hello world")
    assert tok.vocab_size == len(set("hello world"))
    ids = tok.encode("low hello")
    assert ids.dtype == torch.long and ids.shape == (9,)
    assert tok.decode(ids) == "low hello"
    assert tok.chars == sorted(set("hello world"))


def test_tokenizer_errors():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([0, 3])
    with pytest.raises(TypeError, match="encode takes a str"):
        tok.encode(["a"])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer("")


def test_corpus_split_sizes_and_round_trip():
    c = CharCorpus("abcdefghij" * 100, val_fraction=0.2)
    assert len(c.train) == 800 and len(c.val) == 200
    assert c.tokenizer.decode(torch.cat([c.train, c.val])) == c.text
    full = CharCorpus()
    assert len(full.train) + len(full.val) == len(full.text)
    assert abs(len(full.val) / len(full.text) - 0.1) < 1e-4


def test_batches_are_shifted_windows():
    c = CharCorpus("abcdefghij" * 100, val_fraction=0.2)
    x, y = c.batch("train", 8, 16, generator=0)
    assert x.shape == y.shape == (8, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])
    # consecutive letters: each next id is the previous + 1 mod 10
    assert torch.equal(y, (x + 1) % 10)
    x2, _ = c.batch("train", 8, 16, generator=0)
    assert torch.equal(x, x2)


def test_random_windows_are_consecutive_tokens_from_anywhere_in_the_data():
    from seqlab.data.corpus import random_windows
    data = torch.arange(1000)
    x, y = random_windows(data, 500, 7, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (500, 7) and torch.equal(y, x + 1)                 # consecutive, shifted by one
    assert torch.equal(x, x[:, :1] + torch.arange(7))
    assert x[:, 0].min() >= 0 and y[:, -1].max() <= 999                            # inside the data
    assert x[:, 0].min() < 20 and x[:, 0].max() > 970                               # from either end
    x2, _ = random_windows(data, 500, 7, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    assert torch.equal(random_windows(data, 1, 999, None)[0], data[None, :999])    # the one window that fits
    with pytest.raises(ValueError, match="needs 1001 tokens, the data has 1000"):
        random_windows(data, 1, 1000)


def test_batch_errors():
    c = CharCorpus("abcdefghij" * 10, val_fraction=0.5)
    with pytest.raises(ValueError, match="split must be"):
        c.batch("test", 2, 4)
    with pytest.raises(ValueError, match="longer than the val split"):
        c.batch("val", 2, 60)
    with pytest.raises(ValueError, match="val_fraction"):
        CharCorpus("abc", val_fraction=1.0)


def _spec_for(tmp_path, content: bytes, sha=None):
    src = tmp_path / "source.txt"
    src.write_bytes(content)
    return Download(url=src.as_uri(), sha256=sha or hashlib.sha256(content).hexdigest(), size=len(content), filename="c.txt")


def test_fetch_verifies_and_caches(tmp_path):
    spec = _spec_for(tmp_path, b"to be or not to be")
    cache = tmp_path / "cache"
    path = fetch(spec, cache)
    assert path.read_bytes() == b"to be or not to be"
    (tmp_path / "source.txt").unlink()  # a second call must come from the cache
    assert fetch(spec, cache) == path


def test_fetch_rejects_a_wrong_checksum(tmp_path):
    spec = _spec_for(tmp_path, b"tampered", sha="0" * 64)
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch(spec, tmp_path / "cache")
    assert not (tmp_path / "cache" / "c.txt").exists()


def test_offline_falls_back_to_the_embedded_corpus(tmp_path, monkeypatch):
    unreachable = Download(url=(tmp_path / "missing.txt").as_uri(), sha256="0" * 64, size=1, filename="x.txt")
    monkeypatch.setitem(CORPORA, "tiny-shakespeare", unreachable)
    with pytest.warns(UserWarning, match="using the embedded 'pydoc' corpus"):
        text = load_text("tiny-shakespeare", directory=tmp_path)
    assert text == pydoc_text()
    with pytest.raises(OSError):
        load_text("tiny-shakespeare", directory=tmp_path, fallback=False)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path))
    assert corpus.cache_dir() == tmp_path


def test_unknown_corpus():
    with pytest.raises(ValueError, match="unknown corpus"):
        load_text("war-and-peace")
    assert CORPORA["tiny-shakespeare"].size == 1_115_394
