"""A second embedded corpus, big enough to scale on: the standard library's own source (chapter 10).

``pydoc_data`` (465,000 characters) is enough for the early chapters but not for a scaling
study: a sweep that trains each model on millions of characters would pass over it dozens of
times. Every Python also ships its standard library as source, about 11 million characters of
non-test ``.py`` files under ``sysconfig.get_paths()["stdlib"]`` for Python 3.11. Code has
long-range structure (indentation, identifiers repeated many lines apart) that only a model
with context can use.

The corpus is assembled deterministically:

- files: every ``*.py`` below the stdlib path, sorted by their relative path (POSIX form),
  leaving out directories named ``test``, ``tests``, ``idle_test``, ``idlelib``,
  ``site-packages`` and ``__pycache__`` and files named ``test_*.py``;
- symbols: tab, newline and the 95 printable ASCII characters, plus one ``OTHER`` symbol
  (``"\\x7f"``) for every other character (non-ASCII letters in comments, ``\\r``, ...):
  V = 98 whatever the files contain, so every split shares one vocabulary;
- split by file: file ``i`` (in sorted order) goes to ``val`` when ``i mod 20 = 19``, to
  ``tune`` when ``i mod 20 = 9`` and to ``train`` otherwise. ``tune`` chooses learning
  rates, ``val`` reports losses, so the reported number is not the one that was minimised.
  Within a split the files are joined with a blank line.

``StdlibCorpus.info()`` gives the file and character counts of each split and the SHA-256
of the assembled text, which results files record: a sweep run on another Python version
(another stdlib) says so.
"""
from __future__ import annotations

import functools
import hashlib
import os
import sys
import sysconfig
from pathlib import Path

import numpy as np
import torch

from .corpus import CharCorpus, CharTokenizer

SKIP_DIRS = frozenset({"test", "tests", "idle_test", "idlelib", "site-packages", "__pycache__"})
OTHER = "\x7f"
ALPHABET = "\t\n" + "".join(chr(c) for c in range(32, 127)) + OTHER  # V = 98
SPLITS = ("train", "tune", "val")
VAL_EVERY = 20  # file i: val when i % 20 == 19, tune when i % 20 == 9
SEPARATOR = "\n\n"
PYTHON = "3.11"  # the version whose stdlib the recorded results used


def stdlib_root() -> Path:
    """The standard library's directory of this Python: ``sysconfig.get_paths()["stdlib"]`` (chapter 10)."""
    return Path(sysconfig.get_paths()["stdlib"])


