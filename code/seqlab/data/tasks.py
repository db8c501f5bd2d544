"""Synthetic benchmark tasks used throughout the book (introduced in chapter 1).

Every task is a small frozen dataclass with a seeded ``sample(batch_size,
generator)`` that returns ``(x, y)``:

- token tasks: ``x`` is a LongTensor ``(B, T)`` of input ids in
  ``[0, input_vocab)``; ``y`` is a LongTensor ``(B, T)`` of target classes in
  ``[0, n_classes)``, with ``IGNORE`` (-100, PyTorch's ``ignore_index``) at
  positions that are not scored. A model reads ``x`` left to right and must
  emit ``y[:, t]`` at step ``t``.
- the adding problem: ``x`` is a float tensor ``(B, T, 2)`` and ``y`` a float
  tensor ``(B,)``; the metric is mean squared error.
- the reversal task of chapter 5 (``ReverseTask``), for encoder-decoders: padded
  batches ``(src, tgt_in, tgt_out, lengths)``.

``task.chance`` is the score of the best guess that ignores the input (accuracy
for token tasks, MSE for the adding problem); ``memoryless_accuracy`` measures
what a model that sees only the current token achieves, which for every token
task here is chance: solving them takes memory.

Glossary (code name -> book notation): ``T`` sequence length, ``V`` vocabulary
of data symbols, ``lag`` the distance between a token and the step that must
recall it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _validate as validate
from ..config import make_generator

IGNORE = -100



def _randint(high: int, size: tuple[int, ...], g) -> torch.Tensor:
    return torch.randint(0, high, size, generator=g)


@dataclass(frozen=True)
class TokenTask:
    """Base class of the token tasks: validation and the shared interface (chapter 1)."""

    @property
    def chance(self) -> float:
        """Accuracy of a uniform guess over the possible targets."""
        return 1.0 / self.n_classes

    def sample(self, batch_size: int, generator: torch.Generator | int | None = None):
        """``(x, y)`` for a batch of ``batch_size`` sequences (see the module docstring)."""
        validate.positive_int("batch_size", batch_size)
        return self._sample(batch_size, make_generator(generator))


@dataclass(frozen=True)
class CopyTask(TokenTask):
    """Copy: read ``length`` random symbols, then reproduce them in order (chapter 1).

    ``x = s_1 .. s_L, M .. M`` (L copies of the marker ``M = V``);
    ``y`` is ignored for the first L steps and equals ``s_1 .. s_L`` after.
    """

    length: int = 10
    vocab: int = 8

    def __post_init__(self):
        validate.positive_int("length", self.length)
        validate.positive_int("vocab", self.vocab, minimum=2)

    input_vocab = property(lambda self: self.vocab + 1)
    n_classes = property(lambda self: self.vocab)
    marker = property(lambda self: self.vocab)

    def _sample(self, B, g):
        s = _randint(self.vocab, (B, self.length), g)
        x = torch.cat([s, torch.full_like(s, self.marker)], dim=1)  # (B, 2L)
        y = torch.cat([torch.full_like(s, IGNORE), s], dim=1)  # (B, 2L)
        return x, y


@dataclass(frozen=True)
class DelayedRecall(TokenTask):
    """Delayed recall: after ``lag`` more random symbols, output the first one (chapter 1).

    ``x = s_0 .. s_lag`` (``lag + 1`` random symbols); only the last step is
    scored, with target ``s_0``. The information must survive ``lag`` steps.
    """

    lag: int = 30
    vocab: int = 8

    def __post_init__(self):
        validate.positive_int("lag", self.lag)
        validate.positive_int("vocab", self.vocab, minimum=2)

    input_vocab = property(lambda self: self.vocab)
    n_classes = property(lambda self: self.vocab)

    def _sample(self, B, g):
        x = _randint(self.vocab, (B, self.lag + 1), g)  # (B, lag+1)
        y = torch.full_like(x, IGNORE)
        y[:, -1] = x[:, 0]
        return x, y


@dataclass(frozen=True)
class SelectiveCopy(TokenTask):
    """Selective copy (Gu & Dao, 2023): recall the data symbols scattered among noise (chapter 1).

    The first ``length`` steps hold ``n_data`` random symbols at random places,
    the rest is the noise symbol ``N = V``; then ``n_data`` markers ``M = V + 1``
    ask for the data symbols in their order of appearance.
    """

    n_data: int = 4
    length: int = 52
    vocab: int = 8

    def __post_init__(self):
        validate.positive_int("n_data", self.n_data)
        validate.positive_int("vocab", self.vocab, minimum=2)
        validate.positive_int("length", self.length)
        if self.length < self.n_data:
            raise ValueError(f"length must be >= n_data ({self.n_data}), got {self.length}")

    input_vocab = property(lambda self: self.vocab + 2)
    n_classes = property(lambda self: self.vocab)
    noise = property(lambda self: self.vocab)
    marker = property(lambda self: self.vocab + 1)

    def _sample(self, B, g):
        k, L = self.n_data, self.length
        data = _randint(self.vocab, (B, k), g)  # (B, k)
        # k distinct positions per row, in increasing order
        pos = torch.rand(B, L, generator=g).argsort(dim=1)[:, :k].sort(dim=1).values  # (B, k)
        body = torch.full((B, L), self.noise, dtype=torch.long)
        body.scatter_(1, pos, data)
        x = torch.cat([body, torch.full((B, k), self.marker, dtype=torch.long)], dim=1)  # (B, L+k)
        y = torch.cat([torch.full((B, L), IGNORE, dtype=torch.long), data], dim=1)
        return x, y


@dataclass(frozen=True)
class AssociativeRecall(TokenTask):
    """Multi-query associative recall (MQAR; Arora et al., 2023; chapter 1).

    ``n_pairs`` key-value pairs ``k_1 v_1 .. k_n v_n`` come first (keys are
    distinct, drawn from ``[0, V/2)``; values from ``[V/2, V)``); the remaining
    ``length - 2 n_pairs`` steps are queries, each a key from the pairs, and the
    target at a query is that key's value.
    """

    n_pairs: int = 8
    length: int = 64
    vocab: int = 256

    def __post_init__(self):
        validate.positive_int("n_pairs", self.n_pairs)
        validate.positive_int("vocab", self.vocab, minimum=2)
        validate.positive_int("length", self.length)
        if self.vocab % 2:
            raise ValueError(f"vocab must be even (keys and values take half each), got {self.vocab}")
        if self.n_pairs > self.vocab // 2:
            raise ValueError(f"n_pairs must be <= vocab/2 = {self.vocab // 2} (distinct keys), got {self.n_pairs}")
        if self.length <= 2 * self.n_pairs:
            raise ValueError(f"length must exceed 2*n_pairs = {2 * self.n_pairs} to leave room for queries, got {self.length}")

    input_vocab = property(lambda self: self.vocab)
    n_classes = property(lambda self: self.vocab)

    @property
    def chance(self) -> float:
        """A uniform guess among the ``V/2`` value symbols."""
        return 2.0 / self.vocab

    def _sample(self, B, g):
        n, half = self.n_pairs, self.vocab // 2
        keys = torch.rand(B, half, generator=g).argsort(dim=1)[:, :n]  # (B, n) distinct
        values = half + _randint(half, (B, n), g)  # (B, n)
        pairs = torch.stack([keys, values], dim=2).reshape(B, 2 * n)  # (B, 2n)
        which = _randint(n, (B, self.length - 2 * n), g)  # (B, Q) index of the queried pair
        queries = keys.gather(1, which)
        answers = values.gather(1, which)
        x = torch.cat([pairs, queries], dim=1)  # (B, length)
        y = torch.cat([torch.full_like(pairs, IGNORE), answers], dim=1)
        return x, y


@dataclass(frozen=True)
class RepeatedSequence(TokenTask):
    """Repeated random sequence, the induction-head task (Olsson et al., 2022; chapter 1).

    A random sequence ``s`` of ``length`` symbols is shown twice; the task is
    next-symbol prediction: ``x = (s, s)[:-1]``, ``y = (s, s)[1:]``. In the
    second half the next symbol can be copied from the first occurrence; in the
    first half it is random. ``score`` picks which targets count:
    ``"second"`` (from the first repeated symbol on), ``"first"`` or ``"all"``.
    """

    length: int = 32
    vocab: int = 16
    score: str = "second"

    def __post_init__(self):
        validate.positive_int("length", self.length, minimum=2)
        validate.positive_int("vocab", self.vocab, minimum=2)
        if self.score not in ("second", "first", "all"):
            raise ValueError(f"score must be 'second', 'first' or 'all', got {self.score!r}")

    input_vocab = property(lambda self: self.vocab)
    n_classes = property(lambda self: self.vocab)

    def _sample(self, B, g):
        L = self.length
        s = _randint(self.vocab, (B, L), g)
        full = torch.cat([s, s], dim=1)  # (B, 2L)
        x, y = full[:, :-1].clone(), full[:, 1:].clone()  # (B, 2L-1)
        # target at step t is full[t+1]; it is a repeat (predictable) for t >= L
        t = torch.arange(2 * L - 1)
        keep = {"second": t >= L, "first": t < L - 1, "all": torch.ones_like(t, dtype=torch.bool)}[self.score]
        y[:, ~keep] = IGNORE
        return x, y


@dataclass(frozen=True)
class SpanPositions:
    """Where ``RepeatedSpans`` put the repeated span in each row: all LongTensors of shape (B,) (chapter 11).

    ``first`` and ``second`` are the positions of the span's two occurrences in ``x``,
    ``length`` its length L; ``offset = second - first`` is the distance Δ between them.
    """

    first: torch.Tensor
    second: torch.Tensor
    length: torch.Tensor

    @property
    def offset(self) -> torch.Tensor:
        return self.second - self.first

    def target_masks(self, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(early, late)`` bool masks of shape (B, T) over the targets ``y[:, t]`` (chapter 11).

        ``late[b, t]`` is True where ``x[b, t]`` lies in the second occurrence and so does its
        next token: ``t`` in ``[second, second + L - 2]``, where the target can be copied from
        ``D`` positions back. ``early`` marks the same span positions in the first occurrence,
        ``t`` in ``[first, first + L - 2]``, where the same targets appear for the first time.
        """
        t = torch.arange(T)[None]  # (1, T)
        span = lambda start: (t >= start[:, None]) & (t <= (start + self.length - 2)[:, None])  # (B, T)
        return span(self.first), span(self.second)


