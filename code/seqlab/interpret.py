"""Looking inside a trained Transformer: attention patterns, head scores and ablations (chapter 11).

Glossary, code name -> book notation:

    A              attention weights of one layer, shape (B, H, T, T): A[b, h, t, s] is how much
                   query position t of head h attends to key position s (rows sum to 1)
    first, second  where a repeated span starts, the first time and the second (``SpanPositions``)
    L, Δ           the span's length and the distance Δ = second - first between its two copies
    prefix matching    the induction pattern: a token t in the second copy attends to the token
                   *after* its earlier occurrence, key s = t - Δ + 1 (Olsson et al., 2022)
    previous token     a head that attends from t to s = t - 1
    OV circuit     what a head writes when it attends to a token: W_E W_V^h W_O^h W_U, shape (V, V)
    ICL score      in-context-learning score: loss late in the context minus loss early on
    z_h            head h's output before the output projection W_O (``head_outputs``); zero, mean and
                   resample ablation replace it by zeros, its batch mean, or its value on other sequences
    K-composition  a later head finding its keys through what an earlier head wrote (``ablate_path``)

Everything here reads a ``seqlab.models.GPT`` (chapter 7) from the outside: attention
weights are captured with forward hooks on each block's ``attn`` (the default, hand-written
attention path returns them), ``ablate_head`` replaces one head's output (zeros, its mean, or
its output on other sequences) with a hook on that layer's output projection, and
``ablate_path`` does so only on the head's direct path into a later layer's queries, keys or values. ``attention_only`` builds a GPT whose blocks have no
feed-forward network, the model of Elhage et al. (2021) and Olsson et al. (2022).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from . import _validate as validate
from .data.tasks import SpanPositions
from .models.transformer import GPT, GPTConfig


class _NoFeedForward(nn.Module):
    """Stands in for a block's FFN in an attention-only model: adds nothing to the residual stream."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)  # (B, T, d)


def attention_only(config: GPTConfig) -> GPT:
    """A ``GPT`` (chapter 7) whose blocks are attention only: ``x <- x + attn(LN(x))``, no FFN (chapter 11).

    Built as a ``GPT`` and then each block's feed-forward network (and the LayerNorm in
    front of it) replaced by one that returns zeros, so the residual stream is the
    embeddings plus the heads' outputs and nothing else.
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    if not config.norm_first:
        raise ValueError("attention_only needs a Pre-Norm GPTConfig (norm_first=True): with Post-Norm the LayerNorm "
                         "after the (removed) FFN would still act")
    model = GPT(config)
    for block in model.blocks:
        block.ffn, block.norm2 = _NoFeedForward(), nn.Identity()
    return model


def _check_forml(model) -> GPT:
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a seqlab.models.GPT, got {type(model).__name__}")
    return model


@torch.no_grad()
def attention_patterns(model: GPT, x: torch.Tensor, return_logits: bool = False):
    """The attention weights of every layer on ``x`` (B, T): a list of L tensors (B, H, T, T) (chapter 11).

    With ``return_logits=True``, also the logits (B, T, V) of the same forward pass: ``(patterns, logits)``.
    """
    _check_forml(model)
    found: list[torch.Tensor | None] = [None] * len(model.blocks)

    def keep(i):
        def hook(module, inputs, output):
            found[i] = module.last_weights
        return hook

    handles = [block.attn.register_forward_hook(keep(i)) for i, block in enumerate(model.blocks)]
    try:
        logits, _ = model(x)  # (B, T, V); a GPT returns (logits, cache)
    finally:
        for h in handles:
            h.remove()
    if any(w is None for w in found):
        raise RuntimeError("the attention layers returned no weights: attention_patterns needs the default, "
                           "hand-written attention path (not PyTorch's fused kernel)")
    if return_logits:
        return found, logits
    return found


def _check_weights(A) -> torch.Tensor:
    validate.tensor("A", A, ndim=4, dtype="float")
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be self-attention weights (B, H, T, T), got shape {tuple(A.shape)}")
    return A


def prefix_matching_score(A: torch.Tensor, positions: SpanPositions) -> torch.Tensor:
    """Each head's mean attention from a repeated token to the token after its earlier occurrence (chapter 11).

    For every row b and query position t of the second copy, ``second <= t <= second + L - 1``,
    the token ``x[t]`` occurred before at ``t - Δ`` (``Δ = second - first``, ``D`` in the code); the induction
    pattern attends to the token that *followed* it, key ``s = t - Δ + 1``::

        score_h = mean over (b, t) of A[b, h, t, t - Δ + 1]

    ``A`` is (B, H, T, T); returns (H,). A head attending to the earlier occurrence itself
    (``t - Δ``, a duplicate-token head) scores 0, as does one attending one token too far.
    Uniform causal attention scores about the mean of 1 / (t + 1).
    """
    _check_weights(A)
    if not isinstance(positions, SpanPositions):
        raise TypeError(f"positions must be a SpanPositions (from RepeatedSpans.sample_with_positions), "
                        f"got {type(positions).__name__}")
    B, H, T, _ = A.shape
    if positions.first.shape != (B,):
        raise ValueError(f"positions are for {positions.first.shape[0]} rows, A has B = {B}")
    if bool(((positions.second + positions.length) > T).any()):
        raise ValueError(f"a span ends after position T = {T} of A: positions do not belong to these weights")
    t = torch.arange(T, device=A.device)[None]  # (1, T)
    second, L, D = (v.to(A.device)[:, None] for v in (positions.second, positions.length, positions.offset))
    query = (t >= second) & (t < second + L)  # (B, T): the second copy
    key = (t - D + 1).clamp(0, T - 1)  # (B, T): the token after the earlier occurrence
    picked = A.gather(-1, key[:, None, :, None].expand(B, H, T, 1))[..., 0]  # (B, H, T)
    q = query[:, None].to(A.dtype)  # (B, 1, T)
    return (picked * q).sum(dim=(0, 2)) / q.sum(dim=(0, 2))  # (H,)


def previous_token_score(A: torch.Tensor) -> torch.Tensor:
    """Each head's mean attention from position t to t - 1, over t >= 1 (chapter 11). ``A`` (B, H, T, T) -> (H,)."""
    _check_weights(A)
    if A.shape[-1] < 2:
        raise ValueError(f"previous_token_score needs T >= 2, got T = {A.shape[-1]}")
    return A.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))  # diagonal: (B, H, T - 1) -> (H,)


