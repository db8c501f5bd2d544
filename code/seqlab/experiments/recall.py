"""The recall gap: multi-query associative recall against the size of the state, learning rate swept (chapter 12).

Glossary, code name -> book notation:

    arch           the sequence mixer of a ``MixerLM``: "softmax" (causal attention with a KV cache),
                   "linear" (linear attention, φ(x) = elu(x) + 1), "delta" (the delta rule, DeltaNet:
                   S_t = S_{t-1} + β_t k_tᵀ (v_t − k_t S_{t-1}) with unit keys), "taylor" (linear attention
                   with the second-order Taylor feature map, d_φ = 1 + d_head + d_head²), "gated" (gated
                   linear attention, one forget factor per key channel), "selective" (chapter 13's selective
                   SSM, Mamba's layer, the SSM of chapter 15's comparison: a short convolution inside the layer,
                   d_state N = 8 per channel of d_inner = 2 d channels)
    width          d_model; with ``heads`` heads, d_head = width / heads is each head's key width d_k
                   (the selective SSM has no heads: it writes each token into every channel's N-wide state)
    n_pairs        n, the key-value pairs written before the queries
    load           n / d_φ: pairs per key dimension of one head's state, the axis of chapter 12's
                   √((n − 1)/d) cross-talk law; for the selective SSM d_φ is its N (the width of the
                   input projection B_t a token is written with), a nominal load, not one the law covers
    state_bytes    bytes of what the model carries per sequence at the task's length T (float32):
                   the KV cache, 2 T d per layer, for softmax attention; the fixed matrix state
                   (S, and z for the normalised maps) in every head for the linear mixers; plus the
                   short convolution's buffer
    val_accuracy   recall on a validation set, used only to choose the learning rate
    accuracy       recall on a separate test set (fraction of queries answered right), what is reported

The task is Zoology's MQAR (Arora et al., 2023): ``n_pairs`` key-value pairs, then queries of those
keys. The models follow Zoology's recipe: two layers, a short causal convolution before each mixer,
AdamW with weight decay 0.1, and training until the validation recall reaches 0.99 (checked every
``eval_every`` steps) or ``steps`` run out — long enough that softmax attention solves every width.
Every cell is trained at each of ≥ 4 learning rates with the first seed; the learning rate with the
best *validation* recall is kept, the other seeds (≥ 3 in all) are trained at it, and the mean, min
and max *test* recall over the seeds are reported; ``bracketed`` says whether the grid brackets that
optimum or is flat at its edge (``runlog.map_tuned``: 4 + 2 runs per cell instead of 4 × 3; a cell whose best
rate lies at an end of the grid, clearly, gets one more rate past that end, ``max_widen``). Two axes:

    width   n_pairs fixed, width swept: state size and parameters grow together
    pairs   at each width of ``pairs_widths`` (state fixed), n_pairs swept: the load n / d_φ grows
            at a constant state. The task has vocab / 2 distinct keys; a trained model chooses its
            keys, and once the heads' key dimensions (heads · d_φ) reach that number it can give
            every key its own direction, where the √((n − 1)/d) law assumes random keys. So the
            quick scale sweeps the pairs at a width below that (16: 16 key dimensions for 32 keys)
            and at it (32).
    ssm     the width axis's cells for ``ssm_archs`` (chapter 13's selective SSM) at ``ssm_widths``
            only: an SSM step costs several times a linear-attention step on this task, so the quick
            scale runs it at the two smaller widths (chapter 15's SSM row of the recall table).

``recall`` (``python -m seqlab.experiments recall``) runs both and is resumable: each finished run is
appended to ``results/runs/recall-SCALE.jsonl`` (``seqlab.experiments.runlog``) and a rerun skips it.
"""
from __future__ import annotations

import math

import torch

from .. import _validate as validate
from ..config import seed_everything
from ..seeding import held_out as held_out_stream
from ..data.tasks import AssociativeRecall
from ..models.mixer_lm import MixerLM, MixerLMConfig
from ..models.ssm import SSMConfig
from ..train import accuracy, train
from . import register
from .runlog import brackets, choose_rate, fingerprint, log_path, map_tuned, per_run

GRID_KEYS = ("archs", "widths", "lrs", "pairs_archs", "pairs", "pairs_widths", "max_widen", "ssm_archs", "ssm_widths")

