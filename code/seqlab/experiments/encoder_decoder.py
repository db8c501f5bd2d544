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
    aligned, near  the fraction of output steps i whose largest attention weight (for the Transformer,
                   averaged over the heads of the decoder layer that aligns best) sits on source position
                   L - 1 - i, or (near) within one position of it

``run_seed`` trains both models for the same number of steps on the same batches and measures
them; the chapter calls it for its live run, and ``encoder_decoder`` (registered as
``python -m seqlab.experiments encoder_decoder``) runs it for several seeds at a scale.
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

SETTINGS = {
    # chapter 5's task and GRU model at each scale; the Transformer's width, heads and depth
    "tiny": dict(min_len=3, max_len=6, lengths=[3, 6, 8], vocab=5, d_embed=8, d_hidden=16, d_model=8, n_heads=2,
                 n_layers=1, steps=4, batch=8, lr=3e-3, warmup=0, warmups=[0, 2], n_eval=16),
    "quick": dict(min_len=4, max_len=16, lengths=[4, 8, 12, 16, 20, 24], vocab=10, d_embed=32, d_hidden=32,
                  d_model=16, n_heads=2, n_layers=2, steps=600, batch=64, lr=3e-3, warmup=0, warmups=[0, 60], n_eval=256),
    "full": dict(min_len=4, max_len=40, lengths=[5, 10, 20, 30, 40, 50, 60], vocab=10, d_embed=64, d_hidden=128,
                 d_model=64, n_heads=4, n_layers=3, steps=4000, batch=128, lr=2e-3, warmup=0, warmups=[0, 400], n_eval=1024),
}

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
    original Transformer's recipe had a warm-up; chapter 7 shows that Post-Norm needs one), then stays.
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


@torch.no_grad()
def evaluate(model: nn.Module, L: int, vocab: int, n: int, device=None) -> dict:
    """Accuracy per output symbol on ``n`` fresh sources of exactly ``L`` symbols, greedy decoding (chapter 7).

    Also the fraction of steps whose attention peaks on the right source position (``aligned``) or
    within one of it (``near``) and, for the Transformer, the decoder layer it was read from. The sources come from the
    held-out stream ``seqlab.seeding.held_out(L)``: they depend only on L (the same for every model and seed).
    """
    device = torch.device(device or "cpu")
    t = ReverseTask(L, L, vocab=vocab)
    src, _, tgt_out, lengths = (x.to(device) for x in t.sample(n, generator=held_out(L)))
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
    attention); the command leaves them out of its results file.
    """
    models = make_models(s, seed)
    log = train_together(models, s, seed, device, progress)
    result = {"seed": seed, "params": {n: count(m) for n, m in models.items()},
              "d_ff": models["Transformer"].config.d_ff,
              "step_ms": {n: 1e3 * statistics.median(log[n]["seconds"]) for n in models},
              "loss": {n: log[n]["loss"] for n in models},
              "by_length": {n: {L: evaluate(m, L, s["vocab"], s["n_eval"], device) for L in s["lengths"]}
                            for n, m in models.items()}}
    if keep_models:
        result["models"] = models
    return result


def render_encoder_decoder(results: dict) -> list[str]:
    """The table of an ``encoder_decoder`` results dict: per warm-up and model, parameters, milliseconds per step and
    accuracy at each length, means over seeds (chapter 7)."""
    s, runs = results["settings"], results["runs"]
    lines = [f"{'model':16s} {'warm-up':>7s} {'params':>7s} {'ms/step':>8s} " + " ".join(f"L={L:<4d}" for L in s["lengths"])]
    for warmup in s["warmups"]:
        rs = [r for r in runs if r["warmup"] == warmup]
        for name in NAMES:
            acc = [statistics.mean(r["by_length"][name][str(L)]["accuracy"] for r in rs) for L in s["lengths"]]
            ms = statistics.mean(r["step_ms"][name] for r in rs)
            lines.append(f"{name:16s} {warmup:7d} {rs[0]['params'][name]:7d} {ms:8.1f} " + " ".join(f"{a:6.2f}" for a in acc))
    seeds = list(dict.fromkeys(r["seed"] for r in runs))
    lines.append(f"(trained on lengths {s['min_len']}-{s['max_len']}, {s['steps']} steps each, "
                 f"accuracy per symbol, mean over seeds {seeds})")
    return lines


@register("encoder_decoder", "chapter 7: encoder-decoder Transformer vs GRU with attention on reversal, by length",
          chapter=7, render=render_encoder_decoder)
def encoder_decoder(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 7's comparison at ``scale`` ('tiny' for tests, 'quick', 'full') for every seed and every warm-up
    length of ``warmups`` (0: the page's constant rate): accuracy by length, and the loss over the last 50 steps."""
    s = SETTINGS[scale]
    runs = []
    for warmup in s["warmups"]:
        for seed in seeds:
            r = run_seed(dict(s, warmup=warmup), seed, device, progress)
            r["warmup"] = warmup
            r["loss_last50"] = {n: statistics.mean(v[-50:]) for n, v in r.pop("loss").items()}
            r["by_length"] = {n: {str(L): v for L, v in d.items()} for n, d in r["by_length"].items()}  # JSON keys
            runs.append(r)
    return {"settings": s, "runs": runs}
