"""Recurrent networks trained: a character RNN (chapter 2), exploding gradients and clipping (chapter 3),
and delayed recall against the lag for the RNN, LSTM and GRU (chapter 4).

Glossary, code name -> book notation::

    bits           bits per character on almost all of the validation text: consecutive windows of 257
                   characters, each predicting 256 from h_0 = 0; a leftover shorter than a window is dropped
    rho            the spectral radius of W_hh, set at initialisation (chapter 3)
    clip           the threshold c of gradient clipping: g <- g min(1, c / ||g||)
    lag            steps between a symbol and its recall (chapter 4); chance is 1 / vocab

Each chapter calls the function that trains one run (``train_char_lm``, ``train_adder``,
``recall_accuracy``); the registered experiments (``char_rnn``, ``clipping``, ``gating``) run the
same function over seeds, cells and lags at a scale, the runs spread over ``torchrun``'s processes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as validate
from ..config import seed_everything
from ..seeding import held_out
from ..data.corpus import CharCorpus
from ..data.tasks import AddingProblem, DelayedRecall
from ..models.charlm import RecurrentLM
from ..models.ngram import NGramLM
from ..probes import set_spectral_radius
from ..train import accuracy, bits, sequence_loss, train
from . import mean_over, register
from .distributed import map_runs


# ---------------------------------------------------------------- chapter 2: a character RNN
def validation_windows(corpus: CharCorpus, window: int = 257) -> torch.Tensor:
    """The validation text as consecutive windows of ``window`` characters: (N, window) (chapter 2).

    A remainder shorter than a window at the end is dropped, so almost all of the text is kept, not all of it.
    """
    validate.positive_int("window", window, minimum=2)
    return corpus.val[: len(corpus.val) // window * window].view(-1, window)


def validation_bits(model: nn.Module, windows: torch.Tensor) -> float:
    """Bits per character of ``model`` predicting each next character of ``windows`` (N, T + 1) (chapter 2)."""
    with torch.no_grad():
        logits, _ = model(windows[:, :-1])                           # (N, T, V)
    return bits(sequence_loss(logits, windows[:, 1:]).item())


def train_char_lm(model: nn.Module, corpus: CharCorpus, *, steps: int, batch: int, context: int, lr: float,
                  eval_every: int, generator: torch.Generator, device=None, progress: bool | None = None,
                  desc: str = "char RNN"):
    """Train a character model on random windows of the training text, evaluating on the validation text (chapter 2).

    Returns ``(history, start_bits)``: the ``History`` (``history.eval["val"]`` in bits per
    character every ``eval_every`` steps) and the validation bits before training.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    windows = validation_windows(corpus).to(device)                   # (180, 257) for the default text
    start_bits = validation_bits(model, windows)
    history = train(model, lambda: corpus.batch("train", batch, context, generator=generator), steps=steps, lr=lr,
                    clip=1.0, eval_fn=lambda m: {"val": validation_bits(m, windows)}, eval_every=eval_every,
                    device=device, progress=progress, desc=desc)
    return history, start_bits


CHAR_SETTINGS = {
    "tiny": dict(cells=["rnn"], d_embed=8, d_hidden=16, n_layers=1, batch=4, context=16, steps=5, lr=5e-3, eval_every=5),
    "quick": dict(cells=["rnn"], d_embed=64, d_hidden=192, n_layers=1, batch=32, context=64, steps=500, lr=5e-3,
                  eval_every=50),                                       # chapter 2's
    "full": dict(cells=["rnn", "lstm", "gru"], d_embed=64, d_hidden=512, n_layers=2, batch=64, context=128,
                 steps=3000, lr=2e-3, eval_every=200),
}


def render_char_rnn(results: dict) -> list[str]:
    """The table of a ``char_rnn`` results dict: the n-grams' bits per character, then each run's (chapter 2)."""
    lines = [f"{'model':8s} {'seed':>4s} {'bits/char':>9s}",
             *(f"{n}-gram{'':2s} {'':>4s} {b:9.3f}" for n, b in results["ngram_bits"].items())]
    return lines + [f"{r['cell']:8s} {r['seed']:4d} {r['bits']:9.3f}" for r in results["runs"]]


@register("char_rnn", "chapter 2: a character RNN (LSTM and GRU at full scale) against the n-grams, bits per char",
          chapter=2, render=render_char_rnn)
