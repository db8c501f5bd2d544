"""Exercise checkers: a learner's function goes in, a precise message comes out.

Every checker runs the learner's function and a reference on the same small,
hand-picked cases and reports the *first* thing that is wrong: an exception,
a wrong type, a wrong shape, a wrong dtype, or the first entry that differs,
with the case that showed it. Known mistakes (a transposed matrix, a natural
log where base 2 was asked for, ...) get a hint of their own.

    result = seqlab.check.bigram_counts(my_bigram_counts)
    result            # shows "✓ ..." or "✗ ..." with what to fix
    assert result     # truthy only when every case agrees

Each chapter adds its checkers here, next to the reference solution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


@dataclass(frozen=True)
class Result:
    """The verdict of a checker: ``ok`` and a message for the learner."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return ("✓ " if self.ok else "✗ ") + self.message

    def _repr_markdown_(self) -> str:
        return ("✅ " if self.ok else "❌ ") + self.message


@dataclass(frozen=True)
class Case:
    """Arguments for one call, and a short description shown when it fails."""

    args: tuple
    describe: str


Hint = tuple[Callable[[torch.Tensor], torch.Tensor], str]


def compare(
    name: str,
    learner: Callable,
    reference: Callable,
    cases: Sequence[Case],
    *,
    hints: Sequence[Hint] = (),
    mistakes: Sequence[tuple[Callable, str]] = (),
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> Result:
    """Run ``learner`` and ``reference`` on every case; report the first disagreement.

    Tensors are compared by value (an integer and a float tensor holding the
    same numbers agree).

    A hint ``(transform, message)`` is shown when the learner's output equals
    ``transform(reference output)``: the signature of a known mistake. A
    mistake ``(wrong_function, message)`` is shown when it equals
    ``wrong_function(*case.args)``: a known wrong implementation.
    """
    if not callable(learner):
        return Result(False, f"{name}: expected a function, got {type(learner).__name__}")
    for case in cases:
        want = reference(*case.args)
        try:
            got = learner(*case.args)
        except NotImplementedError:
            return Result(False, f"{name}: not implemented yet (it raised NotImplementedError)")
        except Exception as err:  # the learner's bug, reported rather than raised
            return Result(False, f"{name} raised {type(err).__name__}: {err} — on {case.describe}")
        if isinstance(want, torch.Tensor):
            if not isinstance(got, torch.Tensor):
                return Result(False, f"{name} should return a torch.Tensor, returned {type(got).__name__} — on {case.describe}")
            if got.shape != want.shape:
                return Result(False, f"{name} returned shape {tuple(got.shape)}, expected {tuple(want.shape)} — on {case.describe}")
            got64, want64 = got.detach().double(), want.double()
            if torch.allclose(got64, want64, rtol=rtol, atol=atol, equal_nan=True):
                continue
            suspects = [(lambda t=t: t(want), m) for t, m in hints] + [(lambda w=w: w(*case.args), m) for w, m in mistakes]
            for wrong, message in suspects:
                try:
                    if torch.allclose(got64, wrong().double(), rtol=rtol, atol=atol):
                        return Result(False, f"{name}: {message} — on {case.describe}")
                except (RuntimeError, ValueError, TypeError):
                    pass
            diff = (got64 - want64).abs()
            idx = tuple(int(i) for i in torch.nonzero(~(diff <= atol + rtol * want64.abs()))[0])
            return Result(
                False,
                f"{name} differs at index {idx}: got {got[idx].item():.6g}, expected {want[idx].item():.6g} — on {case.describe}",
            )
        else:
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                return Result(False, f"{name} should return a number, returned {type(got).__name__} — on {case.describe}")
            if not math.isclose(got, want, rel_tol=rtol, abs_tol=atol):
                for transform, message in hints:
                    if math.isclose(got, transform(want), rel_tol=rtol, abs_tol=atol):
                        return Result(False, f"{name}: {message} — on {case.describe}")
                return Result(False, f"{name} returned {got:.6g}, expected {want:.6g} — on {case.describe}")
    return Result(True, f"{name}: all {len(cases)} cases agree with the reference")


# --- chapter 1 ---------------------------------------------------------------


def _bigram_counts_reference(ids: torch.Tensor, V: int) -> torch.Tensor:
    counts = torch.zeros(V, V, dtype=torch.long)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.long), accumulate=True)
    return counts


