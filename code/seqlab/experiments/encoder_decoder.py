"""The encoder-decoder Transformer against chapter 5's GRU with attention on reversal (chapter 7).

Glossary, code name -> book notation:

    task           chapter 5's ``ReverseTask``: sources of L symbols, L uniform in [min_len, max_len];
                   the target is the source backwards, then EOS
    "GRU + attention"  chapter 5's ``Seq2Seq`` (bidirectional GRU encoder, GRU decoder, additive attention)
    "Transformer"  ``EncoderDecoder`` (N encoder and N decoder layers, Post-Norm, sinusoidal positions),
                   its FFN width d_ff chosen so that it has about as many parameters as the GRU model
    step_ms        milliseconds per training step (forward, backward, update), the median over the run;
                   both models train in one loop, a step of each in turn, so that load on a shared
                   machine slows both alike
    accuracy       per output symbol, greedy decoding, on fresh sources of exactly L symbols
    val            the mean accuracy per symbol over the trained lengths on *validation* sources (the held-out
                   stream 1, never the test sources of ``by_length``): what a learning rate is chosen on
    loss_first_half, loss_last50
                   the mean training loss over the first half of the steps and over the last 50 (nats)
    aligned, near  the fraction of output steps i whose largest attention weight (for the Transformer,
                   averaged over the heads of the decoder layer that aligns best) sits on source position
                   L - 1 - i, or (near) within one position of it

``run_seed`` trains both models for the same number of steps on the same batches and measures
them; the chapter calls it for its live run, and ``encoder_decoder`` (registered as
``python -m seqlab.experiments encoder_decoder``) runs it for several seeds, both schedules and a grid of
learning rates ``lrs`` at a scale (a warm-up only at the page's rate; resumable run by run). Both models of one run share the run's rate; each
model's best rate is then chosen on ``val`` by ``runlog.choose_rate`` (``best_runs``), so each is compared at
its own rate, and reported on the test sources.
"""
from __future__ import annotations

import statistics

import torch
from torch import nn

from ..config import seed_everything
from ..seeding import held_out
from ..data.tasks import ReverseTask
from ..models.encoder_decoder import EncoderDecoder, EncoderDecoderConfig
from ..models.seq2seq import Seq2Seq
from ..train import sequence_loss, to_device, train, warmup_lr
from .attention import teacher_forced_loss
from . import register
from .runlog import choose_rate, log_path, map_logged, per_run

SETTINGS = {
    # chapter 5's task and GRU model at each scale; the Transformer's width, heads and depth
    "tiny": dict(min_len=3, max_len=6, lengths=[3, 6, 8], vocab=5, d_embed=8, d_hidden=16, d_model=8, n_heads=2,
                 n_layers=1, steps=4, batch=8, lr=3e-3, warmup=0, warmups=[0, 2], lrs=[3e-3, 1e-2], n_eval=16),
    "quick": dict(min_len=4, max_len=16, lengths=[4, 8, 12, 16, 20, 24], vocab=10, d_embed=32, d_hidden=32,
                  d_model=16, n_heads=2, n_layers=2, steps=600, batch=64, lr=3e-3, warmup=0, warmups=[0, 60],
                  lrs=[1e-3, 3e-3, 1e-2, 3e-2], n_eval=256),
    "full": dict(min_len=4, max_len=40, lengths=[5, 10, 20, 30, 40, 50, 60], vocab=10, d_embed=64, d_hidden=128,
                 d_model=64, n_heads=4, n_layers=3, steps=4000, batch=128, lr=2e-3, warmup=0, warmups=[0, 400],
                 lrs=[7e-4, 2e-3, 6e-3], n_eval=1024),
}

GRID_KEYS = ("lr", "warmup", "lrs", "warmups")  # what spans the sweep's grid, not what one run depends on
NAMES = ("GRU + attention", "Transformer")


def count(model: nn.Module) -> int:
    """Number of parameters (chapter 7)."""
    return sum(p.numel() for p in model.parameters())