def char_rnn(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 2's character language model at ``scale``, for every seed (and cell at 'full')."""
    s = CHAR_SETTINGS[scale]
    corpus = CharCorpus()
    wb = NGramLM(5, corpus.vocab_size, smoothing="witten-bell").fit(corpus.train)
    ngram = {n: wb.truncated(n).bits_per_char(corpus.val, 4) for n in (1, 2, 3, 5)}

    def one(c):
        cell, seed = c
        g = seed_everything(seed)
        model = RecurrentLM(corpus.vocab_size, s["d_embed"], s["d_hidden"], cell=cell, n_layers=s["n_layers"],
                            form="fused").to(device)
        h, start_bits = train_char_lm(model, corpus, steps=s["steps"], batch=s["batch"], context=s["context"],
                                      lr=s["lr"], eval_every=s["eval_every"], generator=g, device=device,
                                      progress=progress, desc=f"{cell} seed {seed}")
        return {"cell": cell, "seed": seed, "start_bits": start_bits, "bits": h.final("val"), "eval_step": h.eval_step,
                "eval_bits": h.eval["val"], "steps": h.steps, "seconds": round(h.seconds, 2)}

    runs = map_runs(one, [(c, sd) for c in s["cells"] for sd in seeds], progress=progress, desc="char models")
    return {"settings": s, "ngram_bits": {str(n): b for n, b in ngram.items()}, "runs": runs}


# ---------------------------------------------------------------- chapter 3: exploding gradients and clipping
class Adder(nn.Module):
    """A tanh RNN reading (value, marker) pairs; the sum is read out from the last state (chapter 3).

    ``W_hh`` starts with spectral radius ``rho``: above 1 the backward pass can explode.
    """

    def __init__(self, width: int, rho: float):
        super().__init__()
        self.rnn = nn.RNN(2, width, batch_first=True)
        set_spectral_radius(self.rnn.weight_hh_l0, rho)
        self.head = nn.Linear(width, 1)

    def forward(self, x):                           # x: (B, T, 2)
        h, _ = self.rnn(x)                          # (B, T, width)
        return self.head(h[:, -1]).squeeze(-1)      # (B,)


ADDER_BATCH = 64   # sequences in each of train_adder's batches


def adder_batches(seed: int, length: int = 50):
    """The stream of ``train_adder``'s batches for ``seed``: a function drawing the next (x, y) of ``ADDER_BATCH``
    sequences of the adding problem, from a generator of its own (chapter 3)."""
    adding = AddingProblem(length=length)
    g = torch.Generator().manual_seed(seed)
    return lambda: adding.sample(ADDER_BATCH, g)


def train_adder(rho: float, clip: float | None, seed: int, *, width: int, steps: int, optimizer: str = "sgd",
                lr: float = 0.05, length: int = 50, device=None, progress: bool | None = None):
    """Train an ``Adder`` on the adding problem with plain SGD (or AdamW with ``optimizer="adam"``), clipped at ``clip`` or not (chapter 3).

    The initial weights and the batches depend on ``seed`` only, so runs with and without
    clipping start from the same point and see the same data. Returns the ``History``.
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    torch.manual_seed(seed)                         # the same initial weights for every clip setting
    model = Adder(width, rho).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd" else None   # None: the default AdamW
    return train(model, adder_batches(seed, length), steps=steps, lr=lr, clip=clip, loss_fn=F.mse_loss,
                 optimizer=opt, device=device, progress=progress, desc=f"rho={rho}, clip={clip}")


def adder_chance_losses(seed: int, steps: int, *, length: int = 50) -> list[float]:
    """The loss of predicting the mean, 1, on each batch ``train_adder`` draws for ``seed`` over ``steps`` steps (chapter 3).

    The chance level on the very batches a run saw: a run's final loss set beside it differs only by what the
    model predicts, not by which batches happened to come. Costs the sampling, no training.
    """
    validate.positive_int("steps", steps)
    batches = adder_batches(seed, length)
    return [F.mse_loss(torch.ones(ADDER_BATCH), batches()[1]).item() for _ in range(steps)]


CLIP_SETTINGS = {
    "tiny": dict(width=8, steps=30, rhos=[2.0], clips=[None, 1.0]),
    "quick": dict(width=32, steps=400, rhos=[0.9, 2.0], clips=[None, 1.0]),            # chapter 3's
    "full": dict(width=64, steps=1500, rhos=[0.9, 1.5, 2.0, 3.0], clips=[None, 10.0, 1.0, 0.1]),
}


def render_clipping(results: dict) -> list[str]:
    """The table of a ``clipping`` results dict: per spectral radius and clip threshold, the runs that diverged, the
    mean final MSE of the others and the largest gradient norm, beside the chance MSE (chapter 3)."""
    s, runs = results["settings"], results["runs"]
    lines = [f"{'rho':>4s} {'clip':>5s} {'diverged':>9s} {'final MSE':>9s} {'largest |g|':>11s}   "
             f"(chance MSE {results['chance']:.3f})"]
    for rho in s["rhos"]:
        for clip in s["clips"]:
            rs = [r for r in runs if (r["rho"], r["clip"]) == (rho, clip)]
            div = sum(r["diverged"] for r in rs)
            fin = [r["final_loss"] for r in rs if not r["diverged"]]
            big = max((r["max_grad_norm"] or 0.0) for r in rs)
            lines.append(f"{rho:4g} {str(clip):>5s} {f'{div}/{len(rs)}':>9s} "
                         f"{(f'{sum(fin) / len(fin):9.3f}' if fin else f'{chr(8212):>9s}')} {big:11.3g}")
    return lines


@register("clipping", "chapter 3: exploding gradients on the adding problem, SGD with and without clipping",
          chapter=3, render=render_clipping)
def clipping(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 3's clipping experiment at ``scale``: every spectral radius x clip threshold x seed."""
    s = CLIP_SETTINGS[scale]
    chance = AddingProblem(length=50).chance

    def one(c):
        rho, clip, seed = c
        h = train_adder(rho, clip, seed, width=s["width"], steps=s["steps"], device=device, progress=progress)
        finite = [v for v in h.grad_norm if v < float("inf")]
        return {"rho": rho, "clip": clip, "seed": seed, "diverged": h.diverged, "steps": h.steps,
                "final_loss": sum(h.loss[-50:]) / len(h.loss[-50:]), "max_grad_norm": max(finite) if finite else None,
                "first_grad_norm": h.grad_norm[0]}

    runs = map_runs(one, [(r, c, sd) for r in s["rhos"] for c in s["clips"] for sd in seeds], progress=progress,
                    desc="adders")
    return {"settings": s, "chance": chance, "runs": runs}


# ---------------------------------------------------------------- chapter 4: accuracy against the lag
SPECS = {
    "RNN": dict(cell="rnn"),
    "LSTM": dict(cell="lstm", forget_bias=3.0),
    "GRU": dict(cell="gru", update_bias=2.0),
}


RECALL_TRAINING = dict(vocab=8, batch=64, lr=3e-3, clip=1.0, eval_every=50, n_eval=1024, stop_at=0.98)
"""The task ``recall_accuracy`` trains on (``vocab`` symbols), and how it trains and scores (chapter 4 reads its task and its
chance from here, and glues the rest into its prose and its standard error)."""


def recall_accuracy(spec: dict, lag: int, seed: int, *, steps: int, width: int, device=None,
                    progress: bool | None = None, return_model: bool = False) -> tuple:
    """Train a fresh model on delayed recall at ``lag``; return its accuracy on ``RECALL_TRAINING["n_eval"]`` (1,024)
    held-out sequences and the steps taken (chapter 4).

    ``spec`` holds the ``RecurrentLM`` options of the cell (``SPECS``); it trains on batches of fresh sequences
    (AdamW, clipped; sizes, rate and threshold in ``RECALL_TRAINING``), scores the held-out sequences every
    ``eval_every`` steps and stops early once their accuracy passes ``stop_at``, so the accuracy returned is the
    stopping set's. ``return_model``: also return the trained model, third.
    """
    r = RECALL_TRAINING
    task = DelayedRecall(lag=lag, vocab=r["vocab"])
    gen = seed_everything(seed)
    model = RecurrentLM(task.input_vocab, 16, width, form="fused", **spec).to(device)
    x_eval, y_eval = (t.to(device) for t in task.sample(r["n_eval"], generator=held_out(seed)))
    history = train(
        model, lambda: task.sample(r["batch"], gen), steps=steps, lr=r["lr"], clip=r["clip"], eval_every=r["eval_every"],
        eval_fn=lambda m: {"acc": accuracy(m(x_eval)[0], y_eval)},
        stop_when=lambda h: h.eval["acc"][-1] > r["stop_at"], progress=progress, desc=f"{spec['cell']} lag {lag}",
    )
    return (history.final("acc"), history.steps) + ((model,) if return_model else ())


GATING_SETTINGS = {
    "tiny": dict(lags=[3], steps=10, width=8),
    "quick": dict(lags=[5, 10, 30], steps=600, width=32),                   # chapter 4's
    "full": dict(lags=[5, 10, 20, 30, 45, 60], steps=3000, width=64),
}


def render_gating(results: dict) -> list[str]:
    """The table of a ``gating`` results dict: per lag and cell, the mean accuracy and mean steps over seeds
    (chapter 4)."""
    runs = results["runs"]
    cells = list(dict.fromkeys(r["cell"] for r in runs))
    lines = [f"{'lag':>4s} " + " ".join(f"{n:>14s}" for n in cells) + "   (mean accuracy, mean steps)"]
    for lag in results["settings"]["lags"]:
        lines.append(f"{lag:4d} " + " ".join(f"{mean_over(runs, 'accuracy', lag=lag, cell=n):7.3f} "
                                             f"{mean_over(runs, 'steps', lag=lag, cell=n):6.0f}" for n in cells))
    return lines


@register("gating", "chapter 4: delayed recall accuracy against the lag for the RNN, LSTM and GRU", chapter=4,
          render=render_gating)
def gating(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 4's accuracy-against-lag experiment at ``scale``: every lag x cell x seed."""
    s = GATING_SETTINGS[scale]

    def one(c):
        lag, name, seed = c
        acc, steps = recall_accuracy(SPECS[name], lag, seed, steps=s["steps"], width=s["width"], device=device,
                                     progress=progress)
        return {"lag": lag, "cell": name, "seed": seed, "accuracy": acc, "steps": steps}

    runs = map_runs(one, [(lag, n, sd) for lag in s["lags"] for n in SPECS for sd in seeds], progress=progress,
                    desc="recall runs")
    return {"settings": s, "chance": DelayedRecall(lag=1, vocab=8).chance, "runs": runs}
