"""Drawing the next token from a model's scores: the one sampling routine behind every ``generate`` (chapter 1).

Glossary, code name -> book notation:

    logits       scores z of the next token, shape (..., V); for a count model z = log p
    temperature  τ: sample from softmax(z / τ); τ = 1 the model's own distribution,
                 τ < 1 sharper, τ > 1 flatter, τ = 0 the most likely token (greedy, argmax z)
    generator    the ``torch.Generator`` the draw uses, so that a seeded run repeats

    p_τ(x) = exp(z_x / τ) / sum_y exp(z_y / τ)

``NGramLM.generate`` (chapter 1), ``RecurrentLM.generate`` (chapter 2) and
``GPT.generate`` (chapters 7 and 9) all call ``sample_next``, so a temperature
is applied in one place, and one test (``code/tests/test_sampling.py``) checks
it against ``softmax(z / τ)`` computed by hand.
"""
from __future__ import annotations

import torch

from .. import _validate as validate


def check_temperature(temperature) -> float:
    """``temperature`` as a float >= 0 (0 means greedy); a TypeError or ValueError otherwise (chapter 1)."""
    value = validate.number("temperature", temperature)  # TypeError for a str, a bool, a tensor
    if value < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 means greedy), got {temperature!r}")
    return value


def sample_next(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of ``logits`` (..., V), drawn from ``softmax(logits / temperature)`` (chapter 1).

    ``temperature=0`` takes ``argmax(logits)`` (greedy) and uses no randomness. The draw
    happens on the CPU in float32 with ``generator`` (a CPU ``torch.Generator`` or None for
    the global one), so the same seed gives the same ids on any device; the ids come back
    as a LongTensor of shape ``logits.shape[:-1]`` on ``logits``' device.
    """
    validate.tensor("logits", logits, dtype="float")
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a vocabulary axis (..., V) with V >= 1, got shape {tuple(logits.shape)}")
    temperature = check_temperature(temperature)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.detach().float().cpu() / temperature, dim=-1)  # (..., V)
    if not torch.isfinite(probs).all():
        raise ValueError("softmax(logits / temperature) is not finite: the logits hold NaN or inf, or the "
                         f"temperature {temperature} is so small that they overflow; use temperature=0 for greedy")
    ids = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)  # (N, 1)
    return ids.reshape(logits.shape[:-1]).to(logits.device)
