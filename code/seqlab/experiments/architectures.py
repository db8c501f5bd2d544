"""Six architectures at one parameter count, measured row by row for the comparison table (chapter 15).

Glossary, code name -> book notation::

    arch           one of ``compare.ARCHS``: RNN, LSTM, Transformer, linear attention, SSM, hybrid
    seq_depth      dependent operations one more token adds in the reference (step-by-step) form
    par_depth      the same in the family's most parallel exact form (0: nothing chains the tokens)
    reach          gradient reaching the token k steps back, relative to k = 0 (chapter 3's probe)
    fade           reach at the first token over reach at distance ``k_near``
    cost_slope     the exponent of the counted work (FLOP of the matrix products) against the length n
    gain           validation loss of the small model minus the large one's, after the same steps (nats)
    grows          bytes the generation state adds per token of context (0: a fixed state)
    step_work      FLOP of one generated token after each context length
    latency        seconds per generated token at batch 1 after the longest context (its fastest call)

``matched_models``, ``depth_per_token``, ``gradient_fade`` (and ``gradient_sizes``, the absolute size of its
signal), ``flop_exponent``, ``size_gain``,
``generation_state``, ``step_cost`` and ``table_rows`` are what chapter 15 measures and tabulates
with; ``architectures`` (registered as ``python -m seqlab.experiments architectures``) runs them all
for every seed. The latency is timed in interleaved rounds, each model's fastest call counting, so the
command runs in one process (several would slow each other's clocks).
"""
from __future__ import annotations

import torch

from .. import compare
from ..compare import ARCHS
from ..config import seed_everything
from ..seeding import batches as batch_stream, held_out
from ..data import CharCorpus
from ..measure import count_flops, count_parameters, fit_slope, graph_depth, time_calls
from ..train import logits_of, sequence_loss, train
from . import register

# the form whose matrix products PyTorch's flop counter can see: loops for the cells (their fused
# kernel is one opaque call), attention by hand, the chunked scans (the fully parallel ones do n² work)
COUNT_FORM = {"RNN": "reference", "LSTM": "reference", "Transformer": "parallel", "hybrid": "parallel",
              "linear attention": "fast", "SSM": "fast"}
K_NEAR = 16  # the distance the reach at the first token is compared with


FORGET_BIAS = 3.0  # chapter 4: the LSTM's forget gate starts open, as that chapter recommends


def make_model(arch: str, vocab: int, d: int):
    """``compare.make_model``, except the LSTM, which gets chapter 4's forget-gate bias (chapter 15).

    PyTorch's default initialisation gives the forget gate about σ(0) = 1/2 at the start (its biases are
    drawn uniform around 0), under which chapter 4 measured over a thousand times less gradient 30 steps
    back than with a forget bias of 3, and saw the default GRU stay at chance at its longest lag (Exercise 4.4);
    the course's own recommendation is a bias of 1 or more.
    """
    if arch != "LSTM":
        return compare.make_model(arch, vocab, d)
    from ..models.charlm import RecurrentLM

    model = RecurrentLM(vocab, d, d, cell="lstm", n_layers=2, forget_bias=FORGET_BIAS)
    model.arch = "LSTM"
    return compare.set_form(model, "fast")


def matched_models(vocab: int, params: int, widths, device=None) -> tuple[dict, dict, dict]:
    """Each of the six families at the width whose parameter count is nearest ``params`` (chapter 15).

    Returns ``(width, models, n_params)``, each a dict keyed by arch; the models are built in the
    order of ``ARCHS`` from the global random state.
    """
    width = {a: compare.width_for_parameters(a, vocab, params, widths) for a in ARCHS}
    models = {a: make_model(a, vocab, width[a]).to(device) for a in ARCHS}
    return width, models, {a: count_parameters(m) for a, m in models.items()}


def depth_per_token(model, form: str, lengths, device=None) -> float:
    """Dependent operations one more token adds in ``form``: graph depth between two ``lengths`` (chapters 9, 15)."""
    compare.set_form(model, form)
    try:
        T1, T2 = lengths
        depths = [graph_depth(logits_of(model(torch.zeros(1, T, dtype=torch.long, device=device)))) for T in (T1, T2)]
    finally:
        compare.set_form(model, "fast")
    return (depths[1] - depths[0]) / (T2 - T1)


