"""Can an RNN train in parallel? An LSTM, a minGRU and a Transformer of one size, by throughput and loss (chapter 13, section 13.10).

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
``parallel_rnn`` (``python -m seqlab.experiments parallel_rnn``) is the recorded study behind the
page's one run: every arch at every rate of a grid, for several seeds and four times the page's
steps, each rate chosen on validation windows and reported on other, test windows (``best_rates``).
"""
from __future__ import annotations

import functools
import statistics

import torch

from ..seeding import batches as batch_stream, held_out, init, seed_offset
from ..data import CharCorpus
from ..measure import count_parameters, graph_depth, time_calls
from ..models.charlm import RecurrentLM
from ..models.minrnn import MinRNNLM
from ..models.transformer import GPT, GPTConfig
from ..train import logits_of, sequence_loss, train
from . import register
from .runlog import choose_rate, log_path, map_logged, per_run

ARCHS = ("LSTM", "minGRU", "Transformer")

SETTINGS = {
    "tiny": dict(params=12_000, n_layers=2, lengths=(16, 64), tokens=256, repeats=1, steps=20, context=32, batch=8,
                 lr=3e-3, clip=1.0, n_eval=4, depth_lengths=(8, 16)),
    "quick": dict(params=60_000, n_layers=2, lengths=(32, 128, 512, 2048), tokens=2048, repeats=3, steps=150,
                  context=128, batch=16, lr=3e-3, clip=1.0, n_eval=16, depth_lengths=(32, 64)),
    "full": dict(params=1_000_000, n_layers=4, lengths=(64, 256, 1024, 4096), tokens=16384, repeats=5, steps=3000,
                 context=512, batch=32, lr=1e-3, clip=1.0, n_eval=64, depth_lengths=(64, 128)),
}


def build(arch: str, vocab: int, d: int, n_layers: int, form: str | None = None) -> torch.nn.Module:
    """One of ``ARCHS`` at width ``d`` (chapter 13, section 13.10); ``form`` picks the minGRU's form (default its chunked scan)."""
    if arch == "LSTM":
        return RecurrentLM(vocab, d, d, cell="lstm", n_layers=n_layers, form="fused")
    if arch == "minGRU":
        return MinRNNLM(vocab, d, n_layers, cell="mingru", form=form or "chunked", chunk=16)
    if arch == "Transformer":
        return GPT(GPTConfig(vocab, d_model=d, n_heads=4, n_layers=n_layers, positions="sinusoidal"), form="fused")
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def matched_widths(vocab: int, params: int, n_layers: int, widths=range(16, 513, 8)) -> dict:
    """For each arch, the width (a multiple of 8) whose parameter count is nearest ``params`` (chapter 13, section 13.10)."""
    return dict(_matched_widths(vocab, params, n_layers, tuple(widths)))


@functools.lru_cache(maxsize=8)  # each size searched once: the search builds every arch at every width
def _matched_widths(vocab: int, params: int, n_layers: int, widths: tuple) -> tuple:
    out = []
    for arch in ARCHS:
        counts = {}
        for d in sorted(widths):  # the count grows with the width: stop once it is past twice the target
            counts[d] = count_parameters(build(arch, vocab, d, n_layers))
            if counts[d] > 2 * params:
                break
        out.append((arch, min(counts, key=lambda d: abs(counts[d] - params))))
    return tuple(out)


