"""seqlab: the shared code of the course "From RNNs to Transformers".

    import seqlab
    cfg = seqlab.scale(quick=dict(steps=400), full=dict(steps=8000))
    g = seqlab.seed_everything(0)

Modules: ``config`` (device, seeding, scale), ``data`` (tasks, corpus,
domains), ``models`` (from-scratch models), ``train`` (the training loop),
``measure`` (time and memory), ``plot`` (figure style), ``check`` (exercise
checkers), ``probes`` (gradients through time), ``bptt`` (backpropagation
through time by hand), ``widgets`` (interactive explorers), ``interpret``
(attention heads and ablations), ``experiments`` (every experiment at any scale,
also a command: ``python -m seqlab.experiments``), ``pages`` (``glue``: measured
numbers into the prose), ``claims`` (``claim``: a claim of the prose, its
measured value and its rule; the evidence box), ``seeding`` (named random
streams), ``usage`` (which chapter uses which task, read from their code), ``exercises`` (the
exercise notebooks made from the chapters), ``ops`` (every mechanism's forms:
loop, parallel, chunked, stream), ``compare`` (the six architectures side by side,
chapter 15).
"""
from . import bptt, check, compare, data, experiments, interpret, measure, models, plot, probes, train, widgets
from .pages import bound, glue
from .claims import claim, evidence_box
from .config import (configure_threads, current_scale, get_device, progress_enabled, scale, seed_everything,
                     seed_offset)

__version__ = "0.1.0"

# No global side effect at import: the thread policy (``configure_threads``) is applied by the chapters'
# set-up call ``scale`` and by the commands (``python -m seqlab.experiments``), not here.

__all__ = [
    "bptt", "check", "compare", "data", "experiments", "interpret", "measure", "models", "plot", "probes", "train", "widgets",
    "bound", "glue", "configure_threads", "current_scale", "get_device", "seed_offset", "progress_enabled", "scale", "seed_everything", "__version__",
]