def bigram_counts(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Result:
    """Chapter 1: ``fn(ids, V)`` must return the ``(V, V)`` matrix ``C[a, b]`` = number of times ``b`` follows ``a``."""
    cases = [
        Case((torch.tensor([0, 1, 0, 1, 1]), 2), "ids=[0, 1, 0, 1, 1], V=2"),
        Case((torch.tensor([2, 2, 2]), 3), "ids=[2, 2, 2], V=3 (a repeated symbol)"),
        Case((torch.tensor([0]), 4), "ids=[0], V=4 (a single symbol: no pairs)"),
        Case((torch.tensor([3, 0, 2, 1, 3, 0]), 5), "ids=[3, 0, 2, 1, 3, 0], V=5 (symbol 4 never appears)"),
    ]
    hints = [
        (lambda c: c.T, "the matrix is transposed: row a, column b should count b following a"),
        (lambda c: c / c.sum(dim=1, keepdim=True).clamp(min=1), "these are probabilities; the exercise asks for counts"),
    ]
    return compare("bigram_counts", fn, _bigram_counts_reference, cases, hints=hints)


def _bits_per_char_reference(probs: torch.Tensor, targets: torch.Tensor) -> float:
    return (-torch.log2(probs[torch.arange(len(targets)), targets])).mean().item()


def bits_per_char(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> Result:
    """Chapter 1: ``fn(probs, targets)`` must return the mean of ``-log2 p(target)`` as a float.

    ``probs`` is ``(N, V)`` (each row a distribution over the next character),
    ``targets`` is ``(N,)``.
    """
    cases = [
        Case((torch.full((4, 2), 0.5), torch.tensor([0, 1, 1, 0])), "a fair coin: 1 bit per symbol"),
        Case((torch.tensor([[0.25, 0.75], [0.9, 0.1]]), torch.tensor([1, 0])), "two predictions, both fairly right"),
        Case((torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]), torch.tensor([2, 0, 1])), "three predictions, all wrong"),
    ]
    hints = [
        (lambda b: b * math.log(2), "that is in nats: use log base 2 for bits"),
        (lambda b: -b, "the sign is flipped: bits are -log2 p"),
    ]
    return compare("bits_per_char", fn, _bits_per_char_reference, cases, hints=hints)


# --- chapter 4 ---------------------------------------------------------------


def _gru_step_reference(x_t, h_prev, W_x, W_h, b_x, b_h, *, swap_z=False, bias_outside=False, reset_first=False, gate_order="rzn"):
    H = h_prev.shape[-1]
    gx = x_t @ W_x.T + b_x  # (B, 3H)
    gh = h_prev @ W_h.T + b_h  # (B, 3H)
    blocks = {k: slice(i * H, (i + 1) * H) for i, k in enumerate(gate_order)}
    r = torch.sigmoid(gx[:, blocks["r"]] + gh[:, blocks["r"]])
    z = torch.sigmoid(gx[:, blocks["z"]] + gh[:, blocks["z"]])
    W_hn, b_hn = W_h[blocks["n"]], b_h[blocks["n"]]
    if reset_first:
        recurrent = (r * h_prev) @ W_hn.T + b_hn
    elif bias_outside:
        recurrent = r * (h_prev @ W_hn.T) + b_hn
    else:
        recurrent = r * gh[:, blocks["n"]]
    n = torch.tanh(gx[:, blocks["n"]] + recurrent)
    return z * n + (1 - z) * h_prev if swap_z else (1 - z) * n + z * h_prev


def gru_step(fn: Callable) -> Result:
    """Chapter 4: ``fn(x_t, h_prev, W_x, W_h, b_x, b_h)`` must return h_t of a GRU, in PyTorch's convention.

    Weights are stacked in the order [r, z, n]: ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x``, ``b_h`` (3H,).
    r_t = sigma(W_xr x_t + b_xr + W_hr h_{t-1} + b_hr), z_t likewise,
    n_t = tanh(W_xn x_t + b_xn + r_t * (W_hn h_{t-1} + b_hn)), h_t = (1 - z_t) * n_t + z_t * h_{t-1}.
    """
    g = torch.Generator().manual_seed(4)

    def case(B, D, H, describe):
        args = (torch.randn(B, D, generator=g), torch.randn(B, H, generator=g), torch.randn(3 * H, D, generator=g) * 0.5,
                torch.randn(3 * H, H, generator=g) * 0.5, torch.randn(3 * H, generator=g), torch.randn(3 * H, generator=g))
        return Case(args, describe)

    cases = [case(2, 3, 4, "B=2, D=3, H=4"), case(1, 5, 2, "B=1, D=5, H=2 (input wider than the state)")]
    mistakes = [
        (lambda *a: _gru_step_reference(*a, swap_z=True), "z and 1 - z are swapped: h_t = (1 - z_t) * n_t + z_t * h_{t-1} (z_t near 1 keeps the old state)"),
        (lambda *a: _gru_step_reference(*a, bias_outside=True), "the reset gate must multiply (W_hn h_{t-1} + b_hn), bias included"),
        (lambda *a: _gru_step_reference(*a, reset_first=True), "that resets h_{t-1} before the matrix (Cho et al.'s original); PyTorch applies r_t after it: r_t * (W_hn h_{t-1} + b_hn)"),
        (lambda *a: _gru_step_reference(*a, gate_order="zrn"), "the gates are read in the wrong order: the stacked rows are [r, z, n]"),
    ]
    return compare("gru_step", fn, _gru_step_reference, cases, mistakes=mistakes)


# --- chapter 2 ---------------------------------------------------------------


def _rnn_step_reference(x_t, h_prev, W_xh, b_xh, W_hh, b_hh):
    return torch.tanh(x_t @ W_xh.T + b_xh + h_prev @ W_hh.T + b_hh)