ARCHS = ("softmax", "linear", "delta", "taylor", "gated", "selective")
WEIGHT_DECAY = 0.1  # Zoology's AdamW setting
CLIP = 1.0  # the gradient-norm clip of every MQAR run (the recorded ones included)
TARGET = 0.99  # stop once the validation recall reaches it

SETTINGS = {
    # the task (vocab, length, pairs), the models (widths, heads, layers), the lrs swept, training; then the pairs axis
    "tiny": dict(archs=["softmax", "linear", "delta"], vocab=16, length=12, n_pairs=4, widths=[8, 16], heads=2,
                 layers=2, lrs=[1e-3, 3e-3, 1e-2, 3e-2], steps=3, eval_every=2, batch=8, eval_batch=32,
                 pairs_archs=["linear", "delta"], pairs_widths=[8], pairs=[2, 4], pairs_length=12, max_widen=1, ssm_archs=["selective"], ssm_widths=[8]),
    "quick": dict(archs=["softmax", "linear", "delta"], vocab=64, length=48, n_pairs=16,
                  widths=[16, 32, 64], heads=4, layers=2, lrs=[1e-3, 3e-3, 1e-2, 3e-2], steps=2000, eval_every=100,
                  batch=32, eval_batch=256,
                  pairs_archs=["softmax", "linear", "delta"], pairs_widths=[16, 32], pairs=[4, 8, 16, 24], pairs_length=64,
                  max_widen=1, ssm_archs=["selective"], ssm_widths=[16, 32]),
    "full": dict(archs=list(ARCHS), vocab=256, length=128, n_pairs=32, widths=[32, 64, 128, 256], heads=4, layers=2,
                 lrs=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2], steps=12_500, eval_every=250, batch=64, eval_batch=1024,
                 pairs_archs=["softmax", "linear", "delta", "gated"], pairs_widths=[64, 128], pairs=[8, 16, 32, 48, 64],
                 pairs_length=160, max_widen=1, ssm_archs=["selective"], ssm_widths=[32, 64, 128]),
}


# runs logged on 2026-12-05 when the fingerprint covered the whole settings dict (same per-run settings)
LEGACY = {"quick": ("b0b2f327df50",   # and until the pairs axis gained its second width (pairs_width was 32):
                    "0deac1f8071b")}


def make_model(arch: str, width: int, vocab: int, heads: int = 4, layers: int = 2) -> MixerLM:
    """A ``MixerLM`` with mixer ``arch`` (one of ``ARCHS``), width d and ``heads`` heads; chapter 12."""
    validate.positive_int("width", width)
    options = {"softmax": {}, "linear": {"feature_map": "elu1"}, "taylor": {"feature_map": "taylor"},
               "gated": {"feature_map": "elu1"}, "delta": {"feature_map": "identity", "delta": True, "chunk": 16},
               "selective": {"chunk": 16}}
    if arch not in options:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    mixer = {"taylor": "linear", "gated": "gated_linear", "delta": "linear"}.get(arch, arch)
    return MixerLM(MixerLMConfig(vocab_size=vocab, mixer=mixer, d_model=width, n_heads=heads, n_layers=layers,
                                 options=options[arch]))


