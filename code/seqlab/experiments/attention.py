"""Attention's experiments: reversal with and without attention (chapter 5), how much gradient reaches each
input (chapter 6), a GPT against an LSTM of the same size in the same time (chapter 7), and position
schemes run past their training length (chapter 8).

Glossary, code name -> book notation::

    L              source length of the reversal task (chapter 5)
    share          mean ||d(u . y_T) / d x_t|| over the inputs t < T, at initialisation (chapter 6)
    tokens_per_s   training tokens per second, from the fastest of interleaved timing rounds (chapter 7)
    T_train        the length a language model is trained at; it is evaluated at T_eval = 4 T_train (chapter 8)

Each chapter calls the function that does one run (``fit_seq2seq``/``evaluate_reversal``,
``input_gradients``/``gradient_share``, ``equal_time_race``, ``train_position_lm``/``loss_by_position``);
the registered experiments (``reversal``, ``dilution``, ``race``, ``positions``) run them over seeds at a scale.
"""
from __future__ import annotations

import copy
import math
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from ..config import seed_everything
from ..seeding import batches as batch_stream, held_out
from ..data.corpus import CharCorpus
from ..data.tasks import IGNORE, ReverseTask
from ..measure import count_parameters, fit_slope, time_calls
from ..models.attention import MultiHeadAttention
from ..models.charlm import RecurrentLM
from ..models.seq2seq import Seq2Seq
from ..models.transformer import GPT, GPTConfig
from ..train import bits, logits_of, sequence_loss, train
from . import mean_over, register
from .distributed import map_runs


# ---------------------------------------------------------------- chapter 5: reversal, with and without attention
def fit_seq2seq(model: Seq2Seq, task: ReverseTask, *, steps: int, batch: int, lr: float, seed: int = 0,
                device=None) -> Seq2Seq:
    """Train an encoder-decoder on ``task`` with teacher forcing, AdamW (weight decay 0.01) and clipping at 1;
    returns it in eval mode (chapter 5).

    The batches come from a generator seeded with ``seed`` plus ``SEQLAB_SEED_OFFSET``.
    """
    batches = batch_stream(seed)
    train(model.to(device), lambda: task.sample(batch, generator=batches), steps=steps, lr=lr, weight_decay=0.01,
          clip=1.0, step_loss=teacher_forced_loss, device=device, progress=False)
    return model.eval()


def teacher_forced_loss(model: nn.Module, batch) -> torch.Tensor:
    """The ``step_loss`` of an encoder-decoder (chapter 5): a batch ``(src, tgt_in, tgt_out, lengths)``, every
    target step at once from the true previous tokens."""
    src, tgt_in, tgt_out, lengths = batch
    logits, _ = model(src, tgt_in, lengths)  # (B, T, V)
    return sequence_loss(logits, tgt_out)


@torch.no_grad()
def evaluate_reversal(model: Seq2Seq, S: int, *, vocab: int, n: int, device=None) -> tuple[float, float | None]:
    """Greedy-decode ``n`` new sources of length ``S``; returns (accuracy per output symbol, share of steps whose
    largest attention weight is on the right source position, or None without attention) (chapter 5).

    The sources come from the held-out stream ``seqlab.seeding.held_out(S)``: one set per length, the same for
    every model and seed.
    """
    t = ReverseTask(S, S, vocab=vocab)
    src, _, tgt_out, lengths = (x.to(device) for x in t.sample(n, generator=held_out(S)))
    ids, weights = model.greedy_decode(src, S + 1, t.bos, lengths)      # (B, S+1), (B, S+1, S) or None
    acc = (ids[:, :S] == tgt_out[:, :S]).float().mean().item()
    aligned = None if weights is None else aligned_share(weights[:, :S], t.alignment(lengths)[:, :S].to(device))
    return acc, aligned


def aligned_share(weights: torch.Tensor, alignment: torch.Tensor) -> float:
    """The share of real target steps whose largest attention weight is on the right source position (chapter 5).

    ``weights`` (B, T, S) holds a_bij, ``alignment`` (B, T) the right position j*_bi (``ReverseTask.alignment``:
    L - 1 - i), ``IGNORE`` on padded steps, which count neither way: Σ_{b, i real} [argmax_j a_bij = j*_bi] over the
    number of real steps, every sequence's steps pooled.
    """
    if weights.dim() != 3 or tuple(weights.shape[:2]) != tuple(alignment.shape):
        raise ValueError(f"weights must be (B, T, S) and alignment (B, T), got shapes {tuple(weights.shape)} and "
                         f"{tuple(alignment.shape)}")
    real = alignment != IGNORE  # (B, T)
    hits = (weights.argmax(-1) == alignment) & real
    return hits.sum().item() / real.sum().item()  # exact counts, one division