def gradient_fade(models: dict, x: torch.Tensor, k_near: int = K_NEAR) -> tuple[dict, dict]:
    """``(reach, fade)``: each model's gradient reach over ids ``x`` (B, T) and reach at k = T-1 over k = ``k_near`` (chapter 15)."""
    if not 0 < k_near < x.shape[1] - 1:
        raise ValueError(f"k_near must lie between 0 and T - 1 = {x.shape[1] - 1}, got {k_near}")
    reach = {a: compare.gradient_reach(m, x) for a, m in models.items()}
    k_far = x.shape[1] - 1
    return reach, {a: (r[k_far] / r[k_near]).item() for a, r in reach.items()}


def gradient_sizes(model, x: torch.Tensor, seed: int = 0) -> dict:
    """The absolute size of ``compare.gradient_reach``'s signal, per distance k back from the last token (chapter 15).

    The same backward pass (a random projection of the last position's logits, seeded by ``seed``, to the
    token embeddings of ids ``x`` (B, T)); each entry a (T,) tensor indexed by k:

        norm        ‖∂/∂e_{T−k}‖ in the gradient's own dtype, averaged over the batch: what ``gradient_reach``
                    divides by its value at k = 0. In float32 it squares the entries, so it reads 0 once every
                    squared entry is below float32's smallest positive number, while the entries are not 0
        norm64      the same norm of the same gradient, computed in float64 (no such underflow)
        max_entry   the largest |entry| of ∂/∂e_{T−k} over the batch and the width: 0 only where the gradient is 0
    """
    grad = compare.embedding_gradient(model, x, seed)  # (B, T, d)
    return {"norm": grad.norm(dim=-1).mean(0).flip(0),
            "norm64": grad.double().norm(dim=-1).mean(0).flip(0),
            "max_entry": grad.abs().amax(dim=(0, 2)).flip(0)}


def flop_exponent(models: dict, lengths, device=None) -> tuple[dict, dict]:
    """``(cost, cost_slope)``: FLOP of one sequence (batch 1, no gradients) at each of ``lengths``, and its exponent in n (chapter 15)."""
    cost = {a: [] for a in models}
    with torch.no_grad():
        for a, m in models.items():
            compare.set_form(m, COUNT_FORM[a])
            for n in lengths:
                x_n = torch.zeros(1, n, dtype=torch.long, device=device)
                cost[a].append(count_flops(lambda: m(x_n)))
            compare.set_form(m, "fast")
    return cost, {a: fit_slope(lengths, c) for a, c in cost.items()}


def train_lm(arch: str, target: int, corpus, x_val, y_val, *, widths, batch: int, context: int, steps: int,
             lr: float, seed: int = 0, device=None, progress: bool | None = None) -> float:
    """Validation loss (nats) of ``arch`` at about ``target`` parameters after ``steps`` on ``corpus`` (chapter 15).

    Weights from ``seed_everything(seed)``, batches from the stream ``seqlab.seeding.batches(seed)``.
    """
    seed_everything(seed)
    model = make_model(arch, corpus.vocab_size,
                       compare.width_for_parameters(arch, corpus.vocab_size, target, widths)).to(device)
    batches = batch_stream(seed)
    train(model, lambda: tuple(t.to(device) for t in corpus.batch("train", batch, context, batches)),
          steps=steps, lr=lr, clip=1.0, desc=arch, progress=progress)
    with torch.no_grad():
        return sequence_loss(logits_of(model(x_val)), y_val).item()


def size_gain(corpus, s: dict, *, seed: int = 0, device=None, progress: bool | None = None) -> tuple[dict, dict]:
    """``(text_loss, gain)``: each family at ``small_params`` and ``params``, trained alike; gain = small - large (chapter 15).

    Validation windows from the held-out stream ``seqlab.seeding.held_out(seed)``; each model as ``train_lm``.
    """
    x_val, y_val = (t.to(device) for t in corpus.batch("val", 64, s["context"], held_out(seed)))
    kw = dict(widths=s["widths"], batch=s["batch"], context=s["context"], steps=s["sweep_steps"], lr=s["lr"],
              seed=seed, device=device, progress=progress)
    text_loss = {a: {size: train_lm(a, target, corpus, x_val, y_val, **kw)
                     for size, target in (("small", s["small_params"]), ("large", s["params"]))} for a in ARCHS}
    return text_loss, {a: l["small"] - l["large"] for a, l in text_loss.items()}