def ov_circuits(model: GPT, layer: int) -> torch.Tensor:
    """The OV circuit of every head of ``layer``, token to logit: (H, V, V) (chapter 11).

    ``OV_h = W_E diag(gamma_1) W_V^h W_O^h diag(gamma_f) W_U`` (row-vector convention): row i is
    what head h adds to the logits when it attends to token i, read through the token embedding
    ``W_E``, the head's value and output maps and the unembedding ``W_U``. The LayerNorms enter
    through their gains gamma only (their centring and scaling are left out), so this is the
    direct path of Elhage et al. (2021), not the whole model.
    """
    _check_forml(model)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(model.blocks):
        raise ValueError(f"layer must be an int in [0, {len(model.blocks)}), got {layer!r}")
    if not model.config.norm_first:
        raise ValueError("ov_circuits reads the direct path of a Pre-Norm model (norm_first=True); a Post-Norm block "
                         "normalises after the residual sum, so its LayerNorm gains do not sit on that path")
    block, H = model.blocks[layer], model.config.n_heads
    d_head = model.config.d_model // H
    with torch.no_grad():
        W_E = model.embed.weight * block.norm1.weight  # (V, d): the block's LayerNorm gain gamma_1
        W_U = (model.head.weight * model.norm.weight).T  # (d, V): the final LayerNorm's gain gamma_f
        out = []
        for h in range(H):
            cols = slice(h * d_head, (h + 1) * d_head)
            W_V = block.attn.W_v.weight[cols].T  # (d, d_head)
            W_O = block.attn.W_o.weight[:, cols].T  # (d_head, d)
            out.append(W_E @ W_V @ W_O @ W_U)  # (V, V)
    return torch.stack(out)  # (H, V, V)