_RNN_STEP_MISTAKES = [
    (lambda x, h, Wx, bx, Wh, bh: x @ Wx.T + bx + h @ Wh.T + bh,
     "no nonlinearity: apply tanh to W_xh x_t + b_xh + W_hh h_{t-1} + b_hh"),
    (lambda x, h, Wx, bx, Wh, bh: torch.sigmoid(x @ Wx.T + bx + h @ Wh.T + bh),
     "that is the logistic sigmoid; the Elman RNN step uses tanh"),
    (lambda x, h, Wx, bx, Wh, bh: torch.relu(x @ Wx.T + bx + h @ Wh.T + bh),
     "that is ReLU; the exercise asks for tanh"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx + bx + h @ Wh + bh),
     "the weights are transposed: with rows as batch items, h_t = tanh(x_t @ W_xh.T + b_xh + h_prev @ W_hh.T + b_hh)"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + h @ Wh + bh),
     "W_hh is transposed: the recurrent term is h_prev @ W_hh.T"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + bh),
     "the state h_{t-1} is ignored: without W_hh h_{t-1} there is no recurrence"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + h @ Wh.T),
     "b_hh is missing: PyTorch's RNN adds two biases, b_xh and b_hh"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + h @ Wh.T + bh),
     "b_xh is missing: PyTorch's RNN adds two biases, b_xh and b_hh"),
]


def _rnn_step_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)

    def make(B, D, H, zero_state=False):
        r = lambda *s: torch.randn(*s, generator=g)
        h = torch.zeros(B, H) if zero_state else r(B, H)
        return (r(B, D), h, r(H, D) * 0.5, r(H) * 0.5, r(H, H) * 0.5, r(H) * 0.5)

    return [
        Case(make(2, 3, 3), "B=2, input width D=3 = hidden width H=3"),
        Case(make(1, 4, 3), "B=1, D=4, H=3 (input width differs from hidden width)"),
        Case(make(5, 2, 6), "B=5, D=2, H=6"),
        Case(make(3, 3, 4, zero_state=True), "B=3, D=3, H=4, h_prev = 0 (the first step)"),
    ]


def rnn_step(fn: Callable) -> Result:
    """Chapter 2: ``fn(x_t, h_prev, W_xh, b_xh, W_hh, b_hh)`` must return ``h_t`` of shape ``(B, H)``.

    ``h_t = tanh(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh)`` for every row of the batch:
    ``x_t`` is ``(B, D)``, ``h_prev`` ``(B, H)``, ``W_xh`` ``(H, D)``, ``W_hh`` ``(H, H)``,
    the biases ``(H,)`` (the shapes of ``nn.RNN``'s parameters).
    """
    cases = _rnn_step_cases()
    result = compare("rnn_step", fn, _rnn_step_reference, cases)
    if result.ok or not callable(fn):
        return result
    for case in cases:  # name a known mistake when the learner's output matches one on the failing case
        want = _rnn_step_reference(*case.args)
        try:
            got = fn(*case.args)
        except Exception:
            return result
        if not isinstance(got, torch.Tensor):
            return result
        got = got.detach().double()
        if got.shape == want.shape and torch.allclose(got, want.double(), rtol=1e-5, atol=1e-6):
            continue
        if got.shape == want.T.shape and got.shape != want.shape:
            return Result(False, f"rnn_step returned shape {tuple(got.shape)} = (H, B): keep the batch in the rows, "
                                 f"h_t of shape (B, H) = {tuple(want.shape)} — on {case.describe}")
        for mistake, message in _RNN_STEP_MISTAKES:
            try:
                wrong = mistake(*case.args).double()
            except RuntimeError:  # e.g. a transposed weight that does not fit this case's shapes
                continue
            if wrong.shape == got.shape and torch.allclose(got, wrong, rtol=1e-5, atol=1e-6):
                return Result(False, f"rnn_step: {message} — on {case.describe}")
        return result
    return result


# --- chapter 3 ---------------------------------------------------------------


def _bptt_step_reference(g_t, delta_next, W_hh, h_t):
    return (g_t + delta_next @ W_hh) * (1 - h_t**2)  # (B, H): rows are batch items, so W_hh^T delta is delta @ W_hh