def size_gain_baselines(corpus, s: dict, *, seed: int = 0, max_order: int = 5) -> dict[int, float]:
    """Witten–Bell n-gram losses (nats) on the validation windows ``size_gain`` scores, orders 1 .. ``max_order``
    (chapter 15; ``ngram.window_losses``, counts from the training split): the count tables a model is placed against."""
    from ..models.ngram import window_losses
    x_val, y_val = corpus.batch("val", 64, s["context"], held_out(seed))
    windows = torch.cat([x_val[:, :1], y_val], dim=1).cpu()  # (64, context + 1): the inputs and the last target
    losses = window_losses(corpus.train, windows, corpus.vocab_size, max_order)
    return {k + 1: losses[k].mean().item() for k in range(max_order)}


def generation_state(models: dict, vocab: int, contexts, piece: int, generator: torch.Generator,
                     device=None) -> tuple[dict, dict, dict]:
    """``(state_at, states, grows)`` after random prompts of each length in ``contexts``, fed ``piece`` tokens at a time (chapter 15).

    ``state_at[a]`` the state's bytes at each length, ``states[a]`` (last token, state) pairs to
    generate from, ``grows[a]`` the bytes added per token between the first and last length.
    """
    state_at, states = {a: [] for a in models}, {a: [] for a in models}
    with torch.no_grad():
        for T in contexts:
            prompt = torch.randint(0, vocab, (1, T), generator=generator).to(device)   # (1, T)
            for a, m in models.items():
                state = None
                for part in prompt.split(piece, dim=1):                  # the state carries across pieces
                    _, state = compare.forward_state(m, part, state)
                state_at[a].append(compare.state_bytes(state))
                states[a].append((prompt[:, -1], state))
    grows = {a: (b[-1] - b[0]) / (contexts[-1] - contexts[0]) for a, b in state_at.items()}
    return state_at, states, grows


def step_cost(models: dict, states: dict, rounds: int, device=None) -> tuple[dict, dict]:
    """``(step_work, latency)``: FLOP of one generated token from each state, and seconds per token at batch 1
    from the last state, all models timed in interleaved rounds, the fastest of each (chapter 15)."""
    step_work, latency = {}, {}
    with torch.no_grad():
        for a, m in models.items():
            compare.set_form(m, "parallel")                               # products PyTorch can count
            step_work[a] = [count_flops(lambda s=s: compare.step(m, s[0], s[1])) for s in states[a]]
            compare.set_form(m, "fast")
        calls = {a: (lambda m=m, s=states[a][-1]: compare.step(m, s[0], s[1])) for a, m in models.items()}
        for a, t in time_calls(calls, warmup=2, repeats=2 * rounds, device=device).items():
            latency[a] = t.min
    return step_work, latency


#: The families of chapter 10's scaling study, by their names here.
SCALING_FAMILIES = {"LSTM": "lstm", "Transformer": "transformer"}


def scale_cells(gain: dict | None, exponents: dict | None = None, steps: int | None = None) -> dict[str, str]:
    """The scalability row of chapter 15: chapter 10's recorded exponents where the study has the family (chapter 15).

    ``exponents`` is ``scaling.exponent_cells(record["results"])`` of ``results/scaling-cpu.json``, or None when
    that file is absent. The LSTM's and the Transformer's cells give the fitted exponent alpha with its interval
    (the Transformer's also the verdict on the difference); the other families were not in the study, and every
    cell keeps this page's short-run gain (``gain``, nats from the smaller to the larger model after ``steps``
    steps), labelled as a short-run gain, not a scaling verdict. With ``gain`` None (chapter 15's table: a one-seed
    short run is no cell of a table whose cells show their spread) the other families' cells say only that they
    were not in the study.
    """
    short = lambda a: "" if gain is None else (f"short run: {gain[a]:+.2f} nats"
                                                + (f" after {steps} steps" if steps else ""))
    out = {}
    for a in ARCHS:
        family = SCALING_FAMILIES.get(a)
        if family is None:
            out[a] = (f"not in chapter 10's study ({short(a)}, not a scaling verdict)" if gain is not None
                      else "not in chapter 10's study: not measured")
        elif exponents is None:
            out[a] = "no recorded study here (results/scaling-cpu.json absent" + (f"; {short(a)})" if short(a) else ")")
        else:
            cell = exponents[family]["cell"]
            if a == "Transformer":
                cell += f", {exponents['relation']}"
            out[a] = cell
    return out


