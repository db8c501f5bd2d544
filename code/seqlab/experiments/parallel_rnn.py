"""Can an RNN train in parallel? An LSTM, a minGRU and a Transformer of one size, by throughput and loss (chapter 13, section 13b).

Glossary, code name -> book notation::

    arch           "LSTM" (PyTorch's fused kernel on the course's weights), "minGRU" (``MinRNNLM``,
                   Feng et al. 2024, its chunked scan), "Transformer" (``GPT``, PyTorch's fused attention)
    T              the training context (sequence length); every step holds ``tokens`` = B·T tokens
    tokens/s       training throughput: B·T over the median time of one step (forward, backward, AdamW)
    depth          the longest chain of dependent operations in the autograd graph (``graph_depth``)
                   per extra token: what must run one after another whatever the hardware

``matched_widths`` sizes the three to one parameter count; ``throughput`` times their training steps
side by side (interleaved, so load on a shared machine slows them alike) at every T, with the
minGRU also in its loop form (the same weights and numbers, one step per token);
``depth_per_token`` counts the sequential chain; ``run_one(settings, seed)`` trains each for the
same steps on the ``pydoc_data`` text and returns the validation loss and the throughput table.
"""
from __future__ import annotations

import statistics

import torch

from ..seeding import batches as batch_stream, held_out, init
from ..data import CharCorpus
from ..measure import count_parameters, graph_depth, time_calls
from ..models.charlm import RecurrentLM
from ..models.minrnn import MinRNNLM
from ..models.transformer import GPT, GPTConfig
from ..train import logits_of, sequence_loss, train

ARCHS = ("LSTM", "minGRU", "Transformer")

SETTINGS = {
    "tiny": dict(params=12_000, n_layers=2, lengths=(16, 64), tokens=256, repeats=1, steps=20, context=32, batch=8,
                 lr=3e-3, n_eval=4, depth_lengths=(8, 16)),
    "quick": dict(params=60_000, n_layers=2, lengths=(32, 128, 512, 2048), tokens=2048, repeats=3, steps=150,
                  context=128, batch=16, lr=3e-3, n_eval=16, depth_lengths=(32, 64)),
    "full": dict(params=1_000_000, n_layers=4, lengths=(64, 256, 1024, 4096), tokens=16384, repeats=5, steps=3000,
                 context=512, batch=32, lr=1e-3, n_eval=64, depth_lengths=(64, 128)),
}


def build(arch: str, vocab: int, d: int, n_layers: int, form: str | None = None) -> torch.nn.Module:
    """One of ``ARCHS`` at width ``d`` (chapter 13, section 13b); ``form`` picks the minGRU's form (default its chunked scan)."""
    if arch == "LSTM":
        return RecurrentLM(vocab, d, d, cell="lstm", n_layers=n_layers, form="fused")
    if arch == "minGRU":
        return MinRNNLM(vocab, d, n_layers, cell="mingru", form=form or "chunked", chunk=16)
    if arch == "Transformer":
        return GPT(GPTConfig(vocab, d_model=d, n_heads=4, n_layers=n_layers, positions="sinusoidal"), form="fused")
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def matched_widths(vocab: int, params: int, n_layers: int, widths=range(16, 513, 8)) -> dict:
    """For each arch, the width (a multiple of 8) whose parameter count is nearest ``params`` (chapter 13, section 13b)."""
    out = {}
    for arch in ARCHS:
        counts = {d: count_parameters(build(arch, vocab, d, n_layers)) for d in widths}
        out[arch] = min(counts, key=lambda d: abs(counts[d] - params))
    return out


def _train_step(model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    loss = sequence_loss(logits_of(model(x)), y)
    loss.backward()
    opt.step()


def throughput(models: dict, vocab: int, lengths, tokens: int, repeats: int, seed: int = 0) -> dict:
    """Training tokens per second of every model at every length T, batch B = tokens // T (chapter 13, section 13b).

    ``models`` maps a name to ``(model, form)`` (``form`` None, or the form to set before each step:
    one minGRU model runs in two forms). The steps of all models at one T are timed interleaved, in
    CPU seconds (the models run on the CPU, one thread; a busy machine stretches the wall clock, not these).
    Returns ``{name: {T: tokens per CPU-second}}``.
    """
    g = torch.Generator().manual_seed(seed)
    opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, (m, _) in models.items()}
    out = {name: {} for name in models}
    for T in lengths:
        B = max(1, tokens // T)
        x = torch.randint(0, vocab, (B, T), generator=g)
        y = torch.randint(0, vocab, (B, T), generator=g)

        def call(name):
            model, form = models[name]
            if form is not None:
                model.form = form
            _train_step(model, opts[name], x, y)

        t = time_calls({name: (lambda n=name: call(n)) for name in models}, repeats=repeats, clock="cpu")
        for name in models:
            out[name][T] = B * T / t[name].median
    return out


def depth_per_token(model, lengths, vocab: int) -> float:
    """Extra dependent operations one more token adds to the longest chain of the autograd graph (chapters 9, 13b)."""
    T1, T2 = lengths
    depths = [graph_depth(logits_of(model(torch.zeros(1, T, dtype=torch.long) % vocab))) for T in (T1, T2)]
    return (depths[1] - depths[0]) / (T2 - T1)


def evaluate(model, corpus: CharCorpus, context: int, n_batches: int, generator: torch.Generator) -> float:
    """Mean validation loss (nats per character) over ``n_batches`` batches of 16 windows drawn with ``generator``
    (chapter 13, section 13b)."""
    g = generator
    model.eval()
    with torch.no_grad():
        losses = [sequence_loss(logits_of(model(x)), y).item()
                  for x, y in (corpus.batch("val", 16, context, generator=g) for _ in range(n_batches))]
    model.train()
    return statistics.mean(losses)


def run_one(s: dict, seed: int = 0, corpus: CharCorpus | None = None, progress: bool = False) -> dict:
    """Train each arch for ``s['steps']`` steps at ``s['context']`` on the same batches; loss, time, sizes (chapter 13, section 13b).

    Seeds are ``seqlab.seeding``'s named streams: every arch's weights from ``init(seed)``, its batches from
    ``batches(seed)`` (the same for every arch), its validation batches from ``held_out(seed)``.
    """
    corpus = corpus or CharCorpus()
    V = corpus.vocab_size
    widths = matched_widths(V, s["params"], s["n_layers"])
    out = {"width": widths, "params": {}, "val_loss": {}, "seconds": {}, "loss": {}}
    for arch in ARCHS:
        init(seed)
        model = build(arch, V, widths[arch], s["n_layers"])
        out["params"][arch] = count_parameters(model)
        batches = batch_stream(seed)  # the same batches for every arch
        hist = train(model, lambda: corpus.batch("train", s["batch"], s["context"], generator=batches),
                     steps=s["steps"], lr=s["lr"], clip=1.0, progress=progress, desc=arch)
        out["val_loss"][arch] = evaluate(model, corpus, s["context"], s["n_eval"], generator=held_out(seed))
        out["seconds"][arch] = hist.seconds
        out["loss"][arch] = hist.loss
    return out