_BPTT_STEP_MISTAKES = [
    (lambda g, d, W, h: (g + d @ W.T) * (1 - h**2),
     "W_hh is applied untransposed: the error flows back through W_hh^T, which for row vectors (B, H) is delta_next @ W_hh"),
    (lambda g, d, W, h: (g + d @ W) * (1 - torch.tanh(h) ** 2),
     "h_t is already tanh(a_t): the derivative is 1 - h_t**2, not 1 - tanh(h_t)**2"),
    (lambda g, d, W, h: (g + d @ W) * (1 - h),
     "the derivative of tanh is 1 - h_t**2 (squared), not 1 - h_t"),
    (lambda g, d, W, h: g + d @ W,
     "the factor tanh'(a_t) = 1 - h_t**2 is missing: delta_t is dL/da_t, not dL/dh_t"),
    (lambda g, d, W, h: g + (d @ W) * (1 - h**2),
     "the factor (1 - h_t**2) must multiply the whole sum g_t + W_hh^T delta_{t+1}, not only the recurrent term"),
    (lambda g, d, W, h: g * (1 - h**2) + d @ W,
     "the factor (1 - h_t**2) must multiply the whole sum g_t + W_hh^T delta_{t+1}, not only g_t"),
    (lambda g, d, W, h: (d @ W) * (1 - h**2),
     "the direct gradient g_t from the loss at step t is missing"),
    (lambda g, d, W, h: g * (1 - h**2),
     "the error from later steps, W_hh^T delta_{t+1}, is missing: without it nothing flows back in time"),
]


def _bptt_step_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)

    def make(B, H, last=False, no_loss=False):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        g_t = torch.zeros(B, H, dtype=torch.float64) if no_loss else r(B, H)
        delta_next = torch.zeros(B, H, dtype=torch.float64) if last else r(B, H)
        h_t = torch.tanh(r(B, H))  # a state of a tanh RNN, in (-1, 1)
        return (g_t, delta_next, r(H, H) * 0.7, h_t)

    return [
        Case(make(2, 3), "B=2, H=3"),
        Case(make(1, 4), "B=1, H=4"),
        Case(make(3, 5, no_loss=True), "B=3, H=5, g_t = 0 (no loss term at this step)"),
        Case(make(2, 4, last=True), "B=2, H=4, delta_next = 0 (the last step, t = T)"),
    ]


def bptt_step(fn: Callable) -> Result:
    """Chapter 3: ``fn(g_t, delta_next, W_hh, h_t)`` must return one step of the BPTT recursion.

    ``delta_t = (g_t + W_hh^T delta_{t+1}) * (1 - h_t**2)`` for every row of the batch:
    ``g_t`` (B, H) is dL/dh_t from the loss at step t alone, ``delta_next`` (B, H) is
    delta_{t+1} = dL/da_{t+1}, ``W_hh`` (H, H), ``h_t`` (B, H) the state tanh(a_t).
    """
    cases = _bptt_step_cases()
    result = compare("bptt_step", fn, _bptt_step_reference, cases)
    if result.ok or not callable(fn):
        return result
    for case in cases:  # name a known mistake when the learner's output matches one on the first failing case
        want = _bptt_step_reference(*case.args)
        try:
            got = fn(*case.args)
        except Exception:
            return result
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return result
        got = got.detach().double()
        if torch.allclose(got, want, rtol=1e-5, atol=1e-6):
            continue
        for mistake, message in _BPTT_STEP_MISTAKES:
            if torch.allclose(got, mistake(*case.args), rtol=1e-5, atol=1e-6):
                return Result(False, f"bptt_step: {message} — on {case.describe}")
        return result
    return result


# --- chapter 6 ---------------------------------------------------------------


def _causal_attention_reference(q, k, v, *, scale="sqrt", mask="causal", renormalise=True, dim=-1):
    """softmax(q k^T / sqrt(d_k) + M) v with the causal mask M (key j > query i forbidden); variants for mistakes."""
    d_k, T = q.shape[-1], q.shape[-2]
    s = q @ k.transpose(-2, -1)  # (..., T, T)
    s = s / {"sqrt": math.sqrt(d_k), "d": d_k, "none": 1.0}[scale]
    allowed = {"causal": torch.ones(T, T, dtype=torch.bool).tril(), "strict": torch.ones(T, T, dtype=torch.bool).tril(-1),
               "upper": torch.ones(T, T, dtype=torch.bool).triu(), "none": torch.ones(T, T, dtype=torch.bool)}[mask]
    if renormalise:
        w = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=dim)
    else:  # the mask applied after the softmax: rows no longer sum to 1
        w = torch.softmax(s, dim=dim) * allowed
    return torch.nan_to_num(w) @ v  # (..., T, d_v)