#: the cost row's bins (chapter 15). For work W = a·n + b·n², d log W / d log n = 1 + b·n² / W: one plus the n² term's
#: share of the work. The exponent fitted between two lengths is that local exponent averaged over log n between
#: them, so an exponent below LINEAR means the n² term averaged under a third of the work ("like n"), at or above
#: QUADRATIC over two thirds ("like n²"), and in between, "between n and n²".
LINEAR, QUADRATIC = 4 / 3, 5 / 3


def cost_verdict(slope: float) -> str:
    """The cost row's word for a work exponent ``slope`` (``LINEAR`` and ``QUADRATIC`` say why; chapter 15)."""
    return compare.verdict(slope, QUADRATIC, "like n²", compare.verdict(slope, LINEAR, "between n and n²", "like n"))


#: a trained cell reads "solved" when its worst seed reaches this accuracy (chapter 15's long-range and recall rows)
SOLVED = 0.95


#: what each family's most parallel form sums over the positions, which ``graph_depth`` counts as one node (chapter 15):
#: prefix sums ("scan": the SSM's log-space scan, the hybrid's RG-LRU scan) and sums over all n positions ("sum":
#: softmax attention's normaliser and its product with the values, linear attention's masked products)
LOG_DEPTH = {"Transformer": ("sum",), "linear attention": ("sum",), "SSM": ("scan",), "hybrid": ("scan", "sum")}


def log_depth_notes(par_depth: dict, per_doubling: dict) -> dict[str, str]:
    """For each family whose parallel form counts 0 operations per token, what its sums add to the chain each
    time n doubles when written as log-depth rounds (``per_doubling``: "scan" and "sum" -> operations, measured
    with ``parallel_rnn.scan_depths`` and ``tree_depths``; chapter 15)."""
    words = {"scan": "prefix sum", "sum": "sum over n"}
    return {a: ", ".join(f"each {words[k]} +{per_doubling[k]:g}" for k in LOG_DEPTH[a]) + " per doubling of n"
            for a in ARCHS if a in LOG_DEPTH and par_depth[a] == 0}


def trained_cell(row: dict | None, margin: float) -> str:
    """One trained cell of chapter 15's table from a recorded row (mean, min, max over seeds, baseline): "solved"
    when the worst seed reaches ``SOLVED``, "partly" when the mean clears the baseline by ``margin`` (3 standard
    errors of a guesser, ``longrange.chance_margin``; a row's own ``margin`` key wins), "not learned" otherwise,
    beside mean [worst, best]; "not run" without a row."""
    if row is None:
        return "not run"
    margin = row.get("margin", margin)              # a row may carry its own (another test-set size or baseline)
    word = ("solved" if row["min"] >= SOLVED else "partly" if row["mean"] > row["baseline"] + margin
            else "not learned")
    return f"{word} ({row['mean']:.2f} [{row['min']:.2f}, {row['max']:.2f}])"