def transformer_config(task: ReverseTask, d_model: int, n_heads: int, n_layers: int, n_params: int) -> EncoderDecoderConfig:
    """The ``EncoderDecoderConfig`` whose FFN width d_ff brings its parameter count closest to ``n_params`` (chapter 7)."""
    def config(d_ff):
        return EncoderDecoderConfig(task.n_tokens, task.n_tokens, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                                    d_ff=d_ff)

    def size(d_ff):  # the count is linear in d_ff: 2 N (2 d d_ff + d_ff + d) + the rest
        return count(EncoderDecoder(config(d_ff)))

    per_unit = size(2) - size(1)
    d_ff = max(1, round((n_params - size(1)) / per_unit) + 1)
    return config(d_ff)


def make_models(s: dict, seed: int = 0) -> dict[str, nn.Module]:
    """Chapter 5's GRU with additive attention and a Transformer of about its size, both seeded by ``seed`` (chapter 7)."""
    task = ReverseTask(s["min_len"], s["max_len"], vocab=s["vocab"])
    seed_everything(seed)
    gru = Seq2Seq(task.n_tokens, task.n_tokens, s["d_embed"], s["d_hidden"], attention="additive")
    cfg = transformer_config(task, s["d_model"], s["n_heads"], s["n_layers"], count(gru))
    seed_everything(seed)
    return {"GRU + attention": gru, "Transformer": EncoderDecoder(cfg)}