def causal_attention(fn: Callable) -> Result:
    """Chapter 6: ``fn(q, k, v)`` must return causal scaled dot-product attention, ``softmax(q k^T / sqrt(d_k) + M) v``.

    ``q``, ``k`` (..., T, d_k) and ``v`` (..., T, d_v) share their leading dimensions; M is 0 where key
    j <= query i and -inf where j > i, so each position sees itself and the past only. Returns
    (..., T, d_v) (the output only, not the weights).
    """
    g = torch.Generator().manual_seed(6)

    def case(lead, T, d_k, d_v, describe, spread=1.0):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((r(*lead, T, d_k) * spread, r(*lead, T, d_k) * spread, r(*lead, T, d_v)), describe)

    cases = [case((2,), 5, 4, 3, "q, k (2, 5, 4), v (2, 5, 3)"),
             case((1, 2), 4, 16, 2, "q, k (1, 2, 4, 16), v (1, 2, 4, 2): batch and heads", spread=1.5),
             case((3,), 1, 2, 2, "T = 1: one position, which sees only itself")]
    variant = lambda **kw: (lambda q, k, v: _causal_attention_reference(q, k, v, **kw))
    mistakes = [
        (variant(mask="none"), "no mask: every position also sees the future (set the scores of keys j > i to -inf)"),
        (variant(mask="upper"), "the mask is the wrong triangle: query i may attend to keys j <= i (lower triangle, tril), not j >= i"),
        (variant(mask="strict"), "the diagonal is masked too: position i must see itself (j <= i, not j < i)"),
        (variant(renormalise=False), "the mask is applied after the softmax: set masked scores to -inf *before* it, so each row still sums to 1"),
        (variant(scale="none"), "the scores are not scaled: divide q k^T by sqrt(d_k)"),
        (variant(scale="d"), "the scores are divided by d_k; divide by sqrt(d_k)"),
        (variant(dim=-2), "the softmax runs over the queries (dim -2); it must run over the keys, the last dimension"),
    ]
    return compare("causal_attention", fn, _causal_attention_reference, cases, mistakes=mistakes)


# --- chapter 5 ---------------------------------------------------------------


def _additive_attention_reference(s, h, W_s, W_h, v, mask=None, *, tanh=True, softmax_dim=-1, mask_mode="before",
                                  values="h"):
    scores = (s @ W_s.T)[:, None] + h @ W_h.T  # (B, T, d_hidden)
    scores = (torch.tanh(scores) if tanh else scores) @ v  # (B, T)
    if mask is not None and mask_mode == "before":
        scores = scores.masked_fill(~mask, float("-inf"))
    a = torch.softmax(scores, dim=softmax_dim)  # (B, T)
    if mask is not None and mask_mode == "after":
        a = a * mask  # zeroed but not renormalised
    memory = h if values == "h" else h @ W_h.T
    return (a[:, None] @ memory)[:, 0], a  # c (B, d_key), a (B, T)


def _additive_attention_parts(**kw):
    return lambda *args: _additive_attention_reference(*args, **kw)


_ADDITIVE_MISTAKES = [
    (dict(tanh=False), "the tanh is missing: score(s, h_j) = v^T tanh(W_s s + W_h h_j); without it v^T W_s s is the "
                       "same for every j and cancels in the softmax, so the weights ignore the decoder state"),
    (dict(softmax_dim=0), "the softmax runs over the batch; the weights of one decoder step must sum to 1 over the "
                          "source positions j (the last dimension)"),
    (dict(mask_mode="after"), "the mask is applied after the softmax: set the scores of padded positions to -inf "
                              "before it, so the weights of the real positions still sum to 1"),
    (dict(mask_mode="none"), "the mask is ignored: padded source positions (mask False) must get weight 0"),
    (dict(values="Wh"), "the context must be a weighted sum of the encoder states h_j themselves, not of W_h h_j"),
]


def _additive_attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)

    def make(B, T, d_query, d_key, d_hidden, lengths=None):
        mask = None if lengths is None else torch.arange(T)[None] < torch.tensor(lengths)[:, None]  # (B, T)
        return (r(B, d_query), r(B, T, d_key), r(d_hidden, d_query), r(d_hidden, d_key), r(d_hidden), mask)

    return [
        Case(make(2, 5, 3, 4, 6), "B=2, T=5, d_query=3, d_key=4, d_hidden=6, no mask"),
        Case(make(1, 1, 2, 3, 4), "B=1, T=1 (a single source position: its weight is 1)"),
        Case(make(3, 6, 4, 4, 5, lengths=[6, 2, 4]), "B=3, T=6, a padding mask with lengths [6, 2, 4]"),
    ]


def additive_attention(fn: Callable) -> Result:
    """Chapter 5: ``fn(s, h, W_s, W_h, v, mask)`` must return ``(c, a)`` of Bahdanau's additive attention.

    ``s`` (B, d_query) is the decoder state, ``h`` (B, T, d_key) the encoder states,
    ``W_s`` (d_hidden, d_query), ``W_h`` (d_hidden, d_key), ``v`` (d_hidden,), ``mask`` (B, T) bool
    (True = real position) or None. ``e_j = v^T tanh(W_s s + W_h h_j)``, ``a = softmax_j(e)`` with
    padded positions at weight 0, ``c = sum_j a_j h_j``: ``c`` is (B, d_key) and ``a`` (B, T).
    """
    if not callable(fn):
        return Result(False, f"additive_attention: expected a function, got {type(fn).__name__}")
    cases = _additive_attention_cases()
    for case in cases:
        try:
            out = fn(*case.args)
        except NotImplementedError:
            return Result(False, "additive_attention: not implemented yet (it raised NotImplementedError)")
        except Exception as err:
            return Result(False, f"additive_attention raised {type(err).__name__}: {err} — on {case.describe}")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return Result(False, f"additive_attention should return a pair (c, a): the context and the weights, "
                                 f"returned {type(out).__name__} — on {case.describe}")
        wrong_c = _additive_attention_reference(*case.args, values="Wh")[0]
        c = out[0]
        if isinstance(c, torch.Tensor) and c.shape == wrong_c.shape != case.args[1].shape[::2] and \
                torch.allclose(c.detach().double(), wrong_c.double(), rtol=1e-5, atol=1e-6):
            return Result(False, f"additive_attention (context c): {_ADDITIVE_MISTAKES[-1][1]} — on {case.describe}")
    reference = _additive_attention_parts()
    for part, index in (("weights a", 1), ("context c", 0)):
        mistakes = [(lambda *a, kw=kw, i=index: _additive_attention_parts(**kw)(*a)[i], m) for kw, m in _ADDITIVE_MISTAKES]
        result = compare(f"additive_attention ({part})", lambda *a, i=index: fn(*a)[i],
                         lambda *a, i=index: reference(*a)[i], cases, mistakes=mistakes)
        if not result:
            return result
    return Result(True, f"additive_attention: weights and context agree with the reference on all {len(cases)} cases")