def table_rows(seq_depth, par_depth, fade, reach_far, cost_slope, gain, grows, exponents=None,
               steps=None, *, lag: dict | None = None, recall: dict | None = None,
               margin: float = 0.0, par_notes: dict | None = None) -> dict[str, dict[str, str]]:
    """The comparison table, row -> arch -> cell: each measured number beside the verdict its row's rule gives (chapter 15).

    The scalability row is ``scale_cells(gain, exponents, steps)``: chapter 10's recorded exponents, not a verdict of
    this page's short run. With ``lag`` (arch -> a recorded ``longrange`` row of the long-lag task, 3 seeds) the
    long-range row is the trained result (``trained_cell``), else the gradient at initialisation (``fade``, one
    seed); with ``recall`` (arch -> a recorded MQAR row) a trained recall row is added. ``margin``: how far above
    the baseline a mean must lie to count as "partly" learned. ``par_notes`` (arch -> text, ``log_depth_notes``):
    what a parallel cell's one-node sums add per doubling of n, written after its count.
    """
    par_notes = par_notes or {}
    rows = {
        "sequential": {a: f"{compare.verdict(seq_depth[a], 1, 'yes', 'no')} ({seq_depth[a]:.1f} ops/token)" for a in ARCHS},
        "parallel": {a: f"{compare.verdict(par_depth[a], 1, 'no', 'yes')} ({par_depth[a]:.1f} ops/token"
                        + (f" as counted; {par_notes[a]})" if a in par_notes else ")") for a in ARCHS},
        "long": ({a: trained_cell(lag.get(a), margin) for a in ARCHS} if lag is not None else
                 {a: f"{compare.verdict(fade[a], 1e-2, 'reaches far back', 'fades')} (far/near {fade[a]:.0e})" for a in ARCHS}),
        "cost": {a: f"{cost_verdict(cost_slope[a])} (slope {cost_slope[a]:.2f})"
                 for a in ARCHS},
        "scale": scale_cells(gain, exponents, steps),
        "memory": {a: f"{compare.verdict(grows[a], 1, 'grows', 'fixed')} (+{grows[a]:.0f} B/token)" for a in ARCHS},
    }
    if recall is not None:
        rows["recall"] = {a: trained_cell(recall.get(a), margin) for a in ARCHS}
    return rows


