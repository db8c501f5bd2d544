"""Count-based n-gram language models (chapter 1).

Notation: ``n`` the order (the model conditions on the previous ``n - 1``
symbols, the *context* ``c``), ``V`` the vocabulary size, ``N(c, x)`` how often
symbol ``x`` followed context ``c`` in the training text, ``N(c) = sum_x N(c, x)``
and ``T(c)`` the number of distinct symbols seen after ``c``.

Two ways to give unseen events some probability:

- add-k:        p(x | c) = (N(c, x) + k) / (N(c) + k V)
  (a context never seen in training gets the uniform distribution 1/V);
- Witten-Bell:  p(x | c) = lambda_c N(c, x) / N(c) + (1 - lambda_c) p(x | c'),
  lambda_c = N(c) / (N(c) + T(c)), where ``c'`` is ``c`` without its oldest
  symbol: the estimate backs off to ever shorter contexts, down to the uniform
  distribution (Witten & Bell, 1991).

Counting is vectorised: each context of ``j`` symbols is encoded as one
integer in base ``V`` and the counts are found with ``torch.unique``.
"""
from __future__ import annotations

import math

import torch

from .. import _validate as validate
from .sampling import sample_next

SMOOTHINGS = ("add-k", "witten-bell")


def context_codes(ids: torch.Tensor, n_ctx: int, V: int) -> torch.Tensor:
    """Base-``V`` code of every window of ``n_ctx`` consecutive symbols of ``ids`` (chapter 1).

    ``code[i] = sum_j ids[i + j] V^(n_ctx - 1 - j)``; shape ``(len(ids) - n_ctx + 1,)``.
    With ``n_ctx == 0`` (a unigram model) every code is 0.
    """
    T = len(ids) - n_ctx + 1
    code = torch.zeros(T, dtype=torch.long)
    for j in range(n_ctx):  # most significant digit first
        code = code * V + ids[j : j + T]
    return code


class _Counts:
    """``N(c, x)`` for every context of one length, as a sorted table."""

    def __init__(self, ids: torch.Tensor, n_ctx: int, V: int):
        ctx = context_codes(ids[:-1], n_ctx, V)  # context of each x_t, t >= n_ctx
        nxt = ids[n_ctx:]
        self.contexts, row = torch.unique(ctx, return_inverse=True)
        self.table = torch.zeros(len(self.contexts), V)
        self.table.index_put_((row, nxt), torch.ones(len(nxt)), accumulate=True)
        self.total = self.table.sum(dim=1)  # N(c)
        self.distinct = (self.table > 0).sum(dim=1).float()  # T(c)

    def find(self, ctx: torch.Tensor):
        """Row of each context code in the table, and whether it was seen at all."""
        pos = torch.searchsorted(self.contexts, ctx).clamp(max=len(self.contexts) - 1)
        return pos, self.contexts[pos] == ctx

    def rows(self, ctx: torch.Tensor) -> torch.Tensor:
        """Counts ``(len(ctx), V)`` for each context code; zeros for an unseen context."""
        pos, seen = self.find(ctx)
        return self.table[pos] * seen[:, None]

    def of(self, ctx: torch.Tensor, x: torch.Tensor):
        """``N(c, x)``, ``N(c)`` and ``T(c)`` for each pair: three tensors of shape ``(len(ctx),)``."""
        pos, seen = self.find(ctx)
        seen = seen.float()
        return self.table[pos, x] * seen, self.total[pos] * seen, self.distinct[pos] * seen