@dataclass(frozen=True)
class RepeatedSpans(TokenTask):
    """A random span repeated once at a random place, among random tokens: the induction task (chapter 11).

    Each row of ``x`` (length ``length``) is random tokens from ``[0, vocab)``, except that a
    span ``s`` of ``L`` distinct tokens, with ``L`` drawn uniformly from ``[span_min, span_max]``,
    appears at a random position ``first`` and again at ``second = first + L + gap``, with the
    gap drawn from ``[0, gap_max]``. Because the span's length, its place and the distance
    ``D = second - first`` between the copies all vary, no fixed offset predicts the repeat:
    a model must find the earlier occurrence of the current token and read what followed it.
    The task is next-token prediction everywhere (``y[:, t] = x[:, t+1]``, the last target
    drawn like the rest), as in a language model: only the second copy is predictable.

    ``sample_with_positions`` also returns the ``SpanPositions``.
    """

    length: int = 64
    vocab: int = 64
    span_min: int = 6
    span_max: int = 20
    gap_max: int = 8

    def __post_init__(self):
        validate.positive_int("span_min", self.span_min, minimum=2)
        validate.positive_int("span_max", self.span_max, minimum=self.span_min)
        validate.positive_int("gap_max", self.gap_max, minimum=0)
        validate.positive_int("vocab", self.vocab, minimum=self.span_max)
        need = 2 * self.span_max + self.gap_max
        validate.positive_int("length", self.length, minimum=need)

    input_vocab = property(lambda self: self.vocab)
    n_classes = property(lambda self: self.vocab)

    def sample_with_positions(self, batch_size: int, generator: torch.Generator | int | None = None):
        """``(x (B, T), y (B, T), SpanPositions)``."""
        validate.positive_int("batch_size", batch_size)
        g, B, T = make_generator(generator), batch_size, self.length
        full = _randint(self.vocab, (B, T + 1), g)  # (B, T+1): random tokens; x = full[:, :-1]
        L = self.span_min + _randint(self.span_max - self.span_min + 1, (B,), g)  # (B,)
        gap = _randint(self.gap_max + 1, (B,), g)  # (B,)
        room = T - 2 * L - gap + 1  # first may be 0 .. T - 2L - gap
        first = (torch.rand(B, generator=g) * room).long()  # (B,)
        second = first + L + gap
        spans = torch.rand(B, self.vocab, generator=g).argsort(dim=1)[:, : self.span_max]  # (B, span_max): distinct
        t = torch.arange(self.span_max)[None]  # (1, span_max)
        for start in (first, second):
            where = (start[:, None] + t).clamp(max=T)  # (B, span_max)
            keep = t < L[:, None]
            rows = torch.arange(B)[:, None].expand_as(where)
            full[rows[keep], where[keep]] = spans[keep]
        return full[:, :-1].clone(), full[:, 1:].clone(), SpanPositions(first, second, L)

    def _sample(self, B, g):
        x, y, _ = self.sample_with_positions(B, g)
        return x, y