def _train_step(model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    loss = sequence_loss(logits_of(model(x)), y)
    loss.backward()
    opt.step()


def throughput(models: dict, vocab: int, lengths, tokens: int, repeats: int, seed: int = 0) -> dict:
    """Training tokens per CPU-second (one thread: close to per second) of every model at every length T, batch
    B = tokens // T (chapter 13, section 13.10).

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
    """Extra dependent operations one more token adds to the longest chain of the autograd graph (chapter 9, section 13.10)."""
    T1, T2 = lengths
    depths = [graph_depth(logits_of(model(torch.zeros(1, T, dtype=torch.long) % vocab))) for T in (T1, T2)]
    return (depths[1] - depths[0]) / (T2 - T1)


def hillis_steele_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """Every h_t of h_t = a_t ⊙ h_{t−1} + b_t, in ⌈log₂ T⌉ rounds of elementwise operations (chapter 13, section 13.10).

    ``a``, ``b`` are (B, T, H); ``h0`` (B, H) or None (zero). Hillis and Steele's scan, written in torch
    operations so that ``measure.graph_depth`` sees every round: after the round with offset s, position t
    holds the composition of the affine maps h ↦ a h + b of steps t − 2s + 1 .. t, and one more round
    combines it with the block that ends s positions earlier, (a, b) ← (a · a_prev, a · b_prev + b).
    The work is O(T log T), the depth O(log T): a round adds the same few operations to the chain, so the
    depth grows by a constant each time T doubles, where a loop's grows with every token.
    """
    if a.shape != b.shape or a.dim() != 3:
        raise ValueError(f"a and b must both be (B, T, H), got {tuple(a.shape)} and {tuple(b.shape)}")
    shift = 1
    while shift < a.shape[1]:
        a_prev = torch.cat([torch.ones_like(a[:, :shift]), a[:, :-shift]], dim=1)   # the identity map before t = 0
        b_prev = torch.cat([torch.zeros_like(b[:, :shift]), b[:, :-shift]], dim=1)
        a, b = a * a_prev, a * b_prev + b
        shift *= 2
    return b if h0 is None else b + a * h0[:, None]        # a now holds Π_{s ≤ t} a_s


def loop_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """The same recurrence one step after another, (B, T, H) -> (B, T, H): its chain grows with every token (chapter 13, section 13.10)."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1)


def tree_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum over dim 1 of ``x`` (B, T, H) -> (B, H), in ⌈log₂ T⌉ rounds of pairwise additions (chapter 15).

    Written in torch operations so that ``measure.graph_depth`` sees every round, as ``hillis_steele_scan``
    does for a prefix sum: a round adds neighbouring pairs (an odd last element waits a round), so the
    chain grows by a constant each time T doubles. It is how a parallel machine sums attention's n terms.
    """
    if x.dim() != 3 or x.shape[1] == 0:
        raise ValueError(f"x must be (B, T, H) with T >= 1, got {tuple(x.shape)}")
    while x.shape[1] > 1:
        even = x.shape[1] // 2 * 2
        x = torch.cat([x[:, 0:even:2] + x[:, 1:even:2], x[:, even:]], dim=1)
    return x[:, 0]


def tree_depths(lengths, width: int = 4, seed: int = 0) -> list[int]:
    """``graph_depth`` of ``tree_sum`` over random inputs of each length of ``lengths`` (chapter 15)."""
    g = torch.Generator().manual_seed(seed)
    return [graph_depth(tree_sum(torch.randn(1, T, width, generator=g, dtype=torch.float64).requires_grad_()))
            for T in lengths]


def scan_depths(lengths, width: int = 4, seed: int = 0) -> dict[str, list[int]]:
    """``graph_depth`` of ``hillis_steele_scan`` and ``loop_scan`` at each length of ``lengths`` (chapter 13, section 13.10).

    Random decays in (0, 1) and inputs that need gradients, so every round is in the autograd graph.
    """
    g = torch.Generator().manual_seed(seed)
    out = {"scan": [], "loop": []}
    for T in lengths:
        a = torch.rand(1, T, width, generator=g, dtype=torch.float64).requires_grad_()
        b = torch.randn(1, T, width, generator=g, dtype=torch.float64).requires_grad_()
        out["scan"].append(graph_depth(hillis_steele_scan(a, b)))
        out["loop"].append(graph_depth(loop_scan(a, b)))
    return out


def evaluate(model, corpus: CharCorpus, context: int, n_batches: int, generator: torch.Generator,
             device=None) -> float:
    """Mean validation loss (nats per character) over ``n_batches`` batches of 16 windows drawn with ``generator``
    (chapter 13, section 13.10); the windows are moved to ``device``."""
    g = generator
    model.eval()
    with torch.no_grad():
        losses = [sequence_loss(logits_of(model(x.to(device))), y.to(device)).item()
                  for x, y in (corpus.batch("val", 16, context, generator=g) for _ in range(n_batches))]
    model.train()
    return statistics.mean(losses)


def run_one(s: dict, seed: int = 0, corpus: CharCorpus | None = None, progress: bool = False) -> dict:
    """Train each arch for ``s['steps']`` steps at ``s['context']`` on the same batches; loss, time, sizes (chapter 13, section 13.10).

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
                     steps=s["steps"], lr=s["lr"], clip=s["clip"], progress=progress, desc=arch)
        out["val_loss"][arch] = evaluate(model, corpus, s["context"], s["n_eval"], generator=held_out(seed))
        out["seconds"][arch] = hist.seconds
        out["loss"][arch] = hist.loss
    return out


# ------------------------------------------------------------------ the recorded study: rates, seeds, a longer budget
SWEEP = {  # the settings one run depends on, and the grid of rates (the page's model sizes, batch and context)
    "tiny": dict(params=12_000, n_layers=2, context=32, batch=8, steps=10, eval_every=5, n_eval=2,
                 lrs=[3e-3, 1e-2]),
    "quick": dict(params=60_000, n_layers=2, context=128, batch=16, steps=600, eval_every=100, n_eval=16,
                  lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1]),
    "full": dict(params=1_000_000, n_layers=4, context=512, batch=32, steps=12_000, eval_every=500, n_eval=64,
                 lrs=[3e-4, 1e-3, 3e-3]),
}
GRID_KEYS = ("lrs",)


