"""Six architectures behind one interface, and the rules that turn measurements into verdicts (chapter 15).

Glossary (code name -> book notation):

    arch           one of ``ARCHS``: "RNN" (chapter 2), "LSTM" (chapter 4), "Transformer" (softmax
                   attention, chapter 7), "linear attention" (chapter 12), "SSM" (the selective scan,
                   chapter 13), "hybrid" (an RG-LRU block and a global-attention block, chapter 14)
    d              the model width d_model (the hidden width of the recurrent models)
    mode           the form that runs the mixer: ``reference`` the step-by-step definition (a loop over
                   time for the recurrences), ``parallel`` the exact form with the shortest chain of
                   dependent operations, ``fast`` the form the course trains with
    x              token ids (B, T); ``logits`` (B, T, V)
    state          what a model carries from one token to the next when generating: the recurrent
                   h (and c), linear attention's S and z, the SSM's h, a KV cache that grows with T

Every model maps token ids to next-token logits through the same embedding and head, with the
mixers of its chapter in between: ``RecurrentLM`` for the RNN and the LSTM, ``HybridLM`` for the
Transformer (pattern "GG") and the hybrid (pattern "GR"), ``MixerLM`` for linear attention and the
SSM. ``forward_state`` and ``step`` give all six one streaming interface; ``verdict`` and
``dominant_use`` are the written-down rules that turn a measured number into a table cell.
"""
from __future__ import annotations

import torch
from torch import nn

from . import _validate as validate
from .models.charlm import RecurrentLM
from .models.hybrid import HybridConfig, HybridLM, _causal_conv, state_bytes
from .models.mixer_lm import MixerLM, MixerLMConfig

ARCHS = ("RNN", "LSTM", "Transformer", "linear attention", "SSM", "hybrid")
CHAPTER = {"RNN": 2, "LSTM": 4, "Transformer": 7, "linear attention": 12, "SSM": 13, "hybrid": 14}
FORMS = {  # arch -> {"reference", "parallel", "fast"} -> mode
    "RNN": {"reference": "loop", "parallel": "loop", "fast": "fused"},
    "LSTM": {"reference": "loop", "parallel": "loop", "fast": "fused"},
    "Transformer": {"reference": "parallel", "parallel": "parallel", "fast": "fused"},
    "linear attention": {"reference": "loop", "parallel": "parallel", "fast": "chunked"},
    "SSM": {"reference": "loop", "parallel": "logspace", "fast": "chunked"},
    "hybrid": {"reference": "loop", "parallel": "scan", "fast": "chunked"},
}

__all__ = ["ARCHS", "CHAPTER", "FORMS", "make_model", "set_form", "forward_state", "step", "state_bytes",
           "width_for_parameters", "verdict", "dominant_use", "gradient_reach", "quantize"]


def _check_arch(arch) -> str:
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    return arch


def make_model(arch: str, vocab_size: int, d: int, *, n_layers: int = 2, n_heads: int = 4,
               form: str = "fast") -> nn.Module:
    """A next-token model of family ``arch`` and width ``d`` (chapter 15), its mixer run in ``form``.

    ``form`` is "reference", "parallel" or "fast" (see ``FORMS``). The Transformer and the hybrid
    have ``n_layers`` = 2 (patterns "GG" and "GR"); the others take ``n_layers``.
    """
    _check_arch(arch)
    validate.positive_int("vocab_size", vocab_size, minimum=2)
    validate.positive_int("d", d)
    validate.positive_int("n_layers", n_layers)
    if form not in ("reference", "parallel", "fast"):
        raise ValueError(f"form must be 'reference', 'parallel' or 'fast', got {form!r}")
    if arch in ("RNN", "LSTM"):
        model = RecurrentLM(vocab_size, d, d, cell=arch.lower(), n_layers=n_layers)
    elif arch in ("Transformer", "hybrid"):
        if n_layers != 2:
            raise ValueError(f"the {arch} here has 2 layers (pattern {'GG' if arch == 'Transformer' else 'GR'}), "
                             f"got n_layers={n_layers}")
        model = HybridLM(HybridConfig(vocab_size=vocab_size, pattern="GG" if arch == "Transformer" else "GR",
                                      d_model=d, n_heads=n_heads, chunk=16))
    else:
        mixer = "linear" if arch == "linear attention" else "selective"
        options = {"chunk": 16} if arch == "SSM" else {"chunk": 16, "feature_map": "elu1"}
        model = MixerLM(MixerLMConfig(vocab_size=vocab_size, mixer=mixer, d_model=d, n_layers=n_layers,
                                      n_heads=n_heads, options=options))
    model.arch = arch
    return set_form(model, form)