def html_table(header, rows) -> str:
    """A plain HTML table (rendered as a real table by Jupyter and the book; chapter 15), cells escaped."""
    import html

    if not header or any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row must have {len(header)} cells, got {[len(r) for r in rows]}")
    cell = lambda tag, v: f"<{tag}>{html.escape(str(v))}</{tag}>"
    head = "".join(cell("th", h) for h in header)
    body = "".join("<tr>" + "".join(cell("td", v) for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def recorded_rows(longrange: dict | None, recall: dict | None) -> tuple[list[str], list[list[str]]]:
    """The trained rows of chapter 15 from the recorded results files, where present (chapter 15).

    ``longrange``: a ``results/longrange.json`` record — per task, each family's test accuracy at its
    best learning rate, "mean [min, max]" over seeds, with the input-blind baseline. ``recall``: a
    ``results/recall.json`` record — softmax, linear attention and the selective SSM (where recorded) at the
    smallest width.
    Returns (header, rows) for ``html_table``.
    """
    header = ["measurement", *ARCHS]
    rows = []
    if longrange is not None:
        table = longrange["results"]["table"]
        for task in dict.fromkeys(r["task"] for r in table):
            by = {r["arch"]: r for r in table if r["task"] == task}
            base = next(iter(by.values()))["baseline"]
            rows.append([f"{task} (T = {next(iter(by.values()))['length']}; baseline {base:.3g})",
                         *(f"{by[a]['mean']:.2f} [{by[a]['min']:.2f}, {by[a]['max']:.2f}]" if a in by else "—"
                           for a in ARCHS)])
    if recall is not None and "table_width" in recall["results"]:
        t = recall["results"]["table_width"]
        w = min(r["width"] for r in t)
        by = {r["arch"]: r for r in t if r["width"] == w}
        cell = lambda a: f"{by[a]['mean']:.2f} [{by[a]['min']:.2f}, {by[a]['max']:.2f}]" if a in by else "—"
        rows.append([f"MQAR recall, d = {w} (chapter 12)", "—", "—", cell("softmax"), cell("linear"), cell("selective"),
                     "—"])
    return header, rows


SETTINGS = {
    "tiny": dict(params=12_000, small_params=6_000, widths=list(range(8, 49, 4)), depth_lengths=[4, 8], reach_T=33,
                 cost_lengths=[64, 256], rounds=2, sweep_steps=3, batch=4, context=16, lr=3e-3, contexts=[32, 128],
                 piece=32),
    "quick": dict(params=30_000, small_params=8_000, widths=list(range(8, 129, 4)), depth_lengths=[16, 64], reach_T=257,
                  cost_lengths=[256, 1024], rounds=3, sweep_steps=40, batch=8, context=64, lr=3e-3,
                  contexts=[256, 4096], piece=512),                                          # chapter 15's
    "full": dict(params=400_000, small_params=100_000, widths=list(range(16, 513, 8)), depth_lengths=[32, 128],
                 reach_T=1025, cost_lengths=[1024, 4096], rounds=5, sweep_steps=1500, batch=32, context=256,
                 lr=2e-3, contexts=[1024, 16384], piece=1024),
}


def measure_all(s: dict, seed: int, device=None, progress: bool | None = None) -> dict:
    """Every row of chapter 15's table and its use-case numbers for one ``seed`` (every stream from ``seed``)."""
    g = seed_everything(seed)
    corpus = CharCorpus()
    V = corpus.vocab_size
    width, models, n_params = matched_models(V, s["params"], s["widths"], device)
    seq_depth = {a: depth_per_token(m, "reference", s["depth_lengths"], device) for a, m in models.items()}
    par_depth = {a: depth_per_token(m, "parallel", s["depth_lengths"], device) for a, m in models.items()}
    reach, fade = gradient_fade(models, torch.randint(0, V, (4, s["reach_T"]), generator=g).to(device))
    _, cost_slope = flop_exponent(models, s["cost_lengths"], device)
    text_loss, gain = size_gain(corpus, s, seed=seed, device=device, progress=progress)
    state_at, states, grows = generation_state(models, V, s["contexts"], s["piece"], g, device)
    step_work, latency = step_cost(models, states, s["rounds"], device)
    reach_far = {a: r[-1].item() for a, r in reach.items()}
    rows = table_rows(seq_depth, par_depth, fade, reach_far, cost_slope, gain, grows)
    per_arch = {a: {"width": width[a], "params": n_params[a], "seq_depth": seq_depth[a], "par_depth": par_depth[a],
                    "reach_far": reach_far[a], "fade": fade[a], "cost_slope": cost_slope[a],
                    "loss_small": text_loss[a]["small"], "loss_large": text_loss[a]["large"], "gain": gain[a],
                    "state_bytes": state_at[a], "bytes_per_token": grows[a], "step_flops": step_work[a],
                    "latency_s": latency[a], **{f"verdict_{row}": cells[a] for row, cells in rows.items()}}
                for a in ARCHS}
    return {"seed": seed, "archs": per_arch}


def render_architectures(results: dict) -> list[str]:
    """The table of an ``architectures`` results dict: per seed and family, parameters, depth per token (sequential,
    parallel), gradient fade, FLOP exponent, size gain, state bytes per token and latency (chapter 15)."""
    s = results["settings"]
    head = (f"{'seed':>4s} {'model':17s} {'params':>7s} {'seq':>5s} {'par':>5s} {'fade':>8s} {'slope':>5s} "
            f"{'gain':>6s} {'B/token':>7s} {'ms/token':>8s}")
    lines = [head + f"   (ops/token; FLOP exponent over n = {s['cost_lengths']}; latency after {s['contexts'][-1]} tokens)"]
    for r in results["runs"]:
        for a, m in r["archs"].items():
            lines.append(f"{r['seed']:4d} {a:17s} {m['params']:7d} {m['seq_depth']:5.2f} {m['par_depth']:5.2f} "
                         f"{m['fade']:8.1e} {m['cost_slope']:5.2f} {m['gain']:+6.3f} {m['bytes_per_token']:7.0f} "
                         f"{1e3 * m['latency_s']:8.3f}")
    return lines


@register("architectures", "chapter 15: the six families' comparison table: depth, reach, FLOP exponent, gain, "
          "state, latency", chapter=15, render=render_architectures)
def architectures(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """Chapter 15's comparison at ``scale``, once per seed, in one process (the latency is timed)."""
    s = SETTINGS[scale]
    return {"settings": s, "runs": [measure_all(s, seed, device, progress) for seed in seeds]}