REVERSAL_SETTINGS = {
    "tiny": dict(min_len=2, max_len=4, lengths=[2, 4], vocab=6, d_embed=8, d_hidden=8, steps=5, batch=8, lr=3e-3, n_eval=16),
    "quick": dict(min_len=4, max_len=16, lengths=[4, 8, 12, 16], vocab=10, d_embed=32, d_hidden=32, steps=800, batch=64,
                  lr=3e-3, n_eval=256),                                                     # chapter 5's
    "full": dict(min_len=4, max_len=40, lengths=[5, 10, 20, 30, 40], vocab=10, d_embed=64, d_hidden=128, steps=4000,
                 batch=128, lr=2e-3, n_eval=1024),
}


def render_reversal(results: dict) -> list[str]:
    """The table of a ``reversal`` results dict: per model, the mean accuracy over seeds at each length (chapter 5)."""
    lengths, runs = results["settings"]["lengths"], results["runs"]
    lines = [f"{'attention':10s} " + " ".join(f"{'L=' + str(L):>6s}" for L in lengths) + "   (mean accuracy over seeds)"]
    for kind in dict.fromkeys(r["attention"] for r in runs):
        lines.append(f"{kind:10s} " + " ".join(f"{mean_over(runs, lambda r: r['accuracy'][i], attention=kind):6.3f}"
                                               for i in range(len(lengths))))
    return lines


@register("reversal", "chapter 5: reversal accuracy against length, encoder-decoder with and without attention",
          chapter=5, render=render_reversal)