@dataclass(frozen=True)
class MarkerOrder(TokenTask):
    """Which marker comes first? A task that needs order and nothing else (chapter 8).

    ``x`` has ``length`` tokens: ``length - 1`` random filler symbols from ``[0, V)``
    among which the two markers ``A = V`` and ``B = V + 1`` stand once each, at two
    distinct random places, then the query ``Q = V + 2``. Only the last step is
    scored: the target is 0 when A comes before B and 1 when B comes first.

    The two answers use the same tokens in a different order (``swapped(x)``
    exchanges the markers and so flips the label), so a model that sees the
    inputs as a set, such as self-attention with no positions and no causal
    mask, is at chance, 0.5, whatever it learns.
    """

    length: int = 16
    vocab: int = 8

    def __post_init__(self):
        validate.positive_int("length", self.length, minimum=3)
        validate.positive_int("vocab", self.vocab)

    input_vocab = property(lambda self: self.vocab + 3)
    n_classes = 2
    marker_a = property(lambda self: self.vocab)
    marker_b = property(lambda self: self.vocab + 1)
    query = property(lambda self: self.vocab + 2)

    def _sample(self, B, g):
        L = self.length
        x = _randint(self.vocab, (B, L), g)  # (B, L): fillers
        where = torch.rand(B, L - 1, generator=g).argsort(dim=1)[:, :2]  # (B, 2): distinct places for A and B
        rows = torch.arange(B)
        x[rows, where[:, 0]] = self.marker_a
        x[rows, where[:, 1]] = self.marker_b
        x[:, -1] = self.query
        y = torch.full_like(x, IGNORE)
        y[:, -1] = (where[:, 1] < where[:, 0]).long()  # 1: B comes first
        return x, y

    def swapped(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """``x`` with the markers A and B exchanged: the same multiset of tokens, the other answer.

        Returns ``x'``, or ``(x', y')`` with the scored targets flipped when ``y`` is given.
        """
        validate.tensor("x", x, ndim=2, dtype="long")
        a, b = self.marker_a, self.marker_b
        x2 = torch.where(x == a, b, torch.where(x == b, a, x))  # (B, L)
        if y is None:
            return x2
        validate.tensor("y", y, ndim=2, dtype="long")
        if y.shape != x.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        return x2, torch.where(y == IGNORE, y, 1 - y)


@dataclass(frozen=True)
class AddingProblem:
    """The adding problem (Hochreiter & Schmidhuber, 1997; chapter 1).

    ``x[:, t] = (u_t, m_t)`` with ``u_t ~ U(0, 1)`` and markers ``m_t = 1`` at one
    step in the first half and one in the second half (0 elsewhere); the target
    is the sum of the two marked values. Predicting the mean, 1, gives an MSE of
    Var(u_a + u_b) = 1/6: that is ``chance``.
    """

    length: int = 50

    def __post_init__(self):
        validate.positive_int("length", self.length, minimum=2)

    chance = 1.0 / 6.0

    def sample(self, batch_size: int, generator: torch.Generator | int | None = None):
        validate.positive_int("batch_size", batch_size)
        g = make_generator(generator)
        B, T = batch_size, self.length
        u = torch.rand(B, T, generator=g)
        half = T // 2
        a = _randint(half, (B,), g)
        b = half + _randint(T - half, (B,), g)
        m = torch.zeros(B, T)
        m[torch.arange(B), a] = 1.0
        m[torch.arange(B), b] = 1.0
        x = torch.stack([u, m], dim=2)  # (B, T, 2)
        y = (u * m).sum(dim=1)  # (B,)
        return x, y


@dataclass(frozen=True)
class ReverseTask:
    """Reverse a sequence (chapter 5): the source ``x_1..x_L`` maps to the target ``x_L..x_1, EOS``.

    Lengths L are uniform in [min_len, max_len]; symbols uniform in [0, vocab). Special
    ids follow the symbols: ``pad = vocab``, ``bos = vocab + 1``, ``eos = vocab + 2``, so a
    model needs ``n_tokens = vocab + 3`` ids. ``sample`` and ``make_batch`` return
    ``(src (B, max_len), tgt_in (B, max_len + 1), tgt_out (B, max_len + 1), lengths (B,))``:
    ``src`` and ``tgt_in`` are padded with ``pad``, ``tgt_out`` with ``IGNORE`` (-100, skipped by
    ``F.cross_entropy``); ``lengths`` are the source lengths L. The alignment is known:
    target step i (0-based, i < L) must read source position L - 1 - i (``alignment``).
    """

    min_len: int = 4
    max_len: int = 12
    vocab: int = 10

    def __post_init__(self):
        validate.positive_int("min_len", self.min_len)
        validate.positive_int("max_len", self.max_len)
        validate.positive_int("vocab", self.vocab, minimum=2)
        if self.min_len > self.max_len:
            raise ValueError(f"min_len must be <= max_len, got min_len={self.min_len} and max_len={self.max_len}")

    pad = property(lambda self: self.vocab)
    bos = property(lambda self: self.vocab + 1)
    eos = property(lambda self: self.vocab + 2)
    n_tokens = property(lambda self: self.vocab + 3)

    def sample(self, batch_size: int, generator: torch.Generator | int | None = None):
        """A random batch: ``(src, tgt_in, tgt_out, lengths)`` (see the class docstring)."""
        validate.positive_int("batch_size", batch_size)
        g = make_generator(generator)
        lengths = torch.randint(self.min_len, self.max_len + 1, (batch_size,), generator=g)  # (B,)
        symbols = torch.randint(0, self.vocab, (batch_size, self.max_len), generator=g)  # (B, S)
        return self._build(symbols, lengths)

    def make_batch(self, seqs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch for given source sequences, a list of lists of symbols: for worked examples."""
        if not isinstance(seqs, (list, tuple)) or not seqs:
            raise TypeError(f"seqs must be a non-empty list of lists of symbols, got {seqs!r}")
        symbols = torch.zeros(len(seqs), self.max_len, dtype=torch.long)
        for b, seq in enumerate(seqs):
            if not self.min_len <= len(seq) <= self.max_len:
                raise ValueError(f"seqs[{b}] must have a length in [{self.min_len}, {self.max_len}], got {len(seq)}")
            if any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < self.vocab for x in seq):
                raise ValueError(f"seqs[{b}] must hold ints in [0, {self.vocab}), got {list(seq)}")
            symbols[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return self._build(symbols, torch.tensor([len(s) for s in seqs]))

    def _build(self, symbols: torch.Tensor, lengths: torch.Tensor):
        B, S = symbols.shape
        pos = torch.arange(S)[None]  # (1, S)
        real = pos < lengths[:, None]  # (B, S)
        reversed_ = symbols.gather(1, (lengths[:, None] - 1 - pos).clamp(min=0))  # (B, S): x_L..x_1, then junk
        src = torch.where(real, symbols, self.pad)  # (B, S)
        tgt_in = torch.cat([torch.full((B, 1), self.bos), torch.where(real, reversed_, self.pad)], dim=1)  # (B, S+1)
        tgt_out = torch.cat([torch.where(real, reversed_, IGNORE), torch.full((B, 1), IGNORE)], dim=1)  # (B, S+1)
        tgt_out.scatter_(1, lengths[:, None], self.eos)  # EOS right after the last symbol
        return src, tgt_in, tgt_out, lengths

    def alignment(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B, max_len + 1): the source position that target step i should attend, L - 1 - i; IGNORE where none."""
        validate.tensor("lengths", lengths, ndim=1, dtype="long")
        i = torch.arange(self.max_len + 1, device=lengths.device)[None]  # (1, T)
        j = lengths[:, None] - 1 - i  # (B, T)
        return torch.where(j >= 0, j, IGNORE)


def memoryless_accuracy(task: TokenTask, n_fit: int = 2048, n_test: int = 2048, seed: int = 0,
                        with_se: bool = False) -> float | tuple[float, float]:
    """Accuracy of the best predictor that sees only the current input token (chapter 1).

    Fits the table ``argmax_y count(x_t, y_t)`` on ``n_fit`` sampled sequences
    and scores it on ``n_test`` fresh ones. A task that needs memory leaves
    such a predictor at chance.

    With ``with_se=True`` it returns ``(accuracy, standard error)``. The
    standard error treats each test *sequence* as one draw (the ratio
    estimator's, sqrt(sum_i (c_i - p k_i)^2) / sum_i k_i for c_i correct of
    k_i scored tokens in sequence i), because the scored tokens of one
    sequence need not be independent: associative recall asks the same key
    several times.
    """
    if not isinstance(task, TokenTask):
        raise TypeError(f"task must be a token task, got {type(task).__name__}")
    g = make_generator(seed)
    x, y = task.sample(n_fit, g)
    keep = y != IGNORE
    counts = torch.zeros(task.input_vocab, task.n_classes)
    counts.index_put_((x[keep], y[keep]), torch.ones(int(keep.sum())), accumulate=True)
    table = counts.argmax(dim=1)  # (input_vocab,)
    x, y = task.sample(n_test, g)
    keep = y != IGNORE
    accuracy = (table[x[keep]] == y[keep]).float().mean().item()
    if not with_se:
        return accuracy
    correct = ((table[x] == y) & keep).sum(dim=1).double()  # (n_test,): correct tokens per sequence
    scored = keep.sum(dim=1).double()  # (n_test,): scored tokens per sequence
    se = ((correct - accuracy * scored).pow(2).sum().sqrt() / scored.sum()).item()
    return accuracy, se