class NGramLM:
    """An order-``n`` character model: ``fit`` counts, ``log_prob`` scores, ``generate`` samples (chapter 1)."""

    def __init__(self, order: int, vocab_size: int, smoothing: str = "witten-bell", k: float = 0.01):
        validate.positive_int("order", order)
        validate.positive_int("vocab_size", vocab_size, minimum=2)
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
        validate.number("k", k, minimum=0, strict=True)  # add-k smoothing
        if vocab_size ** (order - 1) >= 2**62:
            raise ValueError(f"order {order} with vocab_size {vocab_size} overflows the int64 context code")
        self.order, self.V, self.smoothing, self.k = order, vocab_size, smoothing, float(k)
        self.counts: list[_Counts] | None = None  # counts[j]: contexts of j symbols

    def fit(self, ids: torch.Tensor) -> "NGramLM":
        """Count every (context, next symbol) pair of the 1-D sequence ``ids``.

        Witten-Bell needs the counts of every shorter context too; add-k only the longest.
        """
        validate.token_ids("ids", ids, self.V, ndim=1, min_length=self.order)
        lengths = range(self.order) if self.smoothing == "witten-bell" else [self.order - 1]
        self.counts = [_Counts(ids, j, self.V) if j in lengths else None for j in range(self.order)]
        return self

    def truncated(self, order: int) -> "NGramLM":
        """The order-``order`` model contained in a fitted Witten-Bell model (shares its counts, no refit)."""
        validate.positive_int("order", order)
        if self.counts is None or self.smoothing != "witten-bell":
            raise ValueError("truncated() needs a fitted Witten-Bell model (it keeps the counts of every shorter context)")
        if order > self.order:
            raise ValueError(f"order must be <= {self.order}, got {order}")
        lower = NGramLM(order, self.V, smoothing="witten-bell")
        lower.counts = self.counts[:order]
        return lower

    def probs(self, ctx: torch.Tensor) -> torch.Tensor:
        """``p(. | c)`` for a batch of codes of ``order - 1``-symbol contexts: shape ``(len(ctx), V)``.

        ``ctx`` is a 1-D integer tensor of codes in ``[0, V^(order-1))`` (``context_codes`` makes them).
        """
        validate.token_ids("ctx (context codes)", ctx, self.V ** (self.order - 1), ndim=1)
        return self._p(ctx, None)

    def _p(self, ctx: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        """``p(. | c)`` as ``(len(ctx), V)`` rows, or only ``p(x | c)`` as ``(len(ctx),)`` when ``x`` is given."""
        if self.counts is None:
            raise RuntimeError("call fit() before using the model")

        def counts(table: _Counts, codes: torch.Tensor):  # N(c, .), N(c), T(c)
            if x is not None:
                return table.of(codes, x)
            N = table.rows(codes)
            return N, N.sum(dim=1, keepdim=True), (N > 0).sum(dim=1, keepdim=True).float()

        if self.smoothing == "add-k":
            N, total, _ = counts(self.counts[-1], ctx)
            return (N + self.k) / (total + self.k * self.V)
        p = torch.full((len(ctx),) if x is not None else (len(ctx), self.V), 1.0 / self.V)
        for j in range(self.order):  # from the empty context to the full one
            N, total, distinct = counts(self.counts[j], ctx % self.V**j)  # the last j symbols of c
            lam = total / (total + distinct).clamp(min=1)  # 0 for an unseen context
            p = lam * N / total.clamp(min=1) + (1 - lam) * p
        return p

    def log_prob(self, ids: torch.Tensor, start: int | None = None) -> torch.Tensor:
        """``log2 p(x_t | x_{t-n+1..t-1})`` for ``t = start .. len(ids)-1`` (``start`` defaults to ``order - 1``).

        A ``start`` shared by models of several orders scores all of them on the same symbols.
        """
        validate.token_ids("ids", ids, self.V, ndim=1, min_length=self.order)
        start = self.order - 1 if start is None else validate.positive_int("start", start, minimum=self.order - 1)
        if start >= len(ids):
            raise ValueError(f"start must be < len(ids) = {len(ids)} so that at least one symbol is scored, got {start}")
        ctx = context_codes(ids[start - self.order + 1 : -1], self.order - 1, self.V)
        return torch.log2(self._p(ctx, ids[start:]))

    def bits_per_char(self, ids: torch.Tensor, start: int | None = None) -> float:
        """Mean of ``-log2 p(x_t | context)``: the cross-entropy in bits per character."""
        return -self.log_prob(ids, start).mean().item()

    def generate(self, prompt: torch.Tensor, length: int, temperature: float = 1.0, generator=None) -> torch.Tensor:
        """Extend ``prompt`` (1-D ids, at least ``order - 1`` long) by ``length`` sampled symbols.

        Each symbol is drawn by ``sample_next`` from ``softmax(log p(. | c) / temperature)``, i.e.
        ``p^(1/τ)`` renormalised, with τ the temperature; ``temperature=0`` takes the most likely symbol.
        """
        if self.counts is None:
            raise RuntimeError("call fit() before using the model")
        validate.token_ids("prompt", prompt, self.V, ndim=1)
        validate.positive_int("length", length)
        if len(prompt) < self.order - 1:
            raise ValueError(f"prompt must hold at least order-1 = {self.order - 1} symbols, got {len(prompt)}")
        out = prompt.tolist()
        for _ in range(length):
            code = 0
            for s in out[len(out) - self.order + 1 :] if self.order > 1 else []:
                code = code * self.V + s
            p = self.probs(torch.tensor([code]))[0]  # (V,), every entry > 0 (smoothed)
            out.append(int(sample_next(p.log(), temperature, generator)))
        return torch.tensor(out)

    def __repr__(self) -> str:
        fitted = f", {len(self.counts[-1].contexts):,} contexts" if self.counts is not None else ""
        return f"NGramLM(order={self.order}, V={self.V}, smoothing={self.smoothing!r}{fitted})"


def uniform_bits(V: int) -> float:
    """Bits per symbol of the uniform guess over ``V`` symbols: ``log2 V`` (chapter 1)."""
    validate.positive_int("V", V)
    return math.log2(V)


class _SparseCounts:
    """``N(c, x)``, ``N(c)`` and ``T(c)`` for every context of one length, kept sparse (chapter 10).

    The same counts as ``_Counts`` without its dense ``(contexts, V)`` table, which for a 5-gram
    of 10 million characters would take gigabytes: only the (context, symbol) pairs that occur
    are kept, as sorted base-``V`` codes ``c V + x``.
    """

    def __init__(self, ids: torch.Tensor, n_ctx: int, V: int):
        ctx = context_codes(ids[:-1], n_ctx, V)
        pair = ctx * V + ids[n_ctx:]
        self.pairs, self.pair_count = torch.unique(pair, return_counts=True)
        self.contexts, self.total = torch.unique(ctx, return_counts=True)
        _, self.distinct = torch.unique_consecutive(self.pairs // V, return_counts=True)  # T(c), same order as contexts
        self.V = V

    @staticmethod
    def _look(keys: torch.Tensor, values: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        return torch.where(keys[pos] == query, values[pos], torch.zeros((), dtype=values.dtype)).double()

    def of(self, ctx: torch.Tensor, x: torch.Tensor):
        """``N(c, x)``, ``N(c)`` and ``T(c)`` for each pair (zeros for an unseen context)."""
        return (self._look(self.pairs, self.pair_count, ctx * self.V + x), self._look(self.contexts, self.total, ctx),
                self._look(self.contexts, self.distinct, ctx))


def window_losses(train_ids: torch.Tensor, windows: torch.Tensor, V: int, max_order: int = 5) -> torch.Tensor:
    """Witten-Bell n-gram losses (nats) of every prediction in ``windows``, for orders 1 .. ``max_order`` (chapter 10).

    ``windows`` ``(n, T + 1)`` are scored as a neural model scores them: position ``t`` predicts
    ``windows[:, t + 1]`` from ``windows[:, :t + 1]`` only, so near a window's start an order-``k``
    model backs off to the context that exists (order ``min(k, t + 2)``). The counts come from
    ``train_ids`` (1-D) and are kept sparse. Returns ``(max_order, n, T)``; row ``k - 1`` is the
    order-``k`` model, with the same numbers as ``NGramLM(k, V).fit(train_ids).log_prob`` wherever
    the window holds a full context (tested).
    """
    validate.token_ids("train_ids", train_ids, V, ndim=1, min_length=max_order)
    validate.token_ids("windows", windows, V, ndim=2)
    validate.positive_int("max_order", max_order)
    if V ** max_order >= 2**62:
        raise ValueError(f"max_order {max_order} with V {V} overflows the int64 code")
    n, T = windows.shape[0], windows.shape[1] - 1
    if T < 1:
        raise ValueError(f"windows must hold at least 2 symbols each, got shape {tuple(windows.shape)}")
    x = windows[:, 1:]  # (n, T) targets
    t = torch.arange(T)
    p = torch.full((n, T), 1.0 / V, dtype=torch.float64)
    out = torch.empty(max_order, n, T, dtype=torch.float64)
    ctx = torch.zeros(n, T, dtype=torch.long)
    for j in range(max_order):  # j symbols of context: the order-(j + 1) model
        if j > 0:  # extend each context by one older symbol: c_j = x_{t-j+1..t}
            shift = windows[:, :-1].roll(j - 1, dims=1)  # windows[:, t - j + 1]
            ctx = ctx + shift * V ** (j - 1)
        counts = _SparseCounts(train_ids, j, V)
        N, total, distinct = counts.of(ctx.reshape(-1), x.reshape(-1))
        N, total, distinct = N.view(n, T), total.view(n, T), distinct.view(n, T)
        lam = total / (total + distinct).clamp(min=1)
        nxt = lam * N / total.clamp(min=1) + (1 - lam) * p
        p = torch.where((t >= j - 1)[None, :], nxt, p)  # positions without j symbols of context keep order j
        out[j] = -p.log()
    return out.float()
