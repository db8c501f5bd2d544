"""Character-level text: the embedded corpus, a tokenizer, splits and batches (chapter 1).

The default corpus ships with Python itself: the help topics of ``pydoc_data``
(about 465,000 characters of English prose and code, 103 distinct
characters), so no chapter needs a network. Other public corpora can be
downloaded by name; each download is verified against a SHA-256 digest and
cached, and when it cannot be had the embedded corpus is used instead, with a
message that says so.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import _validate as validate
from ..config import make_generator


@dataclass(frozen=True)
class Download:
    """A public corpus: where it lives, and the size and SHA-256 it must have (chapter 1)."""

    url: str
    sha256: str
    size: int
    filename: str


CORPORA: dict[str, Download] = {
    "tiny-shakespeare": Download(
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
        filename="tiny-shakespeare.txt",
    ),
}


def pydoc_text() -> str:
    """The embedded corpus: Python's help topics, in sorted order, separated by blank lines (chapter 1)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip("\n") for k in sorted(topics))


def cache_dir() -> Path:
    """Where downloads are kept: ``SEQLAB_CACHE`` or ``~/.cache/seqlab`` (chapter 1)."""
    return Path(os.environ.get("SEQLAB_CACHE", Path.home() / ".cache" / "seqlab"))


def sha256_of(path: Path) -> str:
    """The SHA-256 hex digest of the file at ``path``, read in 1 MiB blocks (chapter 1: it verifies downloads)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(spec: Download, directory: Path | None = None, timeout: float = 20.0) -> Path:
    """Download ``spec`` into the cache (once) and return its path (chapter 1).

    A cached file is re-verified; a download whose SHA-256 differs from the
    expected one is deleted and raises ``ValueError``. Network failures raise
    ``OSError``.
    """
    directory = Path(directory) if directory is not None else cache_dir()
    path = directory / spec.filename
    if path.exists() and sha256_of(path) == spec.sha256:
        return path
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    with urllib.request.urlopen(spec.url, timeout=timeout) as response, open(partial, "wb") as out:
        out.write(response.read())
    digest = sha256_of(partial)
    if digest != spec.sha256:
        partial.unlink()
        raise ValueError(f"checksum mismatch for {spec.url}: expected sha256 {spec.sha256}, got {digest}")
    partial.replace(path)
    return path


def load_text(name: str = "pydoc", *, directory: Path | None = None, fallback: bool = True) -> str:
    """The text of a corpus: ``"pydoc"`` (embedded, the default) or a name in ``CORPORA`` (chapter 1).

    If a download fails and ``fallback`` is true, the embedded corpus is
    returned and a warning says why.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name == "pydoc":
        return pydoc_text()
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; choose 'pydoc' or one of {sorted(CORPORA)}")
    try:
        return fetch(CORPORA[name], directory).read_text(encoding="utf-8")
    except (OSError, ValueError) as err:
        if not fallback:
            raise
        warnings.warn(f"could not load corpus {name!r} ({err}); using the embedded 'pydoc' corpus instead", stacklevel=2)
        return pydoc_text()


class CharTokenizer:
    """Characters <-> integer ids. The vocabulary is the sorted set of characters of a text (chapter 1)."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer needs a non-empty str to build its vocabulary")
        self.chars: list[str] = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """A LongTensor of ids, shape ``(len(text),)``."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]!r}")
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids (tensor or list)."""
        if isinstance(ids, torch.Tensor):
            validate.tensor("ids", ids, ndim=1, dtype="long")
            ids = ids.tolist()
        if isinstance(ids, str) or not hasattr(ids, "__iter__"):
            raise TypeError(f"decode takes a 1-D tensor or a list of int ids, got {type(ids).__name__}")
        ids = list(ids)
        kinds = [i for i in ids if isinstance(i, bool) or not isinstance(i, int)]
        if kinds:
            raise TypeError(f"ids must be ints, got {type(kinds[0]).__name__} {kinds[0]!r}")
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids out of range [0, {self.vocab_size}): {bad[:10]}")
        return "".join(self.chars[i] for i in ids)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def random_windows(data: torch.Tensor, batch_size: int, context: int, generator: torch.Generator | None = None):
    """``batch_size`` windows of ``context + 1`` consecutive tokens of ``data`` at uniformly drawn starts, as
    ``x, y`` of shape ``(B, context)`` with ``y`` = ``x`` shifted by one (next-token prediction, chapter 2).

    One ``torch.randint`` draw per call, so a seeded generator gives the same batches wherever it is used
    (``CharCorpus.batch``, chapter 10's sweep).
    """
    if context + 1 > len(data):
        raise ValueError(f"a window of context {context} needs {context + 1} tokens, the data has {len(data)}")
    start = torch.randint(0, len(data) - context, (batch_size,), generator=generator)
    window = data[start[:, None] + torch.arange(context + 1)]  # (B, context + 1): consecutive tokens
    return window[:, :-1], window[:, 1:]


class CharCorpus:
    """A text as ids, split into a training and a validation part (chapter 1).

    The split is contiguous (the last ``val_fraction`` of the text is held out),
    so validation text is never seen in training, not even as context.
    """

    def __init__(self, text: str | None = None, val_fraction: float = 0.1):
        text = pydoc_text() if text is None else text
        validate.probability("val_fraction", val_fraction)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
        self.text = text
        self.tokenizer = CharTokenizer(text)
        ids = self.tokenizer.encode(text)
        n_train = int(len(ids) * (1 - val_fraction))
        self.train, self.val = ids[:n_train], ids[n_train:]

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def split(self, name: str) -> torch.Tensor:
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return self.train if name == "train" else self.val

    def batch(self, split: str, batch_size: int, context: int, generator: torch.Generator | int | None = None):
        """Random windows for next-character prediction: ``x, y`` of shape ``(B, context)``, ``y`` = ``x`` shifted by one."""
        validate.positive_int("batch_size", batch_size)
        validate.positive_int("context", context)
        data = self.split(split)
        if context + 1 > len(data):
            raise ValueError(f"context {context} is longer than the {split} split ({len(data)} characters)")
        return random_windows(data, batch_size, context, make_generator(generator))

    def __repr__(self) -> str:
        return f"CharCorpus({len(self.text):,} characters, vocab {self.vocab_size}, train {len(self.train):,}, val {len(self.val):,})"
