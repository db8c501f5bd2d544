"""Sequence mixers as functions: one file per family, every form with one signature (chapters 2–14).

A *family* is one way of mixing information along time — a recurrent cell,
softmax attention, linear attention, a state-space scan, a gated linear
recurrence. Each family module in this package exposes its *forms* side by
side, in the manner of Mamba's ``selective_scan_ref`` beside its kernel and
flash-linear-attention's ``ops/<family>/{naive, chunk, fused_recurrent}.py``:

    loop      the readable reference: one Python step per time step
    parallel  all time steps at once (masked matrix products, a convolution, a scan)
    chunked   parallel inside chunks, recurrent across them (any T)
    stream    the streaming form: ``<family>_step`` once per token, what generation runs
    fused     PyTorch's own kernel, where there is one (nn.LSTM's, SDPA)

Every form of a family takes the same inputs and parameters and an optional
``state`` (None means "start from zeros / empty"), and returns ``(y, state)``:
``y`` has a time axis at dim 1 — (B, T, H) — or, for multi-head families, at
dim 2 after the heads — (B, H, T, d), the layout of ``F.scaled_dot_product_attention``
— and ``state`` is whatever the family carries from one step to the next — an
RNN's ``h``, an LSTM's ``(h, c)``, a KV cache ``(K, V)``, a linear-attention
matrix ``S``, an SSM's ``h``. Because all of them are "the state", a hybrid
stack interleaves layers without special cases.

Besides its forms, every family has one single-token function
``<family>_step(*inputs_t, *params, *, state) -> (y_t, state)``: the state is
always the keyword ``state=``, after the inputs and parameters.

The families: ``recurrent`` (``rnn``, ``lstm``, ``gru``, chapters 2 and 4),
``attention`` (``softmax_attention``, chapters 6 and 9), ``linear_attention``
(``linear_attention``, ``gated_linear_attention``, chapter 12), ``ssm``
(``s4d``, ``selective_scan``, chapter 13), ``ssd`` (Mamba-2's form of the selective scan, chapter 13),
``minrnn`` (``mingru``, ``minlstm``, section 13.10) and ``rglru`` (chapter 14); their
forms are ``FAMILIES[name].forms``. The layers of ``seqlab.models`` hold the
parameters and name a form with ``form`` (``seqlab.models.Mixer``).

``registry`` holds the families; ``code/tests/test_equivalence.py`` runs every
pair of forms of every registered family over one grid of awkward shapes and
compares outputs, final states and the gradients of every input, parameter
and initial state. A family added to the registry gets the whole battery.
"""
from .registry import FAMILIES, GRID, Case, Family, Problem, register_family, run_form
from . import attention, recurrent  # noqa: E402  (importing a family module registers its families)
from . import linear_attention  # noqa: E402,F401  (registers linear_attention, gated_linear_attention, delta_rule)
from . import ssm  # noqa: E402,F401  (registers s4d, selective_scan)
from . import rglru  # noqa: E402,F401  (registers rglru, chapter 14)
from . import minrnn  # noqa: E402,F401  (registers mingru, minlstm, chapter 13)
from . import ssd  # noqa: E402,F401  (registers ssd, Mamba-2's form, chapter 13)

__all__ = ["FAMILIES", "GRID", "Case", "Family", "Problem", "register_family", "run_form", "attention", "recurrent",
           "linear_attention", "ssm", "rglru", "minrnn", "ssd"]