def d_phi(arch: str, width: int, heads: int) -> int:
    """d_φ, the key width of one head's state (d_head, or 1 + d_head + d_head² for the Taylor map; chapter 12);
    for the selective SSM its d_state N, the width of the B_t a token is written with (chapter 13)."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    d = validate.positive_int("width", width) // validate.positive_int("heads", heads)
    if arch == "selective":
        return SSMConfig().d_state
    return 1 + d + d * d if arch == "taylor" else d


def crosstalk_law(n: int, d: int) -> float:
    """√((n − 1)/d): the relative error of reading one of n pairs back from a linear memory of d random unit keys.

    S = Σ_i k_i v_iᵀ read with k_j gives v_j + Σ_{i≠j} (k_j·k_i) v_i; for random unit keys each overlap
    has variance 1/d, so the n − 1 others add noise of norm √((n − 1)/d) times a value's (chapter 12).
    """
    validate.positive_int("n", n)
    validate.positive_int("d", d)
    return math.sqrt((n - 1) / d)


def train_one(arch: str, width: int, lr: float, *, vocab: int, length: int, n_pairs: int, heads: int = 4,
              layers: int = 2, steps: int, batch: int, eval_batch: int = 256, eval_every: int | None = None,
              seed: int = 0, device=None, progress: bool = False) -> dict:
    """Train one model on MQAR; recall on a validation set (picks the lr) and on a test set (reported); chapter 12.

    Training, validation and test batches come from separate generators, all seeded by ``seed``
    (``seqlab.seed_everything``, so ``SEQLAB_SEED_OFFSET`` shifts them). With ``eval_every``, the
    validation recall is measured every ``eval_every`` steps (the learning curve, ``curve``) and
    training stops once it reaches ``TARGET``.
    """
    device = torch.device(device or "cpu")
    task = AssociativeRecall(n_pairs=n_pairs, length=length, vocab=vocab)
    test = task.sample(eval_batch, generator=held_out_stream(seed))  # (x, y) never trained on
    val = [t.to(device) for t in task.sample(eval_batch, generator=held_out_stream(seed, stream=1))]
    gen = seed_everything(seed)  # the model's initialisation, then the training stream
    model = make_model(arch, width, vocab, heads, layers).to(device)
    h = train(model, lambda: tuple(t.to(device) for t in task.sample(batch, generator=gen)), steps=steps, lr=lr,
              weight_decay=WEIGHT_DECAY, clip=CLIP, progress=progress, desc=f"{arch} d={width} n={n_pairs} lr={lr:g}",
              eval_fn=lambda m: {"val_accuracy": accuracy(m(val[0])[0], val[1])}, eval_every=eval_every,
              stop_when=lambda hist: hist.eval["val_accuracy"][-1] >= TARGET)
    model.eval()
    with torch.no_grad():
        acc = accuracy(model(test[0].to(device))[0], test[1].to(device))
        _, state = model(torch.zeros(1, length, dtype=torch.long, device=device))  # the state after T tokens
    val_curve = h.eval.get("val_accuracy", [float("nan")])
    return {"arch": arch, "width": width, "heads": heads, "n_pairs": n_pairs, "length": length, "lr": lr,
            "seed": seed, "d_phi": d_phi(arch, width, heads), "state_bytes": model.state_bytes(state),
            "params": sum(p.numel() for p in model.parameters()), "accuracy": acc, "val_accuracy": val_curve[-1],
            "curve": {"step": list(h.eval_step), "val_accuracy": [round(v, 4) for v in val_curve]},
            "steps": h.steps, "final_loss": h.loss[-1] if h.loss else float("nan"), "diverged": h.diverged,
            "chance": task.chance, "seconds": round(h.seconds, 3)}


def _cell(r: dict) -> tuple:
    return (r["arch"], r["width"], r.get("n_pairs"))


def best_lr(runs: list[dict], key: str = "val_accuracy", tune_seed: int | None = None) -> list[dict]:
    """Per cell (arch, width, n_pairs), the runs of the learning rate with the highest mean ``key`` (chapter 12).

    ``key`` is the validation recall, so the reported (test) recall is not the one that chose the lr.
    With ``tune_seed`` the lr is chosen on that seed's runs alone (the sweep tunes on its first seed
    and replicates the others at the chosen lr, ``runlog.map_tuned``), and the runs of every seed at
    that lr are returned; without it, on the mean over all seeds (``runlog.choose_rate``). Cells in the
    order of first appearance, each cell's runs by seed; ties go to the learning rate listed first.
    """
    chosen = choose_rate(runs, _cell, lambda r: r.get(key, r["accuracy"]), lower=False, tune_seed=tune_seed)
    return [r for c in chosen.values() for r in c["runs"]]


def bracketed(runs: list[dict], key: str = "val_accuracy", tol: float = 0.02,
              tune_seed: int | None = None) -> dict[tuple, bool]:
    """Per cell, whether the lr grid brackets the optimum of the mean ``key`` over seeds or is flat at its edge
    (chapter 12).

    True when the best learning rate is inside the grid (bracketed), or when it is at an end but an
    inner learning rate comes within ``tol`` of it: flat at the edge, as far as the grid reaches. The
    optimum may still lie past that end; the grid does not locate it, so such a cell is not bracketed,
    only not worth widening (the key and the name are kept for the recorded results). False means the
    best rate is at an end and clearly better than its neighbour: the grid should be extended past
    that end. With ``tune_seed``, judged on that seed's runs alone (the seed that ran the whole grid).
    """
    chosen = choose_rate(runs, _cell, lambda r: r.get(key, r["accuracy"]), lower=False, tune_seed=tune_seed)
    return {cell: brackets(c, tol) for cell, c in chosen.items()}


def summarise(best: list[dict]) -> list[dict]:
    """Per cell: mean, min and max test recall over the seeds of its best lr, with the cell's sizes (chapter 12)."""
    cells: dict[tuple, list[dict]] = {}
    for r in best:
        cells.setdefault(_cell(r), []).append(r)
    out = []
    for (arch, width, n_pairs), rs in cells.items():
        accs = [r["accuracy"] for r in rs]
        out.append({"arch": arch, "width": width, "n_pairs": n_pairs, "lr": rs[0]["lr"], "seeds": len(rs),
                    "mean": sum(accs) / len(accs), "min": min(accs), "max": max(accs),
                    "state_bytes": rs[0]["state_bytes"], "params": rs[0]["params"], "d_phi": rs[0]["d_phi"],
                    "load": n_pairs / rs[0]["d_phi"] if n_pairs else float("nan"),
                    "steps": max(r["steps"] for r in rs)})
    return out