def source_files(root: str | Path | None = None) -> list[Path]:
    """The corpus's files: non-test ``.py`` files under ``root`` (default: the stdlib), sorted by relative path (chapter 10).

    Raises ``FileNotFoundError`` naming the path when ``root`` is not a directory, and
    ``ValueError`` when it holds no ``.py`` file.
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike) or None, got {type(root).__name__}")
    root = stdlib_root() if root is None else Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"the corpus path {str(root)!r} does not exist or is not a directory; expected a "
                                f"directory of .py files such as the stdlib at {str(stdlib_root())!r}")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            if name.endswith(".py") and not name.startswith("test_"):
                found.append(Path(dirpath, name))
    if not found:
        raise ValueError(f"no .py files under {str(root)!r}: expected a directory of Python source such as the stdlib")
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def split_of(i: int) -> str:
    """Which split file ``i`` (its index in sorted order) belongs to: 'val', 'tune' or 'train' (chapter 10)."""
    r = i % VAL_EVERY
    return "val" if r == VAL_EVERY - 1 else "tune" if r == VAL_EVERY // 2 - 1 else "train"


def normalise(text: str) -> str:
    """``text`` with every character outside ``ALPHABET`` replaced by ``OTHER`` (chapter 10)."""
    keep = set(ALPHABET)
    if all(c in keep for c in set(text)):
        return text
    return "".join(c if c in keep else OTHER for c in text)


_LUT = np.full(128, -1, dtype=np.int64)
for _i, _c in enumerate(sorted(ALPHABET)):
    _LUT[ord(_c)] = _i


def encode(text: str) -> torch.Tensor:
    """Ids of a normalised text (every character in ``ALPHABET``), via a lookup table: fast for millions of characters (chapter 10)."""
    raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    ids = _LUT[raw]
    if (ids < 0).any():
        raise ValueError("text holds characters outside ALPHABET; pass it through normalise() first")
    return torch.from_numpy(ids.copy())


@functools.lru_cache(maxsize=2)
def _assemble(root: str) -> tuple[dict, dict]:
    files = source_files(root)
    parts: dict[str, list[str]] = {s: [] for s in SPLITS}
    names: dict[str, list[str]] = {s: [] for s in SPLITS}
    for i, path in enumerate(files):
        s = split_of(i)
        parts[s].append(normalise(path.read_text(encoding="utf-8", errors="replace")))
        names[s].append(path.relative_to(root).as_posix())
    return {s: SEPARATOR.join(p) for s, p in parts.items()}, names


class StdlibCorpus(CharCorpus):
    """The standard library's source as character ids, split by file into train / tune / val (chapter 10).

    Same interface as ``CharCorpus`` (``train``, ``val``, ``vocab_size``, ``tokenizer``,
    ``batch(split, B, context, generator)``), plus the ``tune`` split for choosing learning
    rates and ``info()`` for results files. ``root`` replaces the stdlib path (tests use a
    small directory).
    """

    def __init__(self, root: str | Path | None = None):
        root = stdlib_root() if root is None else Path(root)
        source_files(root)  # the clear errors for a missing or empty path
        texts, names = _assemble(str(root))
        self.root = root
        self.tokenizer = CharTokenizer(ALPHABET)
        self.texts, self.files = texts, names
        self.ids = {s: encode(t) for s, t in texts.items()}
        self.train, self.tune, self.val = self.ids["train"], self.ids["tune"], self.ids["val"]
        self.text = texts["train"]

    def split(self, name: str) -> torch.Tensor:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.ids[name]

    def sha256(self) -> str:
        """SHA-256 of the assembled corpus: the three splits in the order train, tune, val, each followed by a NUL."""
        h = hashlib.sha256()
        for s in SPLITS:
            h.update(self.texts[s].encode("ascii"))
            h.update(b"\0")
        return h.hexdigest()

    def info(self) -> dict:
        """What a results file records about the corpus: its name, Python, sizes per split and SHA-256."""
        return {"name": "stdlib", "python": ".".join(map(str, sys.version_info[:3])), "root": str(self.root),
                "vocab_size": self.vocab_size, "sha256": self.sha256(),
                "files": {s: len(self.files[s]) for s in SPLITS}, "chars": {s: len(self.ids[s]) for s in SPLITS}}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s} {len(self.ids[s]):,}" for s in SPLITS)
        return f"StdlibCorpus({sum(len(f) for f in self.files.values())} files, vocab {self.vocab_size}, {sizes})"


CORPUS_NAMES = ("pydoc", "stdlib")


def load_corpus(name: str = "pydoc", **kw) -> CharCorpus:
    """A corpus by name: ``"pydoc"`` (``CharCorpus()``, chapter 1) or ``"stdlib"`` (``StdlibCorpus``, chapter 10).

    ``kw`` go to the corpus class (``root=`` for ``"stdlib"``, ``val_fraction=`` for ``"pydoc"``).
    """
    if not isinstance(name, str):
        raise TypeError(f"corpus name must be a str, got {type(name).__name__}")
    if name == "pydoc":
        return CharCorpus(**kw)
    if name == "stdlib":
        return StdlibCorpus(**kw)
    raise ValueError(f"unknown corpus {name!r}; expected one of {CORPUS_NAMES}")