def loss_run(arch: str, lr: float, seed: int, s: dict, corpus: CharCorpus, device=None, progress: bool = False) -> dict:
    """One run of the study: ``arch`` at rate ``lr`` for ``s['steps']`` steps on ``batches(seed)`` (chapter 13, section 13.10).

    The validation loss (``val_loss``, which chooses the rate) is measured on windows drawn with
    ``held_out(seed)``, the reported ``test_loss`` on other windows, ``held_out(seed, 1)``; ``curve`` holds
    the validation loss every ``eval_every`` steps (on half as many windows of ``held_out(seed, 2)``).
    """
    V = corpus.vocab_size
    width = matched_widths(V, s["params"], s["n_layers"])[arch]
    init(seed)
    model = build(arch, V, width, s["n_layers"]).to(device)
    batches = batch_stream(seed)  # the same batches for every arch and rate
    curve_windows = max(1, s["n_eval"] // 2)
    hist = train(model, lambda: tuple(t.to(device) for t in corpus.batch("train", s["batch"], s["context"], generator=batches)),
                 steps=s["steps"], lr=lr, clip=1.0, eval_every=s["eval_every"], progress=progress, desc=f"{arch} lr {lr:g}",
                 eval_fn=lambda m: {"val": evaluate(m, corpus, s["context"], curve_windows, held_out(seed, 2), device)})
    return {"arch": arch, "lr": lr, "seed": seed, "params": count_parameters(model),
            "val_loss": evaluate(model, corpus, s["context"], s["n_eval"], held_out(seed), device),
            "test_loss": evaluate(model, corpus, s["context"], s["n_eval"], held_out(seed, 1), device),
            "curve": {"step": list(hist.eval_step), "val": list(hist.eval["val"])}}


def recorded_test_windows(corpus: CharCorpus, s: dict, seed: int) -> torch.Tensor:
    """The windows on which a recorded run of ``seed`` reports its ``test_loss`` (chapter 13, section 13.10).

    ``loss_run`` scores ``s['n_eval']`` batches of 16 ``"val"`` windows drawn with ``held_out(seed, 1)``; the study
    is recorded without ``SEQLAB_SEED_OFFSET``, so the stream is drawn unshifted here whatever this process's
    offset. Each window is returned with its last target appended, ``(16 · n_eval, context + 1)``, the form
    ``measure.ngram_baselines`` scores: a count table on these is on the same footing as that seed's models.
    """
    g = held_out(seed - seed_offset(), 1)  # = held_out(seed, 1) at offset 0, as the recorded runs drew it
    return torch.cat([torch.cat([x, y[:, -1:]], 1)
                      for x, y in (corpus.batch("val", 16, s["context"], generator=g) for _ in range(s["n_eval"]))])


def best_rates(runs: list[dict], lrs: list[float]) -> dict:
    """Per arch: the mean validation loss over seeds at each rate of ``lrs``, the rate with the lowest, whether it lies
    inside the grid, and at that rate every seed's validation and test loss (``runlog.choose_rate``; chapter 13,
    section 13.10)."""
    chosen = choose_rate(runs, lambda r: r["arch"], lambda r: r["val_loss"], lrs=lrs)
    return {arch: {"mean_val": c["mean"], "lr": c["lr"], "bracketed": c["bracketed"],
                   "seeds": [r["seed"] for r in c["runs"]], "val_loss": [r["val_loss"] for r in c["runs"]],
                   "test_loss": [r["test_loss"] for r in c["runs"]]}
            for arch, c in chosen.items()}


def render_parallel_rnn(results: dict) -> list[str]:
    """The printed summary of a ``parallel_rnn`` results dict: mean validation loss per arch and rate, the chosen rate,
    and each seed's test loss there (chapter 13, section 13.10)."""
    s = results["settings"]
    best = best_rates(results["runs"], s["lrs"])
    lines = [f"{'arch':12s} " + " ".join(f"{lr:>7g}" for lr in s["lrs"])
             + f"   best    test loss per seed   (mean validation loss, nats; {s['steps']} steps)"]
    for arch, b in best.items():
        v = dict((lr, x) for lr, x in b["mean_val"])
        lines.append(f"{arch:12s} " + " ".join(f"{v.get(lr, float('nan')):7.3f}" for lr in s["lrs"])
                     + f"   {b['lr']:<7g}{'' if b['bracketed'] else '(edge)'} " + " ".join(f"{t:.3f}" for t in b["test_loss"]))
    return lines


@register("parallel_rnn", "chapter 13b: LSTM, minGRU and Transformer of one size at four learning rates, several seeds, "
          "four times the page's steps", chapter=13, render=render_parallel_rnn,
          settings=SWEEP)
def parallel_rnn(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Every arch x rate of ``lrs`` x seed (``loss_run``), resumable (``runlog``); ``best`` lists each arch's chosen rate
    as ``[arch, lr, bracketed]`` (chapter 13, section 13.10)."""
    s = SWEEP[scale]
    corpus = CharCorpus()
    runs = map_logged(lambda c: loss_run(*c, s, corpus, device=device, progress=progress),
                      [(arch, lr, sd) for sd in seeds for lr in s["lrs"] for arch in ARCHS],
                      device=device, path=log_path("parallel_rnn", scale), settings=per_run(s, GRID_KEYS), progress=progress,
                      desc="archs x learning rates")
    best = best_rates(runs, s["lrs"])
    return {"settings": s, "runs": runs, "best": [[arch, b["lr"], b["bracketed"]] for arch, b in best.items()]}
