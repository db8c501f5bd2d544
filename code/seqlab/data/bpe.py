"""Byte-pair encoding: subword tokens learned from a text (chapter 1).

Byte-pair encoding (BPE) builds a vocabulary bottom-up (Sennrich et al., 2016):
start from single characters, then repeatedly *merge* the most frequent pair
of adjacent tokens into a new token, until ``n_merges`` merges are done:

    vocabulary_0 = the characters of the text
    for m = 1 .. n_merges:
        (a, b) = the most frequent adjacent pair of tokens
        vocabulary_m = vocabulary_{m-1} + [a + b]
        replace every adjacent (a, b) by the new token a + b

As GPT-2 does, the text is first cut into words (a word keeps the space in
front of it) and no merge crosses a word boundary; since a word occurs many
times, pairs are counted once per distinct word, weighted by its frequency.
Encoding a new text applies the learned merges in the order they were learned
(the earliest merge first), so training and encoding agree. The "bytes" of the
name are characters here: the corpus is small and its alphabet is fixed.

Names: ``merges`` is the ordered list of pairs ``(a, b)``; ``vocab`` the list
of token strings (the alphabet first, then one token per merge), so a token's
id is its index in ``vocab``; ``ranks`` maps a pair to its merge's position.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import torch

from .. import _validate as validate

#: Words with the space in front of them, runs of punctuation, runs of whitespace.
WORD = re.compile(r" ?\w+| ?[^\w\s]+|\s+(?!\S)|\s+")


def split_words(text: str) -> list[str]:
    """Cut a text into the pieces BPE merges within (chapter 1); ``"".join`` of them is the text."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return WORD.findall(text)


def _merge_word(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """``word`` with every adjacent occurrence of ``pair`` (left to right) replaced by one token."""
    a, b = pair
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


class BytePairEncoder:
    """A subword tokenizer learned by byte-pair encoding (chapter 1).

    ``BytePairEncoder.train(text, n_merges)`` learns the merges; ``encode`` turns
    a text into a LongTensor of token ids, ``decode`` turns ids back into the text.
    """

    def __init__(self, alphabet, merges):
        alphabet = sorted(set(alphabet))
        if not alphabet or any(not isinstance(c, str) or len(c) != 1 for c in alphabet):
            raise ValueError("alphabet must be a non-empty collection of single characters")
        self.alphabet = alphabet
        self.merges: list[tuple[str, str]] = [tuple(p) for p in merges]
        self.vocab: list[str] = list(alphabet) + [a + b for a, b in self.merges]
        self.stoi: dict[str, int] = {}
        for i, s in enumerate(self.vocab):
            self.stoi.setdefault(s, i)                          # a string made twice keeps its first id
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}
        self._cache: dict[str, tuple[str, ...]] = {}

    @classmethod
    def train(cls, text: str, n_merges: int, alphabet=None) -> "BytePairEncoder":
        """Learn ``n_merges`` merges from ``text`` (fewer if no pair occurs twice).

        ``alphabet`` (default: the characters of ``text``) is the starting
        vocabulary; give the whole corpus's characters when training on a part.
        """
        validate.positive_int("n_merges", n_merges, minimum=0)
        words = Counter(split_words(text))
        if not words:
            raise ValueError("cannot train a byte-pair encoder on an empty text")
        alphabet = set(text) if alphabet is None else set(alphabet)
        if not set(text) <= alphabet:
            raise ValueError(f"characters of the text missing from the alphabet: {sorted(set(text) - alphabet)[:10]!r}")
        tokens = {w: tuple(w) for w in words}                  # each distinct word as its current tokens
        pairs, where = Counter(), defaultdict(set)             # pair -> weighted count; pair -> words holding it
        for w, n in words.items():
            for pair in zip(tokens[w], tokens[w][1:]):
                pairs[pair] += n
                where[pair].add(w)
        merges = []
        for _ in range(n_merges):
            if not pairs:
                break
            best = max(pairs, key=lambda p: (pairs[p], p))     # most frequent; ties broken the same way every run
            if pairs[best] < 2:
                break
            merges.append(best)
            for w in list(where[best]):                        # only the words that hold the pair change
                old, new = tokens[w], _merge_word(tokens[w], best)
                for pair in zip(old, old[1:]):
                    pairs[pair] -= words[w]
                    if pairs[pair] <= 0:
                        del pairs[pair]
                    where[pair].discard(w)
                for pair in zip(new, new[1:]):
                    pairs[pair] += words[w]
                    where[pair].add(w)
                tokens[w] = new
        return cls(alphabet, merges)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def tokenize(self, word: str) -> tuple[str, ...]:
        """One word as token strings: apply the learned merges, the earliest-learned first."""
        if word not in self._cache:
            unknown = set(word) - set(self.alphabet)
            if unknown:
                raise ValueError(f"characters not in the alphabet: {sorted(unknown)[:10]!r}")
            tokens = tuple(word)
            while len(tokens) > 1:
                pair = min(zip(tokens, tokens[1:]), key=lambda p: self.ranks.get(p, len(self.ranks)))
                if pair not in self.ranks:
                    break
                tokens = _merge_word(tokens, pair)
            self._cache[word] = tokens
        return self._cache[word]

    def encode(self, text: str) -> torch.Tensor:
        """Token ids of ``text``, a LongTensor of shape ``(n_tokens,)``."""
        return torch.tensor([self.stoi[t] for w in split_words(text) for t in self.tokenize(w)], dtype=torch.long)

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of token ids (tensor or list)."""
        if isinstance(ids, torch.Tensor):
            validate.tensor("ids", ids, ndim=1, dtype="long")
            ids = ids.tolist()
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids out of range [0, {self.vocab_size}): {bad[:10]}")
        return "".join(self.vocab[i] for i in ids)

    def __repr__(self) -> str:
        return f"BytePairEncoder(vocab_size={self.vocab_size}: {len(self.alphabet)} characters + {len(self.merges)} merges)"