# --- chapter 7 ---------------------------------------------------------------


def _pre_norm_block_reference(x, attn, ffn, norm1, norm2, *, form="pre"):
    """x <- x + attn(LN_1(x)); x <- x + FFN(LN_2(x)), and the classic wrong forms."""
    if form == "pre":
        x = x + attn(norm1(x))
        return x + ffn(norm2(x))
    if form == "post":
        x = norm1(x + attn(x))
        return norm2(x + ffn(x))
    if form == "no_residual":
        x = attn(norm1(x))
        return x + ffn(norm2(x))
    if form == "normalised_stream":  # the residual stream itself replaced by its normalisation
        x = norm1(x)
        x = x + attn(x)
        x = norm2(x)
        return x + ffn(x)
    if form == "parallel":  # GPT-J / PaLM style: both sublayers read the same input
        return x + attn(norm1(x)) + ffn(norm2(x))
    if form == "swapped_norms":
        x = x + attn(norm2(x))
        return x + ffn(norm1(x))
    raise ValueError(form)


def _pre_norm_block_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)

    def make(B, T, d, describe):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        W_a, W_1, W_2 = r(d, d) / math.sqrt(d), r(d, 2 * d) / math.sqrt(d), r(2 * d, d) / math.sqrt(2 * d)
        attn = lambda h, W=W_a: torch.tanh(h.cumsum(dim=-2) @ W)  # mixes positions, like attention would
        ffn = lambda h, W1=W_1, W2=W_2: torch.relu(h @ W1) @ W2
        norms = []
        for _ in range(2):  # two LayerNorms with different gains and biases, so swapping them shows
            gamma, beta = 1 + 0.5 * r(d), 0.5 * r(d)
            norms.append(lambda h, a=gamma, b=beta: torch.nn.functional.layer_norm(h, (h.shape[-1],), a, b))
        return Case((3 * r(B, T, d) + 1, attn, ffn, *norms), describe)

    return [make(2, 5, 8, "x (2, 5, 8)"), make(1, 1, 4, "x (1, 1, 4): one position"), make(3, 4, 6, "x (3, 4, 6)")]


def pre_norm_block(fn: Callable) -> Result:
    """Chapter 7: ``fn(x, attn, ffn, norm1, norm2)`` must return one Pre-Norm Transformer block.

    ``x`` (B, T, d) is the residual stream; ``attn`` and ``ffn`` are the two sublayers and
    ``norm1``, ``norm2`` their LayerNorms (functions of a (B, T, d) tensor). The block is
    ``x <- x + attn(norm1(x))`` then ``x <- x + ffn(norm2(x))``; it returns (B, T, d).
    """
    variant = lambda form: (lambda *a: _pre_norm_block_reference(*a, form=form))
    mistakes = [
        (variant("post"), "this is the Post-Norm block, LN(x + sublayer(x)); Pre-Norm normalises the sublayer's "
                          "input and adds its output to the un-normalised x"),
        (variant("no_residual"), "the first residual is missing: add attn(norm1(x)) to x, do not replace x with it"),
        (variant("normalised_stream"), "the residual stream itself is normalised (x = norm1(x) before adding): "
                                       "only the sublayer's input is normalised, x is carried on unchanged"),
        (variant("parallel"), "both sublayers read the block's input (the 'parallel' block of GPT-J/PaLM, a valid "
                              "variant but not this one): the FFN reads norm2 of x *after* the attention residual"),
        (variant("swapped_norms"), "norm1 and norm2 are swapped: norm1 goes before attn, norm2 before ffn"),
    ]
    return compare("pre_norm_block", fn, _pre_norm_block_reference, _pre_norm_block_cases(), mistakes=mistakes)


# --- chapter 9 ---------------------------------------------------------------