def train_together(models: dict[str, nn.Module], s: dict, seed: int = 0, device=None, progress: bool = False) -> dict:
    """Train every model for ``s["steps"]`` steps on the same batches, a step of each in turn (chapter 7).

    Each step of each model is one ``train`` call (AdamW with weight decay 0.01, the gradient norm
    clipped at 1, teacher forcing, as in chapter 5) continuing its own optimizer. Both share one
    schedule: the rate rises linearly to ``s["lr"]`` over the first ``s["warmup"]`` steps (the
    original Transformer's recipe had a warm-up; chapter 7 shows that a deep Post-Norm stack at the full rate needs one, or a lower
    constant rate), then stays.
    Returns per model the training loss of every step and the seconds of every step (forward,
    backward, update).
    """
    device = torch.device(device or "cpu")
    task = ReverseTask(s["min_len"], s["max_len"], vocab=s["vocab"])
    batches = seed_everything(seed)  # SEQLAB_SEED_OFFSET shifts it
    opts = {name: torch.optim.AdamW(m.to(device).train().parameters(), lr=s["lr"]) for name, m in models.items()}
    log = {name: {"loss": [], "seconds": []} for name in models}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=s["steps"], desc="reversal", leave=False)
    for step in range(s["steps"]):
        batch = to_device(task.sample(s["batch"], generator=batches), device)
        rate = warmup_lr(step, s["lr"], s["warmup"])
        for name, model in models.items():
            h = train(model, lambda: batch, steps=1, lr=rate, clip=1.0, step_loss=teacher_forced_loss,
                      optimizer=opts[name], device=device, progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            log[name]["seconds"].append(h.seconds)
            log[name]["loss"].append(h.loss[-1])
        if bar is not None:
            bar.update(1)
    for model in models.values():
        model.eval()
    return log


def cross_alignment(weights: torch.Tensor, alignment: torch.Tensor) -> dict:
    """How well weights (B, N, H, T, S) follow ``alignment`` (B, T), in the decoder layer that follows it best (chapter 7).

    Each layer's weights are averaged over its heads; ``aligned`` is the fraction of steps whose
    largest weight sits on the right source position, ``near`` within one position of it, and
    ``layer`` the layer (0 = bottom) with the highest ``near``.
    """
    T = alignment.shape[1]
    miss = [(weights[:, l, :, :T].mean(1).argmax(-1) - alignment).abs() for l in range(weights.shape[1])]  # (B, T) each
    near = [(m <= 1).float().mean().item() for m in miss]
    best = max(range(len(near)), key=near.__getitem__)
    return {"aligned": (miss[best] == 0).float().mean().item(), "near": near[best], "layer": best}


def head_alignment(weights: torch.Tensor, alignment: torch.Tensor) -> dict:
    """Alignment of every head of every decoder layer, and the signed offsets of the misses (chapter 7).

    ``weights`` (B, N, H, T, S), ``alignment`` (B, T). ``aligned[l][h]`` and ``near[l][h]``: the fraction of steps
    whose largest weight *of that one head* sits on the right source position, or within one of it.
    ``offsets``: for the heads-averaged weights of the layer that ``cross_alignment`` picks, how often each signed
    offset (argmax − right position) occurs among the misses, as ``{offset: share}``: always +1 would be a
    systematic shift, a mixture of −1 and +1 a blur.
    """
    T = alignment.shape[1]
    N, H = weights.shape[1], weights.shape[2]
    off = [[weights[:, l, h, :T].argmax(-1) - alignment for h in range(H)] for l in range(N)]  # (B, T) each
    best = cross_alignment(weights, alignment)["layer"]
    miss = weights[:, best, :, :T].mean(1).argmax(-1) - alignment  # (B, T), signed
    missed = miss[miss != 0]
    values, counts = missed.unique(return_counts=True)
    return {"aligned": [[(o == 0).float().mean().item() for o in row] for row in off],
            "near": [[(o.abs() <= 1).float().mean().item() for o in row] for row in off],
            "layer": best, "offsets": {int(v): c.item() / max(len(missed), 1) for v, c in zip(values, counts)}}


@torch.no_grad()
def evaluate(model: nn.Module, L: int, vocab: int, n: int, device=None, stream: int = 0) -> dict:
    """Accuracy per output symbol on ``n`` fresh sources of exactly ``L`` symbols, greedy decoding (chapter 7).

    Also the fraction of steps whose attention peaks on the right source position (``aligned``) or
    within one of it (``near``) and, for the Transformer, the decoder layer it was read from. The sources come from the
    held-out stream ``seqlab.seeding.held_out(L, stream)``: they depend only on L (the same for every model and seed);
    stream 0 is the test sources, stream 1 the validation sources a learning rate is chosen on.
    """
    device = torch.device(device or "cpu")
    t = ReverseTask(L, L, vocab=vocab)
    src, _, tgt_out, lengths = (x.to(device) for x in t.sample(n, generator=held_out(L, stream)))
    ids, weights = model.greedy_decode(src, L + 1, t.bos, lengths)  # (B, L + 1); weights per model
    out = {"accuracy": (ids[:, :L] == tgt_out[:, :L]).float().mean().item()}
    alignment = t.alignment(lengths)[:, :L]  # (B, L): L - 1 - i
    if weights is not None and weights.dim() == 5:  # the Transformer: (B, N, H, L + 1, S)
        out.update(cross_alignment(weights, alignment))
    elif weights is not None:  # the GRU: (B, L + 1, S)
        miss = (weights[:, :L].argmax(-1) - alignment).abs()  # (B, L)
        out["aligned"], out["near"] = (miss == 0).float().mean().item(), (miss <= 1).float().mean().item()
    return out


def run_seed(s: dict, seed: int = 0, device=None, progress: bool = False, keep_models: bool = False) -> dict:
    """Build, train (equal steps, interleaved) and evaluate both models for one seed; plain numbers (chapter 7).

    ``keep_models=True`` also returns the trained models under ``"models"`` (the chapter draws their
    attention); the command leaves them out of its results file. ``val`` is measured on validation sources
    (stream 1) at the lengths trained on (every length up to ``max_len``, that one included), ``by_length`` on the
    test sources (stream 0) at every length.
    """
    models = make_models(s, seed)
    log = train_together(models, s, seed, device, progress)
    result = {"seed": seed, "params": {n: count(m) for n, m in models.items()},
              "d_ff": models["Transformer"].config.d_ff,
              "step_ms": {n: 1e3 * statistics.median(log[n]["seconds"]) for n in models},
              "loss": {n: log[n]["loss"] for n in models},
              "loss_first_half": {n: statistics.mean(log[n]["loss"][: s["steps"] // 2]) for n in models},
              "loss_last50": {n: statistics.mean(log[n]["loss"][-50:]) for n in models},
              "val": {n: statistics.mean(evaluate(m, L, s["vocab"], s["n_eval"], device, stream=1)["accuracy"]
                                         for L in s["lengths"] if L <= s["max_len"]) for n, m in models.items()},
              "by_length": {n: {L: evaluate(m, L, s["vocab"], s["n_eval"], device) for L in s["lengths"]}
                            for n, m in models.items()}}
    if keep_models:
        result["models"] = models
    return result


def best_runs(runs: list[dict], warmup: int) -> dict[str, list[dict]]:
    """Per model, the runs (one per seed) at the learning rate whose mean validation accuracy ``val`` is highest among
    the runs with this ``warmup``, chosen by ``runlog.choose_rate``; each run's ``lr`` and the model's ``bracketed``
    flag are kept in the per-model views returned (chapter 7)."""
    views = [dict(r, model=n, val_model=r["val"][n]) for r in runs if r["warmup"] == warmup for n in NAMES]
    chosen = choose_rate(views, group=lambda v: v["model"], score=lambda v: v["val_model"], lower=False)
    return {n: [dict(v, bracketed=chosen[n]["bracketed"], val_by_lr=chosen[n]["mean"]) for v in chosen[n]["runs"]]
            for n in NAMES}


def render_encoder_decoder(results: dict) -> list[str]:
    """The table of an ``encoder_decoder`` results dict: per warm-up and model, each learning rate's mean validation
    accuracy, then at the chosen rate the parameters and test accuracy at each length, means over seeds (chapter 7).
    The runs' ``step_ms`` is left out: a wall-clock time that moves with whatever else the machine runs, which a
    comparison of the models should not read (chapter 9 times them side by side)."""
    s, runs = results["settings"], results["runs"]
    lines = [f"{'model':16s} {'warm-up':>7s} {'lr':>7s} {'params':>7s} "
             + " ".join(f"S={S:<4d}" for S in s["lengths"]) + "  val by lr"]
    for warmup in s["warmups"]:
        best = best_runs(runs, warmup)
        for name in NAMES:
            rs = best[name]
            acc = [statistics.mean(r["by_length"][name][str(L)]["accuracy"] for r in rs) for L in s["lengths"]]
            by_lr = ", ".join(f"{lr:g}: {v:.3f}" for lr, v in rs[0]["val_by_lr"])
            lines.append(f"{name:16s} {warmup:7d} {rs[0]['lr']:7g} {rs[0]['params'][name]:7d} "
                         + " ".join(f"{a:6.2f}" for a in acc) + f"  {by_lr}")
    seeds = list(dict.fromkeys(r["seed"] for r in runs))
    lines.append(f"(trained on lengths {s['min_len']}-{s['max_len']}, {s['steps']} steps each; each model at the rate "
                 f"of {s['lrs']} with the best validation accuracy; test accuracy per symbol, mean over seeds {seeds})")
    return lines


@register("encoder_decoder", "chapter 7: encoder-decoder Transformer vs GRU with attention on reversal, by length, "
          "over a learning-rate grid", chapter=7, render=render_encoder_decoder)
def encoder_decoder(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 7's comparison at ``scale`` ('tiny' for tests, 'quick', 'full') for every seed: with a constant rate at
    every learning rate of ``lrs`` (both models of a run share it), and with each other warm-up of ``warmups`` at the
    page's rate ``lr``:
    validation and test accuracy by length, the training loss over the first half and the last 50 steps; resumable
    run by run."""
    s = SETTINGS[scale]

    def one(c):  # (lr, warmup, seed): everything else is in the fingerprinted settings
        lr, warmup, seed = c
        r = run_seed(dict(s, lr=lr, warmup=warmup), seed, device, progress)
        del r["loss"]
        r.update(lr=lr, warmup=warmup)
        r["by_length"] = {n: {str(L): v for L, v in d.items()} for n, d in r["by_length"].items()}  # JSON keys
        return r

    # the grid at the constant rate; a warm-up only at the page's rate (its chosen rate is then that one, unbracketed)
    configs = [(lr, 0, sd) for lr in s["lrs"] for sd in seeds] + [(s["lr"], w, sd) for w in s["warmups"] if w for sd in seeds]
    runs = map_logged(one, configs, device=device, path=log_path("encoder_decoder", scale), settings=per_run(s, GRID_KEYS),
                      progress=progress, desc="encoder-decoder runs")
    return {"settings": s, "runs": runs}