def set_form(model: nn.Module, form: str) -> nn.Module:
    """Switch a ``make_model`` model to ``form`` ("reference", "parallel", "fast") in place; returns it (chapter 15)."""
    arch = _check_arch(getattr(model, "arch", None))
    if form not in FORMS[arch]:
        raise ValueError(f"form must be one of {sorted(FORMS[arch])}, got {form!r}")
    mode = FORMS[arch][form]
    if arch in ("RNN", "LSTM"):
        model.mode = mode
    elif arch == "Transformer":
        for m in model.mixers:
            m.mode = mode
    elif arch == "hybrid":
        for m in model.mixers:
            if hasattr(m, "chunk"):  # the recurrent block
                m.mode = mode
            else:  # its attention block: the hand-written or the fused form, the same numbers
                m.mode = "fused" if form == "fast" else "parallel"
    else:
        for m in model.mixers:
            m.layer.config.mode = mode
    return model


def _mixer_lm_forward(model: MixerLM, x: torch.Tensor, state):
    """``MixerLM`` run from ``state`` (one entry per layer, or None): (logits (B, T, V), new state)."""
    c = model.config
    h = model.embed(x)  # (B, T, d)
    new = []
    for i, mixer in enumerate(model.mixers):
        s = None if state is None else state[i]
        u = model.norms1[i](h)
        if mixer.kind in ("linear", "gated_linear"):
            u, buffer = _causal_conv(mixer.short_conv.conv, u, None if s is None else s[0])  # the short conv's last inputs
            y, layer_state = mixer.layer(u, None if s is None else s[1])
            new.append((buffer, layer_state))
        else:
            y, layer_state = mixer.layer(u, s)
            new.append(layer_state)
        h = h + y
        if c.mlp:
            h = h + model.mlps[i](model.norms2[i](h))
    return model.head(model.norm(h)), new  # (B, T, V)


def forward_state(model: nn.Module, x: torch.Tensor, state=None):
    """Run ``model`` on token ids ``x`` (B, T) from ``state``: ``(logits (B, T, V), state)`` (chapter 15).

    Feeding a sequence in pieces, each from the previous piece's state, gives the same logits as one call.
    """
    _check_arch(getattr(model, "arch", None))
    validate.tensor("x", x, ndim=2, dtype="long")
    if isinstance(model, MixerLM):
        if state is not None and not (isinstance(state, list) and len(state) == len(model.mixers)):
            raise TypeError(f"state must be the list of {len(model.mixers)} layer states returned by this model, "
                            f"got {type(state).__name__}")
        validate.token_ids("x", x, model.config.vocab_size, ndim=2)
        return _mixer_lm_forward(model, x, state)
    return model(x, state)


def step(model: nn.Module, token: torch.Tensor, state=None):
    """One generated token: ``token`` (B,) ids and the state -> (logits (B, V), state) (chapter 15)."""
    validate.tensor("token", token, ndim=1, dtype="long")
    if isinstance(model, MixerLM):
        logits, state = forward_state(model, token[:, None], state)
        return logits[:, 0], state
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
    usable = [w for w in widths if arch not in ("Transformer", "hybrid", "linear attention")
              or (w % n_heads == 0 and (w // n_heads) % 2 == 0)]
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


def dominant_use(parallel_training: bool, state_grows: bool) -> str:
    """Where an architecture fits, from two measured facts (chapter 15).

    ``parallel_training``: its depth does not grow with the length (it trains on all positions at
    once); ``state_grows``: the state it needs per generated token grows with the context.
    """
    if not isinstance(parallel_training, bool) or not isinstance(state_grows, bool):
        raise TypeError(f"parallel_training and state_grows must be bools, got "
                        f"{type(parallel_training).__name__} and {type(state_grows).__name__}")
    if parallel_training and state_grows:
        return "large-scale training on parallel hardware"
    if parallel_training:
        return "parallel training and constant-memory streaming"
    if state_grows:
        return "neither (sequential and growing)"
    return "streaming and small devices"


def gradient_reach(model: nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """How much of a learning signal at the last position reaches each earlier token (chapter 15; chapter 3's probe).

    Backpropagates a random projection of the last position's logits, ``r · logits_T``, to the token
    embeddings e_1..e_T and returns ``‖∂/∂e_{T−k}‖ / ‖∂/∂e_T‖`` for k = 0..T−1 (averaged over the
    batch): 1 at k = 0, then how the gradient fades with the distance k. Ids ``x`` (B, T).
    """
    _check_arch(getattr(model, "arch", None))
    validate.tensor("x", x, ndim=2, dtype="long")
    validate.positive_int("T", x.shape[1], minimum=2)
    kept = {}

    def hook(module, inputs, output):
        output.retain_grad()
        kept["e"] = output

    handle = model.embed.register_forward_hook(hook)
    try:
        out = model(x)
    finally:
        handle.remove()
    logits = out[0] if isinstance(out, tuple) else out  # (B, T, V)
    r = torch.randn(logits.shape[-1], generator=torch.Generator().manual_seed(seed)).to(logits)
    (logits[:, -1] @ r).sum().backward()
    norms = kept["e"].grad.norm(dim=-1).mean(0)  # (T,)
    return (norms / norms[-1]).flip(0)  # index k: distance k back from the last token


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