def cells(s: dict) -> list[tuple]:
    """The cells of both axes as (axis, arch, width, n_pairs, length), each trained at every lr of ``s["lrs"]`` (chapter 12)."""
    return ([("width", a, w, s["n_pairs"], s["length"]) for a in s["archs"] for w in s["widths"]]
            + [("pairs", a, w, n, s["pairs_length"]) for w in s["pairs_widths"] for a in s["pairs_archs"]
               for n in s["pairs"]]
            + [("width", a, w, s["n_pairs"], s["length"]) for a in s.get("ssm_archs", ()) for w in s.get("ssm_widths", ())])


def render_recall(results: dict) -> list[str]:
    """The tables of a ``recall`` results dict, one per axis: per cell, its load, state bytes, best learning rate,
    test recall mean [min, max] over seeds and whether the rate grid brackets the optimum or is flat at the edge
    where it lies (chapter 12)."""
    lines = []
    for axis in ("width", "pairs"):
        brackets = {tuple(cell): ok for *cell, ok in results[f"bracketed_{axis}"]}
        lines.append(f"{axis} axis: {'arch':8s} {'width':>5s} {'pairs':>5s} {'n/d_phi':>7s} {'state bytes':>11s} "
                     f"{'best lr':>8s} {'recall mean [min, max]':>24s} bracketed")
        for row in results[f"table_{axis}"]:
            ok = brackets[(row["arch"], row["width"], row["n_pairs"])]
            lines.append(f"{'':12s}{row['arch']:8s} {row['width']:5d} {row['n_pairs']:5d} {row['load']:7.2f} "
                         f"{row['state_bytes']:11d} {row['lr']:8g} {row['mean']:8.3f} [{row['min']:.3f}, "
                         f"{row['max']:.3f}] {'yes' if ok else 'NO'}")
    return lines


@register("recall", "chapter 12: MQAR recall against state (width axis) and load n/d (pairs axis), lr swept", chapter=12,
          render=render_recall)
def recall(scale: str = "quick", seeds=(0, 1, 2), device=None, progress: bool = False) -> dict:
    """The recall grid of chapter 12 at ``scale`` ('tiny' for tests, 'quick', 'full'); resumable (``runlog``)."""
    s = SETTINGS[scale]
    common = dict(vocab=s["vocab"], heads=s["heads"], layers=s["layers"], steps=s["steps"], batch=s["batch"],
                  eval_batch=s["eval_batch"], eval_every=s["eval_every"], device=device)

    def one(c):
        _, arch, width, n_pairs, length, lr, seed = c
        return train_one(arch, width, lr, n_pairs=n_pairs, length=length, seed=seed, progress=progress, **common)

    seeds = list(seeds)
    configs, runs = map_tuned(one, cells(s), s["lrs"], seeds, score=lambda r: r["val_accuracy"], max_widen=s["max_widen"],
                              device=device, path=log_path("recall", scale), settings=per_run(s, GRID_KEYS), progress=progress,
                              desc="MQAR runs", also_accept=LEGACY.get(scale, ()))
    for c, r in zip(configs, runs):
        r["axis"] = c[0]
    out = {"settings": s, "runs": runs}
    for axis in ("width", "pairs"):
        rs = [r for r in runs if r["axis"] == axis]
        best = best_lr(rs, tune_seed=seeds[0])
        out[f"best_{axis}"], out[f"table_{axis}"] = best, summarise(best)
        out[f"bracketed_{axis}"] = [[*cell, ok] for cell, ok in bracketed(rs, tune_seed=seeds[0]).items()]
    return out