def _cached_attention_step_reference(q_t, k_t, v_t, K_cache, V_cache, *, append="end", attend="all", scale="sqrt",
                                     softmax_dim=-1):
    """One decoding step with a key/value cache: append (k_t, v_t) to the cache, then attend over all T + 1 keys."""
    if append == "end":
        K, V = torch.cat([K_cache, k_t], dim=-2), torch.cat([V_cache, v_t], dim=-2)  # (B, H, T + 1, d)
    else:  # "front": the new key first (same output, wrong cache order)
        K, V = torch.cat([k_t, K_cache], dim=-2), torch.cat([v_t, V_cache], dim=-2)
    K_att, V_att = (K_cache, V_cache) if attend == "past" else (K, V)  # "past": attends before appending
    d_k = q_t.shape[-1]
    s = q_t @ K_att.transpose(-2, -1) / {"sqrt": math.sqrt(d_k), "none": 1.0, "d": d_k}[scale]  # (B, H, 1, T_k)
    if attend == "first":  # a top-left causal mask: the single query (row 0) may see key 0 only
        s = s.masked_fill(torch.arange(s.shape[-1]) > 0, float("-inf"))
    w = torch.softmax(s, dim=softmax_dim)  # (B, H, 1, T_k)
    return w @ V_att, K, V  # (B, H, 1, d_v), (B, H, T + 1, d_k), (B, H, T + 1, d_v)


def _cached_attention_step_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)

    def make(B, H, T, d_k, d_v, describe, spread=1.0):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        return Case((r(B, H, 1, d_k) * spread, r(B, H, 1, d_k) * spread, r(B, H, 1, d_v),
                     r(B, H, T, d_k) * spread, r(B, H, T, d_v)), describe)

    return [make(2, 2, 5, 4, 4, "q_t, k_t, v_t (2, 2, 1, 4), a cache K, V (2, 2, 5, 4)"),
            make(1, 3, 7, 8, 3, "q_t, k_t (1, 3, 1, 8), v_t (1, 3, 1, 3), a cache of T = 7 (d_v = 3)", spread=1.5),
            make(2, 1, 0, 4, 4, "the first token: an empty cache, K and V of shape (2, 1, 0, 4)")]


def cached_attention_step(fn: Callable) -> Result:
    """Chapter 9: one decoding step of attention with a key/value cache.

    ``fn(q_t, k_t, v_t, K_cache, V_cache)`` gets the new token's query, key and value
    (B, H, 1, d_k), (B, H, 1, d_k), (B, H, 1, d_v) and the cache of the T earlier keys and
    values (B, H, T, d_k), (B, H, T, d_v) (T may be 0). It must append the new key and value at
    the end of the time dimension, then attend with the single query over all T + 1 keys:
    ``out = softmax(q_t K^T / sqrt(d_k)) V``. Returns ``(out (B, H, 1, d_v), K (B, H, T+1, d_k), V (B, H, T+1, d_v))``.
    """
    name = "cached_attention_step"
    if not callable(fn):
        return Result(False, f"{name}: expected a function, got {type(fn).__name__}")
    cases = _cached_attention_step_cases()
    for case in cases:
        try:
            got = fn(*case.args)
        except NotImplementedError:
            return Result(False, f"{name}: not implemented yet (it raised NotImplementedError)")
        except Exception as err:
            text = str(err)
            hint = ""
            if "Sizes of tensors must match" in text or "must match the size" in text or "size mismatch" in text:
                hint = (" — is the new key appended along the wrong dimension? The cache grows in time: "
                        "torch.cat([K_cache, k_t], dim=-2)")
            return Result(False, f"{name} raised {type(err).__name__}: {err}{hint} — on {case.describe}")
        if not isinstance(got, (tuple, list)) or len(got) != 3 or not all(isinstance(t, torch.Tensor) for t in got):
            return Result(False, f"{name} should return three tensors (out, K, V): the output and the updated cache, "
                                 f"returned {type(got).__name__} — on {case.describe}")
        want = _cached_attention_step_reference(*case.args)
        for part, i in (("K", 1), ("V", 2)):
            if got[i].shape != want[i].shape:
                old = case.args[3 + i - 1]
                if got[i].shape == old.shape:
                    why = f"the cache was returned unchanged: append the new {part.lower()}_t, so it holds T + 1 entries"
                elif got[i].dim() == want[i].dim() and got[i].shape[-2] != want[i].shape[-2]:
                    why = f"the new {part.lower()}_t is appended along the wrong dimension: time is dim -2 (B, H, T, d)"
                else:
                    why = f"{part} has shape {tuple(got[i].shape)}, expected {tuple(want[i].shape)} = (B, H, T + 1, d)"
                return Result(False, f"{name}: {why} — on {case.describe}")
    mistakes_cache = [(lambda *a, i=i: _cached_attention_step_reference(*a, append="front")[i],
                       "the new key and value are put in front of the cache; they belong at the end (position T), "
                       "so that position t of the cache is token t. (The output does not show it: attention "
                       "ignores the order of its keys, but positions and cropping rely on it.)") for i in (1, 2)]
    for part, i in (("K", 1), ("V", 2)):
        result = compare(f"{name} ({part})", lambda *a, i=i: fn(*a)[i],
                         lambda *a, i=i: _cached_attention_step_reference(*a)[i], cases, mistakes=[mistakes_cache[i - 1]])
        if not result:
            return result
    variant = lambda **kw: (lambda *a: _cached_attention_step_reference(*a, **kw)[0])
    mistakes = [
        (variant(attend="past"), "the query attends to the cache *before* the new key and value are appended: the "
                                 "token cannot see itself (append first, then attend over all T + 1 keys)"),
        (variant(attend="first"), "a causal mask blocks the cache: with one query and T + 1 keys, a top-left causal "
                                  "mask (is_causal=True, or tril of a (1, T+1) matrix) lets it see key 0 only; the "
                                  "newest token may see every cached key, so no mask is needed"),
        (variant(scale="none"), "the scores are not scaled: divide q_t K^T by sqrt(d_k)"),
        (variant(scale="d"), "the scores are divided by d_k; divide by sqrt(d_k)"),
        (variant(softmax_dim=-2), "the softmax runs over the queries (dim -2, of size 1): every weight becomes 1; "
                                  "it must run over the keys, the last dimension"),
    ]
    result = compare(f"{name} (out)", lambda *a: fn(*a)[0], variant(), cases, mistakes=mistakes)
    if not result:
        return result
    return Result(True, f"{name}: the output and the updated cache agree with the reference on all {len(cases)} cases")


