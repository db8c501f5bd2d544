"""Six architectures behind one interface, and the rules that turn measurements into verdicts (chapter 15).

Glossary (code name -> book notation):

    arch           one of ``ARCHS``: "RNN" (chapter 2), "LSTM" (chapter 4), "Transformer" (softmax
                   attention, chapter 7), "linear attention" (chapter 12), "SSM" (the selective scan,
                   chapter 13), "hybrid" (an RG-LRU block and a global-attention block, chapter 14)
    d              the model width d_model (the hidden width of the recurrent models)
    form           how the mixers run: ``reference`` the step-by-step definition (a loop over time for
                   the recurrences), ``parallel`` the exact form with the shortest chain of dependent
                   operations, ``fast`` the form the course trains with; each names one form of each
                   ``seqlab.ops`` family the model's mixers belong to
    x              token ids (B, T); ``logits`` (B, T, V)
    state          what a model carries from one token to the next when generating: the recurrent
                   h (and c), linear attention's S and z, the SSM's h, a KV cache that grows with T

``TABLE`` has one row per architecture: its chapter, a constructor ``(vocab_size, d, n_layers,
n_heads) -> model`` and, for each of the three forms, the ``seqlab.ops`` form of every family in
it. Every model maps token ids to next-token logits through an embedding and a head, with the
mixers of its chapter in between (``RecurrentLM`` for the RNN and the LSTM, ``SeqLM`` for the
others), and every one streams the same way: ``model(x, state) -> (logits, state)``,
``model.step(token, state)``. A new architecture is one row. ``verdict`` is the written-down rule that turns a
measured number into a table cell.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from . import _validate as validate
from .models.charlm import RecurrentLM
from .models.hybrid import HybridConfig, HybridLM
from .models.mixer import Mixer, state_bytes
from .models.mixer_lm import MixerLM, MixerLMConfig

FORM_NAMES = ("reference", "parallel", "fast")


@dataclass(frozen=True)
class Arch:
    """One row of the table (chapter 15): the ``chapter`` that teaches it, ``build(vocab_size, d, n_layers,
    n_heads)``, ``forms[form][family]`` the ops form each mixer family runs, and whether d / n_heads must
    be an even integer (``even_heads``)."""

    chapter: int
    build: Callable[[int, int, int, int], nn.Module]
    forms: dict
    even_heads: bool = False


def _two_layers(arch: str, pattern: str):
    def build(V, d, n_layers, n_heads):
        if n_layers != 2:
            raise ValueError(f"the {arch} here has 2 layers (pattern {pattern}), got n_layers={n_layers}")
        return HybridLM(HybridConfig(vocab_size=V, pattern=pattern, d_model=d, n_heads=n_heads, chunk=16))
    return build


_ATTENTION = {"reference": "parallel", "parallel": "parallel", "fast": "fused"}  # the hand-written or the fused form

TABLE = {
    "RNN": Arch(2, lambda V, d, L, H: RecurrentLM(V, d, d, cell="rnn", n_layers=L),
                {f: {"rnn": m} for f, m in zip(FORM_NAMES, ("loop", "loop", "fused"))}),
    "LSTM": Arch(4, lambda V, d, L, H: RecurrentLM(V, d, d, cell="lstm", n_layers=L),
                 {f: {"lstm": m} for f, m in zip(FORM_NAMES, ("loop", "loop", "fused"))}),
    "Transformer": Arch(7, _two_layers("Transformer", "GG"),
                        {f: {"softmax_attention": _ATTENTION[f]} for f in FORM_NAMES}, even_heads=True),
    "linear attention": Arch(12, lambda V, d, L, H: MixerLM(MixerLMConfig(
        vocab_size=V, mixer="linear", d_model=d, n_layers=L, n_heads=H, options={"chunk": 16, "feature_map": "elu1"})),
        {f: {"linear_attention": m} for f, m in zip(FORM_NAMES, ("loop", "parallel", "chunked"))}, even_heads=True),
    "SSM": Arch(13, lambda V, d, L, H: MixerLM(MixerLMConfig(
        vocab_size=V, mixer="selective", d_model=d, n_layers=L, n_heads=H, options={"chunk": 16})),
        {f: {"selective_scan": m} for f, m in zip(FORM_NAMES, ("loop", "logspace", "chunked"))}),
    "hybrid": Arch(14, _two_layers("hybrid", "GR"),
                   {f: {"rglru": m, "softmax_attention": _ATTENTION[f]}
                    for f, m in zip(FORM_NAMES, ("loop", "scan", "chunked"))}, even_heads=True),
}
ARCHS = tuple(TABLE)

__all__ = ["ARCHS", "TABLE", "Arch", "FORM_NAMES", "make_model", "set_form", "forward_state", "step", "state_bytes",
           "width_for_parameters", "verdict", "gradient_reach", "embedding_gradient", "quantize"]


def _check_arch(arch) -> str:
    if arch not in TABLE:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    return arch


def make_model(arch: str, vocab_size: int, d: int, *, n_layers: int = 2, n_heads: int = 4,
               form: str = "fast") -> nn.Module:
    """A next-token model of family ``arch`` and width ``d`` (chapter 15), its mixers run in ``form``.

    ``form`` is "reference", "parallel" or "fast" (see ``TABLE``). The Transformer and the hybrid
    have ``n_layers`` = 2 (patterns "GG" and "GR"); the others take ``n_layers``.
    """
    _check_arch(arch)
    validate.positive_int("vocab_size", vocab_size, minimum=2)
    validate.positive_int("d", d)
    validate.positive_int("n_layers", n_layers)
    if form not in FORM_NAMES:
        raise ValueError(f"form must be 'reference', 'parallel' or 'fast', got {form!r}")
    model = TABLE[arch].build(vocab_size, d, n_layers, n_heads)
    model.arch = arch
    return set_form(model, form)


def set_form(model: nn.Module, form: str) -> nn.Module:
    """Switch a ``make_model`` model to ``form`` ("reference", "parallel", "fast") in place; returns it (chapter 15).

    Every ``Mixer`` in the model runs the form its family has in the architecture's row.
    """
    arch = _check_arch(getattr(model, "arch", None))
    if form not in FORM_NAMES:
        raise ValueError(f"form must be one of {sorted(FORM_NAMES)}, got {form!r}")
    chosen = TABLE[arch].forms[form]
    for m in model.modules():
        if isinstance(m, Mixer) and m.family in chosen:
            m.form = chosen[m.family]
    return model


def forward_state(model: nn.Module, x: torch.Tensor, state=None):
    """Run ``model`` on token ids ``x`` (B, T) from ``state``: ``(logits (B, T, V), state)`` (chapter 15).

    Feeding a sequence in pieces, each from the previous piece's state, gives the same logits as one call.
    """
    _check_arch(getattr(model, "arch", None))
    validate.tensor("x", x, ndim=2, dtype="long")
    return model(x, state)


def step(model: nn.Module, token: torch.Tensor, state=None):
    """One generated token: ``token`` (B,) ids and the state -> (logits (B, V), state) (chapter 15)."""
    validate.tensor("token", token, ndim=1, dtype="long")
    _check_arch(getattr(model, "arch", None))
    return model.step(token, state)


def width_for_parameters(arch: str, vocab_size: int, target: int, widths=range(8, 257, 4), **kw) -> int:
    """The width among ``widths`` whose ``make_model`` has the parameter count nearest ``target`` (chapter 15).

    Used to compare architectures at a matched size; ``kw`` go to ``make_model``.
    """
    _check_arch(arch)
    validate.positive_int("target", target)
    widths = list(widths)
    if not widths:
        raise ValueError("widths must not be empty")
    n_heads = kw.get("n_heads", 4)
    usable = [w for w in widths if not TABLE[arch].even_heads or (w % n_heads == 0 and (w // n_heads) % 2 == 0)]
    if not usable:
        raise ValueError(f"no width in {widths} suits {arch!r} with {n_heads} heads (d / n_heads must be even)")
    count = lambda w: sum(p.numel() for p in make_model(arch, vocab_size, w, **kw).parameters())  # noqa: E731
    return min(usable, key=lambda w: abs(count(w) - target))


def verdict(value: float, threshold: float, above: str, below: str) -> str:
    """The rule of one table row (chapter 15): ``above`` if ``value >= threshold``, else ``below``.

    A verdict is written next to the number it comes from, so a reader can check the rule.
    """
    validate.number("value", value)
    validate.number("threshold", threshold)
    return above if value >= threshold else below


def gradient_reach(model: nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """How much of a learning signal at the last position reaches each earlier token (chapter 15; chapter 3's probe).

    Backpropagates a random projection of the last position's logits, ``r · logits_T``, to the token
    embeddings e_1..e_T and returns ``‖∂/∂e_{T−k}‖ / ‖∂/∂e_T‖`` for k = 0..T−1 (averaged over the
    batch): 1 at k = 0, then how the gradient fades with the distance k. Ids ``x`` (B, T).
    """
    validate.tensor("x", x, ndim=2, dtype="long")
    validate.positive_int("T", x.shape[1], minimum=2)
    norms = embedding_gradient(model, x, seed).norm(dim=-1).mean(0)  # (T,)
    return (norms / norms[-1]).flip(0)  # index k: distance k back from the last token


def embedding_gradient(model, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """∂(r · logits_T)/∂e_t for every token embedding e_t, (B, T, d): the backward pass ``gradient_reach`` measures,
    ``r`` a random direction seeded by ``seed`` (chapter 15)."""
    _check_arch(getattr(model, "arch", None))
    kept = {}

    def hook(module, inputs, output):
        output.retain_grad()
        kept["e"] = output

    handle = model.embed.register_forward_hook(hook)
    try:
        logits, _ = model(x)  # (B, T, V)
    finally:
        handle.remove()
    r = torch.randn(logits.shape[-1], generator=torch.Generator().manual_seed(seed)).to(logits)
    (logits[:, -1] @ r).sum().backward()
    return kept["e"].grad.detach()  # (B, T, d)


def quantize(x: torch.Tensor, levels: int, mu: float | None = None) -> torch.Tensor:
    """Real values -> token ids in [0, levels) (chapter 15), so that any token model reads a signal.

    Each series (last axis of ``x`` (B, T) or (B, T, 1)) is scaled to [−1, 1] by its largest
    magnitude; with ``mu`` the μ-law ``sign(x) log(1 + μ|x|) / log(1 + μ)`` is applied first (audio),
    then [−1, 1] is cut into ``levels`` equal bins.
    """
    validate.tensor("x", x, ndim=(2, 3), dtype="float")
    if x.dim() == 3:
        if x.shape[-1] != 1:
            raise ValueError(f"x must be (B, T) or (B, T, 1), got shape {tuple(x.shape)}")
        x = x[..., 0]
    validate.positive_int("levels", levels, minimum=2)
    x = x / x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)  # (B, T) in [-1, 1]
    if mu is not None:
        validate.number("mu", mu, minimum=0, strict=True)
        x = torch.sign(x) * torch.log1p(mu * x.abs()) / torch.log1p(torch.tensor(float(mu)))
    return ((x + 1) / 2 * levels).long().clamp(0, levels - 1)  # (B, T)