def reversal(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 5's accuracy-against-length experiment at ``scale``: with and without attention, every seed."""
    s = REVERSAL_SETTINGS[scale]
    task = ReverseTask(s["min_len"], s["max_len"], vocab=s["vocab"])

    def one(c):
        kind, seed = c
        seed_everything(seed)
        model = Seq2Seq(task.n_tokens, task.n_tokens, s["d_embed"], s["d_hidden"], attention=kind)
        fit_seq2seq(model, task, steps=s["steps"], batch=s["batch"], lr=s["lr"], seed=seed, device=device)
        res = [evaluate_reversal(model, L, vocab=s["vocab"], n=s["n_eval"], device=device) for L in s["lengths"]]
        return {"attention": kind or "none", "seed": seed, "accuracy": [a for a, _ in res], "aligned": [al for _, al in res],
                "params": count_parameters(model)}

    runs = map_runs(one, [(k, sd) for k in (None, "additive") for sd in seeds], progress=progress, desc="seq2seq models")
    return {"settings": s, "runs": runs}


# ---------------------------------------------------------------- chapter 6: the gradient that reaches each input
def input_gradients(model, x: torch.Tensor) -> torch.Tensor:
    """``||d(u . y_T) / d x_t||`` for every input position t, averaged over the batch: (T,) (chapter 6).

    ``model`` maps (B, T, d) to (B, T, d); ``u`` is a fixed random unit vector, so only the
    last output is differentiated.
    """
    x = x.clone().requires_grad_()
    y = model(x)                                                         # (B, T, d)
    u = torch.randn(y.shape[-1], generator=batch_stream(0, 1)).to(x.device)          # seed 1 + SEQLAB_SEED_OFFSET
    (y[:, -1] @ (u / u.norm())).sum().backward()
    return x.grad.norm(dim=-1).mean(0).cpu()                             # (T,): ||d(u . y_T)/dx_t||


def gradient_share(model, Ts, *, batch: int, d: int, generator: torch.Generator, device=None) -> dict[int, float]:
    """For each length T: the mean gradient reaching one earlier input, ``input_gradients(...)[:-1].mean()`` (chapter 6)."""
    share = {}
    for T in Ts:
        x_T = torch.randn(batch, T, d, generator=generator).to(device)  # (B, T, d)
        share[T] = input_gradients(model, x_T)[:-1].mean().item()
    return share


DILUTION_SETTINGS = {
    "tiny": dict(Ts=[8, 16, 32], d_model=16, n_heads=2, batch=2),
    "quick": dict(Ts=[16, 32, 64, 128, 256], d_model=32, n_heads=4, batch=8),                 # chapter 6's
    "full": dict(Ts=[16, 32, 64, 128, 256, 512, 1024, 2048, 4096], d_model=64, n_heads=8, batch=32),
}


def render_dilution(results: dict) -> list[str]:
    """The table of a ``dilution`` results dict: per seed, the gradient share at each length and its slope
    (chapter 6)."""
    Ts = results["settings"]["Ts"]
    lines = [f"{'seed':>4s} " + " ".join(f"{'T=' + str(T):>9s}" for T in Ts) + f" {'slope':>6s}"]
    return lines + [f"{r['seed']:4d} " + " ".join(f"{v:9.2e}" for v in r["share"]) + f" {r['slope']:6.2f}"
                    for r in results["runs"]]


@register("dilution", "chapter 6: gradient reaching one input of self-attention against length (1/T) at init",
          chapter=6, render=render_dilution)
def dilution(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 6's gradient-share measurement at ``scale``: a causal attention layer at initialisation, every seed."""
    s = DILUTION_SETTINGS[scale]

    def one(seed):
        g = seed_everything(seed)
        attn = MultiHeadAttention(s["d_model"], s["n_heads"]).to(device)
        share = gradient_share(lambda x: attn(x, x, x, causal=True)[0], s["Ts"], batch=s["batch"], d=s["d_model"],
                               generator=g, device=device)
        return {"seed": seed, "share": [share[T] for T in s["Ts"]], "slope": fit_slope(s["Ts"], list(share.values()))}

    runs = map_runs(one, list(seeds), progress=progress, desc="seeds")
    return {"settings": s, "runs": runs}


# ---------------------------------------------------------------- chapter 7: a GPT and an LSTM, same size, same time
def lstm_matching(n_params: int, vocab: int, d_embed: int) -> int:
    """The hidden size whose LSTM language model (embedding ``d_embed``) has the parameter count closest to ``n_params`` (chapter 7)."""
    size = lambda h: count_parameters(RecurrentLM(vocab, d_embed, h, cell="lstm", form="fused"))
    hidden = next(h for h in range(16, 4096) if size(h) >= n_params)            # the count grows with h
    return min((hidden - 1, hidden), key=lambda h: abs(size(h) - n_params))


def equal_time_race(models: dict, corpus: CharCorpus, *, batch: int, context: int, lr: float, seconds: float,
                    val: torch.Tensor, device=None, progress: bool | None = None) -> tuple[dict, dict]:
    """Train each model for as many steps as it runs in ``seconds`` (chapter 7).

    Speed first, measured interleaved: a round times one training step of each (on copies), the
    fastest call of each counts, so load on a shared machine slows both alike. Then each model trains
    for ``seconds / step time`` steps on the same batches (stream ``batches(0)``), evaluated on ``val`` (N, T + 1)
    in bits per character. Returns ``(results, step_time)``; ``results[name]`` has ``bits``,
    ``steps``, ``tokens_per_s`` and the ``history``.
    """
    xb, yb = (t.to(device) for t in corpus.batch("train", batch, context, generator=batch_stream(0)))

    def val_bits(model):
        with torch.no_grad():
            return {"bits": bits(sequence_loss(logits_of(model(val[:, :-1])), val[:, 1:]).item())}

    def one_step(model):
        model = copy.deepcopy(model)
        opt = torch.optim.AdamW(model.parameters(), lr=lr)

        def step():
            loss = sequence_loss(logits_of(model(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    step_time = {name: t.min for name, t in time_calls({name: one_step(m) for name, m in models.items()},
                                                       warmup=2, repeats=7, device=device).items()}
    results = {}
    for name, model in models.items():
        gen = seed_everything(0)
        steps = max(1, int(seconds / step_time[name]))
        h = train(model, lambda: corpus.batch("train", batch, context, generator=gen), steps=steps, lr=lr,
                  eval_fn=val_bits, progress=progress, desc=name)
        results[name] = dict(bits=h.final("bits"), steps=h.steps, tokens_per_s=batch * context / step_time[name],
                             history=h)
    return results, step_time


RACE_SETTINGS = {
    "tiny": dict(d_model=16, n_heads=2, lm_layers=1, lm_context=16, batch=4, lr=3e-3, lm_seconds=0.3, eval_windows=8),
    "quick": dict(d_model=64, n_heads=4, lm_layers=2, lm_context=64, batch=16, lr=3e-3, lm_seconds=5.0,
                  eval_windows=128),                                                         # chapter 7's
    "full": dict(d_model=128, n_heads=4, lm_layers=6, lm_context=256, batch=32, lr=3e-3, lm_seconds=120.0,
                 eval_windows=256),
}


def render_race(results: dict) -> list[str]:
    """The table of a ``race`` results dict: per seed and model, parameters, tokens per second, steps and bits per
    character (chapter 7)."""
    lines = [f"{'seed':>4s} {'model':5s} {'params':>8s} {'tokens/s':>10s} {'steps':>6s} {'bits/char':>9s}"]
    for r in results["runs"]:
        for name in ("GPT", "LSTM"):
            m = r[name]
            lines.append(f"{r['seed']:4d} {name:5s} {m['params']:8d} {m['tokens_per_s']:10.0f} {m['steps']:6d} {m['bits']:9.3f}")
    return lines


@register("race", "chapter 7: a GPT and an LSTM of equal size trained for equal time, bits per char", chapter=7,
          render=render_race)
def race(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 7's equal-parameters, equal-time race at ``scale``, once per seed (the seed sets the initial weights).

    The race is timed, so its runs are not spread over processes: each process would
    slow the others. Run it alone on the device.
    """
    s = RACE_SETTINGS[scale]
    corpus = CharCorpus()
    V = corpus.vocab_size
    val = corpus.val[: s["eval_windows"] * (s["lm_context"] + 1)].view(s["eval_windows"], s["lm_context"] + 1).to(device)
    runs = []
    for seed in seeds:
        seed_everything(seed)
        gpt = GPT(GPTConfig(vocab_size=V, d_model=s["d_model"], n_heads=s["n_heads"], n_layers=s["lm_layers"],
                            max_len=s["lm_context"])).to(device)
        hidden = lstm_matching(count_parameters(gpt), V, s["d_model"])
        seed_everything(seed)
        lstm = RecurrentLM(V, s["d_model"], hidden, cell="lstm", form="fused").to(device)
        results, step_time = equal_time_race({"GPT": gpt, "LSTM": lstm}, corpus, batch=s["batch"],
                                             context=s["lm_context"], lr=s["lr"], seconds=s["lm_seconds"], val=val,
                                             device=device, progress=progress)
        runs.append({"seed": seed, "lstm_hidden": hidden, **{
            name: {"params": count_parameters(m), "bits": r["bits"], "steps": r["steps"],
                   "tokens_per_s": r["tokens_per_s"], "step_seconds": step_time[name]}
            for (name, r), m in zip(results.items(), (gpt, lstm))}})
    return {"settings": s, "runs": runs}


# ---------------------------------------------------------------- chapter 8: positions past the training length
ENCODINGS = ("none", "learned", "sinusoidal", "rope", "alibi")
#: the study's arms: the five encodings, and the sinusoidal table scaled so that its per-coordinate RMS (1/sqrt(2)
#: unscaled) equals the token embeddings' initial standard deviation (GPTConfig's init_std)
SCALED_SINUSOIDAL = "sinusoidal, scaled"
STUDY_ARMS = ENCODINGS + (SCALED_SINUSOIDAL,)


def train_position_lm(model: GPT, corpus: CharCorpus, *, batch: int, T_train: int, steps: int, lr: float,
                      device=None, progress: bool | None = None, desc: str | None = None, batch_seed: int = 0):
    """Train a character GPT on windows of ``T_train`` characters, the same batches for every model (the stream of
    ``batch_seed``, 0 unless given; chapter 8)."""
    g_lm = seed_everything(batch_seed)                                    # the same batches for every encoding
    return train(model, lambda: corpus.batch("train", batch, T_train, generator=g_lm), steps=steps, lr=lr, clip=1.0,
                 device=device, progress=progress, desc=desc)


def loss_by_position(model: GPT, val: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) at each position of the windows ``val`` (N, T + 1): (T,) (chapter 8)."""
    with torch.no_grad():
        losses = [F.cross_entropy(model(w[:, :-1], form="fused")[0].transpose(1, 2), w[:, 1:], reduction="none")
                  for w in val.split(64)]                                   # (n, T) each
    return torch.cat(losses).mean(0).cpu()                                # (T,)


POSITION_SETTINGS = {
    "tiny": dict(d_model=16, n_heads=2, n_layers=1, train_len=8, lm_steps=3, lm_batch=4, lr=3e-3),
    "quick": dict(d_model=64, n_heads=4, n_layers=2, train_len=32, lm_steps=250, lm_batch=32, lr=3e-3),  # chapter 8's
    "full": dict(d_model=128, n_heads=4, n_layers=4, train_len=128, lm_steps=2000, lm_batch=64, lr=2e-3),
}


# ------------------------------------------- chapter 8's extrapolation study over seeds and learning rates
POSITION_STUDY_LRS = {"tiny": [1e-3, 3e-3, 1e-2], "quick": [1e-3, 3e-3, 1e-2], "full": [7e-4, 2e-3, 6e-3]}  # around each rate
POSITION_STUDY_SETTINGS = {scale: dict(s, lrs=POSITION_STUDY_LRS[scale], tail=50) for scale, s in POSITION_SETTINGS.items()}
POSITION_STUDY_GRID_KEYS = ("lrs",)


def position_study_run(enc: str, lr: float, seed: int, s: dict, corpus: CharCorpus, val: torch.Tensor,
                       device=None, progress: bool = False) -> dict:
    """One run of ``positions``: the encoding ``enc`` trained at rate ``lr``, its initial weights and its batches
    from ``seed`` (every encoding of a seed sees the same batches), and its loss at every position of ``val``
    (chapter 8). ``train_tail``: the mean training loss over the last ``tail`` steps, which picks the rate.
    ``enc`` is one of ``STUDY_ARMS``: an encoding, or ``"sinusoidal, scaled"`` (the sinusoidal GPT, its table scaled
    to the embeddings' initial standard deviation)."""
    T_train = s["train_len"]
    seed_everything(seed)
    scaled = enc == SCALED_SINUSOIDAL
    model = GPT(GPTConfig(corpus.vocab_size, d_model=s["d_model"], n_heads=s["n_heads"], n_layers=s["n_layers"],
                          max_len=4 * T_train, positions="sinusoidal" if scaled else enc)).to(device)
    if scaled:  # the table at the embeddings' initial scale: RMS init_std instead of 1/sqrt(2)
        model.positions.scale = model.config.init_std * math.sqrt(2)
    h = train_position_lm(model, corpus, batch=s["lm_batch"], T_train=T_train, steps=s["lm_steps"], lr=lr,
                          device=device, progress=progress, desc=enc, batch_seed=seed)
    model.eval()
    loss = loss_by_position(model, val)
    tail = h.loss[-s["tail"]:]
    return {"encoding": enc, "lr": lr, "seed": seed, "train_tail": sum(tail) / len(tail),
            "by_position": [round(v, 5) for v in loss.tolist()], "seconds": round(h.seconds, 2)}


def render_position_study(results: dict) -> list[str]:
    """The table of a ``positions`` results dict: per encoding and rate, the mean ± sd over seeds of the loss
    over positions 0..L-1 and of its rise over 2L..4L-1; the rate each encoding chooses (chapter 8)."""
    from .runlog import choose_rate

    s, runs = results["settings"], results["runs"]
    L = s["train_len"]
    inside = lambda r: sum(r["by_position"][:L]) / L
    far = lambda r: sum(r["by_position"][2 * L:4 * L]) / (2 * L)
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # the sample standard deviation over seeds
    chosen = choose_rate(runs, lambda r: r["encoding"], lambda r: r["train_tail"], lrs=s["lrs"])
    lines = [f"{'encoding':18s} {'lr':>6s} {'0..L-1':>15s} {'rise 2L..4L-1':>15s}   (mean ± sd over seeds, nats)"]
    for enc, c in chosen.items():
        for lr in s["lrs"]:
            rs = [r for r in runs if r["encoding"] == enc and r["lr"] == lr]
            a, b = [inside(r) for r in rs], [far(r) - inside(r) for r in rs]
            lines.append(f"{enc:18s} {lr:6g} {sum(a) / len(a):8.3f} ± {sd(a):.3f} {sum(b) / len(b):+8.3f} ± {sd(b):.3f}"
                         + ("   <- chosen" if lr == c["lr"] else ""))
    return lines


@register("positions", "chapter 8: five position schemes (and the sinusoidal table at the embeddings' scale) trained "
          "at length L, each at three learning rates, and their loss at every position up to 4L (resumable)", chapter=8,
          render=render_position_study, settings=POSITION_STUDY_SETTINGS)
def positions(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 8's extrapolation study over seeds and rates: every encoding x rate x seed, each seed's encodings on
    the same batches; resumable (``runlog``; chapter 8)."""
    from .runlog import log_path, map_logged, per_run

    s = POSITION_STUDY_SETTINGS[scale]
    corpus = CharCorpus()
    W = 4 * s["train_len"] + 1
    val = corpus.val[: len(corpus.val) // W * W].view(-1, W).to(device)  # (N, T_eval + 1): all of the validation text
    runs = map_logged(lambda c: position_study_run(c[0], c[1], c[2], s, corpus, val, device=device, progress=progress),
                      [(e, lr, sd) for sd in seeds for e in STUDY_ARMS for lr in s["lrs"]],
                      device=device, path=log_path("positions", scale), settings=per_run(s, POSITION_STUDY_GRID_KEYS),
                      progress=progress, desc="encodings x rates x seeds")
    return {"settings": s, "runs": runs}