# --- chapter 8 ---------------------------------------------------------------


def _apply_rope_reference(x, offset, *, base=10000.0, sign=1.0, pairing="interleaved", exponent=2.0, start=0):
    """Rotate pair i of position m by sign * m * base^(-exponent * i / d); variants name the classic mistakes.

    ``pairing="interleaved"`` pairs (x_{2i}, x_{2i+1}) (the exercise); ``"half"`` pairs (x_i, x_{i+d/2})
    (the "rotate_half" convention of GPT-NeoX and LLaMA). ``start`` is added to every position.
    """
    T, d = x.shape[-2], x.shape[-1]
    m = torch.arange(offset + start, offset + start + T, dtype=torch.float64)  # (T,)
    omega = base ** (-exponent * torch.arange(d // 2, dtype=torch.float64) / d)  # (d/2,)
    theta = sign * m[:, None] * omega[None]  # (T, d/2)
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)
    if pairing == "interleaved":
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, d/2)
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)  # (..., T, d)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, d)


def apply_rope(fn: Callable) -> Result:
    """Chapter 8: ``fn(x, offset)`` must return the rotary position embedding ``R_m x`` of every row of x.

    ``x`` (..., T, d), d even, holds queries or keys at positions ``m = offset .. offset + T - 1``.
    Pair i of position m, ``(x_{2i}, x_{2i+1})`` (interleaved), is rotated anticlockwise by
    ``theta = m * base^(-2i/d)`` with base 10000::

        (x_{2i}, x_{2i+1}) -> (x_{2i} cos theta - x_{2i+1} sin theta,  x_{2i} sin theta + x_{2i+1} cos theta)

    Returns a tensor of the shape of x.
    """
    g = torch.Generator().manual_seed(8)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)
    cases = [
        Case((r(5, 8), 0), "x (5, 8), offset 0: positions 0..4"),
        Case((r(2, 3, 4, 6), 0), "x (2, 3, 4, 6): batch and heads, offset 0"),
        Case((r(3, 8), 7), "x (3, 8), offset 7: positions 7..9 (e.g. new tokens after a cache of 7)"),
        Case((r(2, 1, 16), 20), "x (2, 1, 16), offset 20: one position, 20"),
    ]
    variant = lambda **kw: (lambda x, offset: _apply_rope_reference(x, offset, **kw))
    mistakes = [
        (variant(sign=-1.0), "the rotation goes the wrong way (the sign of sin is flipped): "
                             "x_{2i} cos - x_{2i+1} sin, then x_{2i} sin + x_{2i+1} cos"),
        (variant(pairing="half"), "this pairs x_i with x_{i+d/2} (the 'rotate_half' split used by GPT-NeoX and "
                                  "LLaMA): a different convention, equally valid, but not the one asked for here, "
                                  "which rotates the interleaved pairs (x_{2i}, x_{2i+1})"),
        (variant(pairing="half", sign=-1.0), "this pairs x_i with x_{i+d/2} ('rotate_half') and also rotates the "
                                             "wrong way; the exercise asks for interleaved pairs (x_{2i}, x_{2i+1})"),
        (variant(exponent=1.0), "the frequencies are base^(-i/d); pair i turns at base^(-2i/d) "
                                "(the exponent runs over the even dimensions 0, 2, 4, ...)"),
        (lambda x, offset: _apply_rope_reference(x, 0), "the offset is ignored: the rows are at positions "
                                                        "offset .. offset + T - 1, not 0 .. T - 1"),
        (variant(start=1), "positions start at offset + 1; the first row is at position offset "
                           "(with offset 0 it is not rotated at all)"),
    ]
    return compare("apply_rope", fn, lambda x, offset: _apply_rope_reference(x, offset), cases,
                   mistakes=mistakes, rtol=1e-4, atol=1e-5)