def copying_score(ov: torch.Tensor) -> torch.Tensor:
    """How much an OV circuit copies: ``sum_i lambda_i / sum_i |lambda_i|`` over its eigenvalues (chapter 11).

    ``ov`` is (V, V) or (H, V, V); returns a scalar or (H,) in [-1, 1]. A matrix that maps
    each token to itself (the identity, or any matrix with positive eigenvalues) scores 1;
    one that suppresses the token it sees scores -1 (Elhage et al., 2021).
    """
    validate.tensor("ov", ov, ndim=(2, 3), dtype="float")
    if ov.shape[-1] != ov.shape[-2]:
        raise ValueError(f"ov must be square (V, V) or (H, V, V), got shape {tuple(ov.shape)}")
    lam = torch.linalg.eigvals(ov.double())  # (..., V) complex
    return (lam.real.sum(-1) / lam.abs().sum(-1)).to(ov.dtype)


@torch.no_grad()
def token_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats) of every target: (B, T) (chapter 11). ``model(x)`` returns logits or a tuple starting with them."""
    validate.tensor("x", x, ndim=2, dtype="long")
    validate.tensor("y", y, ndim=2, dtype="long")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape (B, T), got {tuple(x.shape)} and {tuple(y.shape)}")
    out = model(x)
    logits = out[0] if isinstance(out, (tuple, list)) else out  # (B, T, V)
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (B, T)


def icl_score(loss: torch.Tensor, early, late) -> float:
    """In-context-learning score: mean loss late in the context minus mean loss early (chapter 11).

    Olsson et al. (2022) take the loss at token 500 minus the loss at token 50; negative means
    the model predicts better once it has more context. ``loss`` is per token, (B, T). ``early``
    and ``late`` are either two positions (ints: that column of ``loss``) or two bool masks
    (B, T) choosing the tokens to average, e.g. a repeated span's first and second copy.
    """
    validate.tensor("loss", loss, ndim=2, dtype="float")
    means = []
    for name, where in (("early", early), ("late", late)):
        if isinstance(where, int) and not isinstance(where, bool):
            if not -loss.shape[1] <= where < loss.shape[1]:
                raise ValueError(f"{name} = {where} is not a position of loss with T = {loss.shape[1]}")
            means.append(loss[:, where].mean())
        elif isinstance(where, torch.Tensor) and where.dtype == torch.bool:
            if where.shape != loss.shape:
                raise ValueError(f"the {name} mask must have loss's shape {tuple(loss.shape)}, got {tuple(where.shape)}")
            where = where.to(loss.device)
            if not where.any():
                raise ValueError(f"the {name} mask selects no token")
            means.append(loss[where].mean())
        else:
            raise TypeError(f"{name} must be a position (int) or a bool mask (B, T), got {type(where).__name__}")
    return (means[1] - means[0]).item()


def _check_layer_head(model: GPT, layer, head) -> int:
    """Validate a (layer, head) pair of ``model``; return d_head."""
    L, H = len(model.blocks), model.config.n_heads
    for name, value, n in (("layer", layer, L), ("head", head, H)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
            raise ValueError(f"{name} must be an int in [0, {n}), got {value!r}")
    return model.config.d_model // H


def _check_replacement(replacement, d_head: int):
    if replacement is None:
        return None
    validate.tensor("replacement", replacement, ndim=(1, 2, 3), dtype="float", last_dim=d_head)
    return replacement


@torch.no_grad()
def head_outputs(model: GPT, x: torch.Tensor, layer: int) -> torch.Tensor:
    """What every head of ``layer`` computes on ``x`` (B, T), before the output projection: (B, T, H, d_head) (chapter 11).

    ``z_h = A_h V_h``, the head's share of the concatenation that ``W_O`` projects into the residual
    stream. Its mean over a batch, ``head_outputs(...)[:, :, h].mean(0)`` (T, d_head), is the
    replacement of a *mean ablation*.
    """
    _check_forml(model)
    d_head = _check_layer_head(model, layer, 0)
    found = []
    handle = model.blocks[layer].attn.W_o.register_forward_pre_hook(lambda m, inputs: found.append(inputs[0]))
    try:
        model(x)
    finally:
        handle.remove()
    z = found[0]  # (B, T, H * d_head)
    return z.reshape(*z.shape[:-1], model.config.n_heads, d_head)


@contextmanager
def ablate_head(model: GPT, layer: int, head: int, replacement: torch.Tensor | None = None):
    """Within the ``with`` block, head ``head`` of ``layer`` writes ``replacement`` instead of its output (chapter 11).

    A forward pre-hook on the layer's output projection ``W_O`` overwrites that head's slice
    ``z[..., head * d_head : (head + 1) * d_head]`` of the concatenated head outputs (B, T, H * d_head)
    before they are projected and added to the residual stream; the other heads are untouched.
    ``replacement=None`` writes zeros (*zero ablation*); a tensor broadcastable to (B, T, d_head)
    writes that, e.g. the head's mean output over a batch, (T, d_head) (*mean ablation*), or its
    output on other sequences, (B, T, d_head) (*resample ablation*). The hook is removed on leaving.
    """
    _check_forml(model)
    d_head = _check_layer_head(model, layer, head)
    replacement = _check_replacement(replacement, d_head)
    cols = slice(head * d_head, (head + 1) * d_head)

    def replace_head(module, inputs):
        z = inputs[0].clone()  # (B, T, H * d_head)
        z[..., cols] = 0.0 if replacement is None else replacement.to(z.dtype).expand_as(z[..., cols])
        return (z,)

    handle = model.blocks[layer].attn.W_o.register_forward_pre_hook(replace_head)
    try:
        yield model
    finally:
        handle.remove()


@contextmanager
def ablate_path(model: GPT, source, target_layer: int, into: str | tuple[str, ...] = "k", replacement=None):
    """Ablate heads' outputs only on their direct path into a later layer's queries, keys or values (chapter 11).

    ``source`` is one ``(layer, head)`` or a list of them. Inside the block, the residual stream
    that layer ``target_layer`` reads for the projections named by ``into`` (any of ``"q"``,
    ``"k"``, ``"v"``) is the real stream with each source head's contribution ``z_h W_O^h``
    replaced by ``r_h W_O^h``::

        x_target' = x_target + sum over sources of (r_h - z_h) W_O^h,     K = LN_1(x_target') W_K   (into = "k")

    ``replacement`` is ``None`` (``r_h = 0``, zero ablation), one tensor broadcastable to
    (B, T, d_head) for every source (e.g. a mean output, see ``ablate_head``), or a list with one
    such tensor (or ``None``) per source. Everything else (the other projections of the target
    layer, the layers in between, the heads' direct paths to the logits) sees the intact stream.
    ``into="k"`` tests *K-composition* (Elhage et al., 2021): whether the later layer finds its
    keys through what the source heads wrote. Needs a Pre-Norm model, where each block reads
    ``LN_1`` of the stream.
    """
    _check_forml(model)
    if not model.config.norm_first:
        raise ValueError("ablate_path needs a Pre-Norm GPT (norm_first=True), where a block reads LN_1 of the stream")
    sources = [source] if isinstance(source, tuple) else source
    if not isinstance(sources, list) or not sources or not all(isinstance(p, tuple) and len(p) == 2 for p in sources):
        raise TypeError(f"source must be a (layer, head) tuple or a non-empty list of them, got {source!r}")
    replacements = replacement if isinstance(replacement, list) else [replacement] * len(sources)
    if len(replacements) != len(sources):
        raise ValueError(f"replacement must have one entry per source ({len(sources)}), got {len(replacements)}")
    d_head = 0
    for (layer, head), r in zip(sources, replacements):
        d_head = _check_layer_head(model, layer, head)
        _check_replacement(r, d_head)
        if isinstance(target_layer, bool) or not isinstance(target_layer, int) or not layer < target_layer < len(model.blocks):
            raise ValueError(f"target_layer must be an int in ({layer}, {len(model.blocks)}): a layer above the source, "
                             f"got {target_layer!r}")
    into = (into,) if isinstance(into, str) else tuple(into)
    if not into or any(p not in ("q", "k", "v") for p in into):
        raise ValueError(f"into must name projections among 'q', 'k', 'v', got {into!r}")
    block = model.blocks[target_layer]
    deltas: dict[int, torch.Tensor] = {}
    saved = {}

    def keep_delta(i, layer, head, r):
        cols = slice(head * d_head, (head + 1) * d_head)
        W_o = model.blocks[layer].attn.W_o

        def hook(module, inputs):
            z = inputs[0][..., cols]  # (B, T, d_head)
            new = torch.zeros_like(z) if r is None else r.to(z.dtype).expand_as(z)
            deltas[i] = (new - z) @ W_o.weight[:, cols].T  # (B, T, d): the change of the head's write
        return W_o.register_forward_pre_hook(hook)

    def keep_stream(module, inputs):
        saved["x"] = inputs[0]  # (B, T, d): the stream the target block reads

    def patched(module, inputs):
        return (block.norm1(saved["x"] + sum(deltas.values())),)

    handles = [keep_delta(i, l, h, r) for i, ((l, h), r) in enumerate(zip(sources, replacements))]
    handles.append(block.register_forward_pre_hook(keep_stream))
    handles += [getattr(block.attn, f"W_{p}").register_forward_pre_hook(patched) for p in into]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def exact_match(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> float:
    """The share of rows whose every target under ``mask`` (B, T) is the model's top prediction (chapter 11).

    All-or-nothing over a row's masked targets (e.g. a whole repeated span): the kind of metric
    that Schaeffer et al. (2023) show can turn a smooth per-token improvement into a jump.
    Rows with no masked target are left out.
    """
    validate.tensor("x", x, ndim=2, dtype="long")
    validate.tensor("y", y, ndim=2, dtype="long")
    if x.shape != y.shape or not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != x.shape:
        raise ValueError(f"x, y and a bool mask must share one shape (B, T), got {tuple(x.shape)}, {tuple(y.shape)} "
                         f"and {getattr(mask, 'shape', type(mask).__name__)}")
    out = model(x)
    return _exact(out[0] if isinstance(out, (tuple, list)) else out, y, mask)


def _exact(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> float:
    mask = mask.to(y.device)
    right = (logits.argmax(-1) == y) | ~mask  # (B, T): True where right or not scored
    rows = mask.any(dim=1)
    if not rows.any():
        raise ValueError("the mask selects no target")
    return right.all(dim=1)[rows].float().mean().item()


def first_crossing(steps, values, threshold: float) -> int | None:
    """The first step at which ``values`` reaches ``threshold`` (None if it never does) (chapter 11)."""
    if len(steps) != len(values):
        raise ValueError(f"steps and values must have the same length, got {len(steps)} and {len(values)}")
    for s, v in zip(steps, values):
        if v >= threshold:
            return s
    return None


def steepest_drop(steps, values, window: int = 3) -> int:
    """The step at which ``values`` (e.g. a loss) falls fastest, after a running mean over ``window`` points (chapter 11).

    Returns the step in the middle of the interval with the most negative difference.
    """
    if len(steps) != len(values) or len(steps) < window + 1:
        raise ValueError(f"need equally long steps and values with more than window = {window} points, "
                         f"got {len(steps)} and {len(values)}")
    v = torch.tensor(values, dtype=torch.float64)
    smooth = v.unfold(0, window, 1).mean(dim=1)  # (n - window + 1,)
    i = int(torch.argmin(smooth[1:] - smooth[:-1]))
    return int(round((steps[i + window // 2] + steps[i + 1 + window // 2]) / 2))


@torch.no_grad()
def head_scores(model: GPT, x: torch.Tensor, y: torch.Tensor, positions: SpanPositions) -> dict[str, float]:
    """Every score of chapter 11 on one batch of ``RepeatedSpans``, as a flat dict of numbers.

    ``loss`` (mean over all targets), ``icl`` (``icl_score`` of the second copy against the first),
    ``copy loss`` (mean cross-entropy on the second copy's copyable targets), ``exact`` (``exact_match``
    of those targets: the share of sequences whose whole second copy is predicted right),
    and for head h of layer l (counted from 1, as in the text) ``"prefix l.h"``,
    ``"previous l.h"`` and ``"copying l.h"``. Made to be an ``eval_fn`` of ``seqlab.train.train``.
    """
    _check_forml(model)
    validate.tensor("y", y, ndim=2, dtype="long")
    patterns, logits = attention_patterns(model, x, return_logits=True)  # one forward pass for everything
    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (B, T)
    early, late = positions.target_masks(x.shape[1])
    late_loss = loss[late.to(loss.device)].mean().item()
    out = {"loss": loss.mean().item(), "icl": icl_score(loss, early, late), "copy loss": late_loss,
           "exact": _exact(logits, y, late)}
    for l, A in enumerate(patterns):
        pm, pt, cp = prefix_matching_score(A, positions), previous_token_score(A), copying_score(ov_circuits(model, l))
        for h in range(A.shape[1]):
            out[f"prefix {l + 1}.{h}"], out[f"previous {l + 1}.{h}"] = pm[h].item(), pt[h].item()
            out[f"copying {l + 1}.{h}"] = cp[h].item()
    return out
