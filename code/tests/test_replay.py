"""The committed results files are what the code computes: one cheap recorded run of each study, run again.

``test_every_committed_results_file_was_made_with_the_settings_in_the_code`` pins a study's *settings*; these tests
pin the code between the settings and the numbers (a training option, a probe's sample size, a metric's definition):
each reruns recorded runs with the recorded settings and seed, on one thread as recorded, and compares every number
it stores. The tolerances allow another machine's float rounding (an accuracy may move by a few predictions), not a
change in what is computed. A run that costs more than a few seconds is cut short and compared as far as it went
(its curve, its sizes); where no run is cheap enough (encoder_decoder), what needs no training is compared.
"""
import json
import math

import pytest

from seqlab import experiments, measure


def processor(device: str) -> str:
    """The processor's name in a recorded device string (``measure.device_name``): what comes before the first comma."""
    return device.split(",")[0]


def record(name: str) -> dict:
    return json.loads((experiments.results_dir() / f"{name}.json").read_text())


def assert_same(recorded, rerun, *, rel: float = 1e-3, abs_: float = 2e-3, where: str = "run"):
    """Every number in ``recorded`` equals the rerun's (within ``rel``/``abs_``); every key and list length agrees."""
    if isinstance(recorded, dict):
        assert isinstance(rerun, dict) and set(rerun) == set(recorded), f"{where}: keys {sorted(rerun)} != {sorted(recorded)}"
        for key in recorded:
            assert_same(recorded[key], rerun[key], rel=rel, abs_=abs_, where=f"{where}[{key!r}]")
    elif isinstance(recorded, (list, tuple)):
        assert isinstance(rerun, (list, tuple)) and len(rerun) == len(recorded), f"{where}: length {len(rerun)} != {len(recorded)}"
        for i, (a, b) in enumerate(zip(recorded, rerun)):
            assert_same(a, b, rel=rel, abs_=abs_, where=f"{where}[{i}]")
    elif isinstance(recorded, float) or isinstance(rerun, float):
        assert math.isclose(rerun, recorded, rel_tol=rel, abs_tol=abs_), f"{where}: rerun {rerun!r}, recorded {recorded!r}"
    else:
        assert rerun == recorded, f"{where}: rerun {rerun!r}, recorded {recorded!r}"


def test_assert_same_notices_a_changed_number_key_or_length():
    assert_same({"a": [1.0, 2], "b": "x"}, {"a": [1.0 + 1e-6, 2], "b": "x"})
    for changed in ({"a": [1.1, 2], "b": "x"}, {"a": [1.0, 3], "b": "x"}, {"a": [1.0], "b": "x"}, {"a": [1.0, 2]}):
        with pytest.raises(AssertionError):
            assert_same({"a": [1.0, 2], "b": "x"}, changed)


# Chapter 13's copying study: a run that stops early (S4D), one whose clipped steps diverge (the selective layer at
# the grid's top rate), and a selective-copying run with its longer-noise accuracies and the selectivity probe.
COPYING_RUNS = [("copying", "S4D (time-invariant)", 0.03, 0, 400),
                ("copying", "selective scan", 0.1, 0, 400),
                ("selective copying", "selective scan", 0.01, 0, 400)]


@pytest.mark.parametrize("task,layer,lr,seed,budget", COPYING_RUNS)
def test_recorded_copying_runs_are_reproduced(task, layer, lr, seed, budget, one_thread):
    from seqlab.data.tasks import CopyTask, SelectiveCopy
    from seqlab.experiments import ssm
    rec = record("copying")
    s = rec["results"]["settings"]
    (want,) = [r for r in rec["results"]["runs"]
               if (r["task"], r["layer"], r["lr"], r["seed"], r["budget"]) == (task, layer, lr, seed, budget)]
    steps = budget if want["steps"] < budget or task != "copying" else 100  # a run that stops early runs whole
    if steps > 150 and processor(rec["device"]) != processor(measure.device_name()):
        pytest.skip(f"recorded on {rec['device']}: a whole run of {steps} steps is replayed only on that processor (another "
                    "one's float rounding, grown over hundreds of steps, can move an accuracy by more than the tolerance)")
    tasks = {"copying": CopyTask(**s["copy"]), ssm.SELECTIVE_COPYING: SelectiveCopy(**s["sel"])}
    got = ssm.copier_run(task, layer, lr, seed, steps, s, tasks)
    if steps < budget:  # a run cut short: its curve so far
        n = len(got["curve"]["accuracy"])
        assert n == steps // 50 and got["steps"] == steps
        assert_same(want["curve"]["accuracy"][:n], got["curve"]["accuracy"], where=f"{task}/{layer}/{lr}")
    else:
        assert_same(want, got, where=f"{task}/{layer}/{lr}")


# ----------------------------------------------------------------------------------------------------------------------
# The other studies. A run is cut short where a whole one costs more than a few seconds: the rerun then compares what it
# stored so far (its curve, one entry per evaluation) and every number that does not depend on how long it trained
# (sizes, the baseline); the rest (final accuracy, steps) needs the whole run.

def recorded_run(name: str, **match) -> dict:
    """The one run of results/NAME.json whose fields equal ``match``."""
    (run,) = [r for r in record(name)["results"]["runs"] if all(r[k] == v for k, v in match.items())]
    return run


def without(run: dict, *keys: str) -> dict:
    """``run`` less ``keys`` (wall-clock times, which cannot be replayed)."""
    return {k: v for k, v in run.items() if k not in keys}


def assert_cut_short(want: dict, got: dict, *, fixed, curves, where: str):
    """A rerun cut short: each key of ``fixed`` equal, and each list of ``curves`` (a key, or a path of keys) equal to
    the recorded one up to the rerun's length (at least one entry, and no more than were recorded)."""
    assert_same({k: want[k] for k in fixed}, {k: got[k] for k in fixed}, where=where)
    for path in curves:
        path = (path,) if isinstance(path, str) else path
        w, g = want, got
        for k in path:
            w, g = w[k], g[k]
        assert 0 < len(g) <= len(w), f"{where}{list(path)}: rerun has {len(g)} entries, recorded {len(w)}"
        assert_same(w[:len(g)], g, where=f"{where}{list(path)}")


def test_encoder_decoder_model_sizes_are_reproduced():
    """Chapter 7's encoder_decoder: its runs train 600 steps (about 30 s each here, two models) and were recorded on an
    Intel CPU; rerun here they give other numbers (the recording commit's code gives the same as today's: the rounding of
    another CPU, grown over 600 steps), so only what needs no training is compared: every run's parameter counts and
    the Transformer's FFN width d_ff, from ``make_models`` (``transformer_config`` matches the GRU's size)."""
    from seqlab.experiments import encoder_decoder
    rec = record("encoder_decoder")["results"]
    models = encoder_decoder.make_models(rec["settings"])
    got = {"params": {n: encoder_decoder.count(m) for n, m in models.items()}, "d_ff": models["Transformer"].config.d_ff}
    for run in rec["runs"]:
        assert_same({k: run[k] for k in got}, got, where=f"encoder_decoder lr={run['lr']} seed={run['seed']}")


# Chapter 14's three recall studies share ``hybrid.recall_run`` (weights and batches from seed + 2, the held-out queries
# from TEST_QUERIES), 150-2000 steps a run: each cut short after its first evaluation (step 50), one model of each
# layer mix with a recurrence: the hybrid (GR), Hawk (RR), and Griffin (RA) at hybrid_lr's top rate.
HYBRID_RUNS = [("hybrid_recall", "hybrid (GR)", None, 1),
               ("hybrid_steps", "Hawk (RR)", None, 0),
               ("hybrid_lr", "Griffin (RA)", 0.01, 1)]


@pytest.mark.parametrize("study,model,lr,seed", HYBRID_RUNS)
def test_recorded_hybrid_recall_runs_are_reproduced(study, model, lr, seed, one_thread):
    """``recall_run`` with the study's recorded settings (hybrid_lr's at the run's rate), stopped at step 50: the
    held-out recall there, the parameter count and chance."""
    from seqlab.data.gapped_recall import GappedRecall
    from seqlab.experiments import hybrid
    s = record(study)["results"]["settings"]
    rate = {} if lr is None else {"lr": lr}  # hybrid_lr's runs: their own rate
    want = recorded_run(study, model=model, seed=seed, **rate)
    task = GappedRecall(n_pairs=s["pairs"], gap=s["gap"], n_queries=s["queries"], vocab=s["vocab"])
    got = hybrid.recall_run(model, seed, dict(s, **rate, steps=50), task)
    assert_cut_short(want, got, fixed=("model", "seed", "params", "chance"),
                     curves=[("curve", "step"), ("curve", "accuracy")], where=f"{study}/{model}")


# Chapter 11's span_run, cut at 100 steps (four evaluations; a whole run is 12-140 s): an LSTM control (the loss, ICL,
# copy-loss and exact-match curves of sequence_scores) and a two-layer attention model at induction_lr's 3e-2 (the head
# scores: the best previous-token head of layer 1, the best prefix-matching head of layer 2).
SPAN_RUNS = [("induction", "lstm", 32, 0.03, 1), ("induction_lr", "attention", 2, 0.03, 0)]


@pytest.mark.parametrize("study,kind,size,lr,seed", SPAN_RUNS)
def test_recorded_induction_runs_are_reproduced(study, kind, size, lr, seed, one_thread):
    """``span_run`` with the study's recorded settings, 100 steps: every curve it stores, so far, and the parameter
    count (the selection loss, drop step and circuit tests need the whole run)."""
    from seqlab.data.tasks import RepeatedSpans
    from seqlab.experiments import induction
    s = record(study)["results"]["settings"]
    want = recorded_run(study, kind=kind, size=size, lr=lr, seed=seed)
    task = RepeatedSpans(length=s["T"], vocab=s["vocab"], span_min=s["span_min"], span_max=s["span_max"],
                         gap_max=s["gap_max"])
    got = induction.span_run(kind, size, lr, seed, dict(s, steps=100), task)
    curves = ["eval_step", "loss", "icl", "copy loss", "exact"] + (["best_prefix", "best_previous"] if kind == "attention" else [])
    assert_cut_short(want, got, fixed=("kind", "size", "lr", "seed", "params"), curves=curves, where=f"{study}/{kind} {size}")


def test_induction_sizes_are_reproduced():
    """The induction sweep's two-layer attention model's parameter count and the LSTM state sizes matched to it
    (``matched_hidden``, times ``lstm_scale``): no training."""
    from seqlab.experiments import induction
    rec = record("induction")["results"]
    s = rec["settings"]
    n_two = induction.count_parameters(induction.attention_model(2, s["d_model"], vocab=s["vocab"], n_heads=s["n_heads"],
                                                                 T=s["T"]))
    h = induction.matched_hidden(n_two, vocab=s["vocab"], d_embed=s["d_model"])
    assert_same({"params_two_layer": rec["params_two_layer"], "lstm_hidden": rec["lstm_hidden"]},
                {"params_two_layer": n_two, "lstm_hidden": [h * k for k in s["lstm_scale"]]})


def test_recorded_longrange_run_is_reproduced(one_thread):
    """Chapter 15's longrange: the row-reading LSTM on Pathfinder (its own module: forget-gate bias, one-hot rows, the
    label moved to the last row), rate 1e-3, seed 1, cut at 100 steps (one evaluation of 600; ListOps' runs still guess
    one class there): the validation accuracy so far, the width chosen for the parameter budget, the sequence length
    and the baseline. Its whole-run path is ssm_lags' test below."""
    from seqlab.experiments import longrange
    s = record("longrange")["results"]["settings"]
    want = recorded_run("longrange", task="pathfinder", arch="LSTM (rows)", lr=0.001, seed=1)
    got = longrange.train_one("pathfinder", "LSTM (rows)", 0.001, task_options=s["tasks"]["pathfinder"], params=s["params"],
                              steps=100, batch=s["batch"], eval_batch=s["eval_batch"], eval_every=s["eval_every"], seed=1)
    assert_cut_short(want, got, fixed=("task", "arch", "width", "params", "lr", "seed", "length", "baseline"),
                     curves=[("curve", "step"), ("curve", "val_accuracy")], where="longrange/pathfinder/LSTM (rows)")


def test_longrange_sizes_and_baselines_are_reproduced():
    """What every cell of longrange's table stores that needs no training: the parameter count of the width chosen for
    the budget (``width_for``), the length the model reads (patches and rows are shorter) and the input-blind baseline
    (ListOps': its most frequent answer in 4096 samples)."""
    from seqlab.experiments import longrange
    from seqlab.measure import count_parameters
    rec = record("longrange")["results"]
    s = rec["settings"]
    tasks = {name: longrange.make_task(name, **options) for name, options in s["tasks"].items()}
    baselines = {name: longrange.baseline(task) for name, task in tasks.items()}
    for row in rec["table"]:
        task, arch = tasks[row["task"]], row["arch"]
        width = longrange.width_for(arch, task, s["params"])
        x, _ = task.sample(1, generator=0)
        got = {"params": count_parameters(longrange.make_model(arch, longrange._vocab(arch, task), width, task=task)),
               "length": longrange.inputs_for(arch, task, x).shape[1], "baseline": baselines[row["task"]]}
        assert_same({k: row[k] for k in got}, got, where=f"longrange/{row['task']}/{arch}")


def test_recorded_ssm_lags_run_is_reproduced(one_thread):
    """Chapter 15's ssm_lags: the SSM at lag 4, rate 1e-2, seed 1, whole (it reaches 0.99 validation recall at its first
    evaluation, step 100): test and validation accuracy, curve, steps, width, baseline; not its seconds."""
    from seqlab.experiments import longrange
    s = record("ssm_lags")["results"]["settings"]
    want = recorded_run("ssm_lags", arch="SSM", lag=4, lr=0.01, seed=1)
    got = longrange.train_one("lag", "SSM", 0.01, task_options=dict(lag=4, vocab=s["vocab"]), params=s["params"],
                              steps=s["steps"], batch=s["batch"], eval_batch=s["eval_batch"], eval_every=s["eval_every"],
                              seed=1)
    assert_same(without(want, "seconds"), without({**got, "lag": 4}, "seconds"), where="ssm_lags/SSM lag 4")


def test_recorded_recall_run_is_reproduced(one_thread):
    """Chapter 12's MQAR: softmax attention at width 16, rate 1e-2, seed 2, whole (it reaches 0.99 validation recall at
    step 300 of 2000; a run cut at its first evaluation, step 100, still recalls at about chance, which a change of the
    weight decay moves by a few predictions only): test and validation recall, curve, final training loss, and the sizes
    it stores (d_phi, KV-cache bytes, parameters); not its seconds."""
    from seqlab.experiments import recall
    s = record("recall")["results"]["settings"]
    want = recorded_run("recall", axis="width", arch="softmax", width=16, lr=0.01, seed=2)
    got = recall.train_one("softmax", 16, 0.01, vocab=s["vocab"], length=s["length"], n_pairs=s["n_pairs"],
                           heads=s["heads"], layers=s["layers"], steps=s["steps"], batch=s["batch"],
                           eval_batch=s["eval_batch"], eval_every=s["eval_every"], seed=2)
    assert_same(without(want, "seconds"), without({**got, "axis": "width"}, "seconds"), where="recall/softmax")


def test_recorded_positions_run_is_reproduced(one_thread):
    """Chapter 8's positions study: the sinusoidal table scaled to the embeddings' size (the study's own arm), rate 1e-3,
    seed 1, whole (250 steps; nothing is stored along the way): its loss at each of the 4L positions of the validation
    text and its mean training loss over the last ``tail`` steps; not its seconds."""
    from seqlab.data import CharCorpus
    from seqlab.experiments import attention
    s = record("positions")["results"]["settings"]
    want = recorded_run("positions", encoding=attention.SCALED_SINUSOIDAL, lr=0.001, seed=1)
    corpus = CharCorpus()
    W = 4 * s["train_len"] + 1  # the validation text cut into windows of 4L + 1, as ``positions`` does
    val = corpus.val[: len(corpus.val) // W * W].view(-1, W)
    got = attention.position_study_run(attention.SCALED_SINUSOIDAL, 0.001, 1, s, corpus, val)
    assert_same(without(want, "seconds"), without(got, "seconds"), where="positions/sinusoidal, scaled")


def test_recorded_norm_placement_run_is_reproduced(one_thread):
    """Chapter 7's norm_placement: the arm 'Post-Norm, 3 layers', seed 0, whole (150 steps): final loss, the step it
    reaches the unigram entropy, its floor, the gradient ratio and the bottom block's late gradient; and the unigram
    entropy itself."""
    from seqlab.data import CharCorpus
    from seqlab.experiments import norms
    from seqlab.measure import unigram_entropy
    rec = record("norm_placement")["results"]
    want = recorded_run("norm_placement", arm="Post-Norm, 3 layers", seed=0)
    corpus = CharCorpus()
    unigram = unigram_entropy(corpus.train, corpus.vocab_size)
    assert_same(rec["unigram"], unigram, where="norm_placement unigram")
    h, grads = norms.deep_run(want["norm_first"], layers=want["layers"], warmup=want["warmup"], lr=want["lr"], seed=0,
                              s=rec["settings"], corpus=corpus)
    got = {k: want[k] for k in ("arm", "seed", "norm_first", "layers", "warmup", "lr")}
    # losses and gradient norms (the bottom block's is about 0.09), not accuracies: a relative tolerance only
    assert_same(want, {**got, **norms.summarise_run(h, grads, unigram)}, abs_=0, where="norm_placement/Post-Norm, 3 layers")


def test_recorded_parallel_rnn_run_is_reproduced(one_thread):
    """Chapter 13.10's parallel_rnn: the minGRU (its chunked scan) at rate 1e-2, seed 0, cut at 100 steps (one
    evaluation of 600): its validation-loss curve so far and its parameter count (``matched_widths``)."""
    from seqlab.data import CharCorpus
    from seqlab.experiments import parallel_rnn
    s = record("parallel_rnn")["results"]["settings"]
    want = recorded_run("parallel_rnn", arch="minGRU", lr=0.01, seed=0)
    got = parallel_rnn.loss_run("minGRU", 0.01, 0, dict(s, steps=100), CharCorpus())
    assert_cut_short(want, got, fixed=("arch", "lr", "seed", "params"), curves=[("curve", "step"), ("curve", "val")],
                     where="parallel_rnn/minGRU")


# Chapter 10's scaling study (results/scaling-cpu.json, a run per file under results/scaling-cpu/runs): on the Python
# standard library's source, so only where this Python's stdlib is the recorded one.
@pytest.fixture(scope="module")
def stdlib_corpus():
    import sys
    from seqlab.data import load_corpus
    recorded = record("scaling-cpu")["results"]["corpus"]["python"]
    if ".".join(map(str, sys.version_info[:3])) != recorded:
        pytest.skip(f"the scaling study's corpus is Python {recorded}'s standard library")
    return load_corpus("stdlib")


def scaling_run_files() -> dict:
    return {p.stem: json.loads(p.read_text()) for p in (experiments.results_dir() / "scaling-cpu" / "runs").glob("*.json")}


def test_scaling_corpus_runs_and_isoflop_plan_are_the_recorded_ones(stdlib_corpus):
    """What the scaling study computes before it trains: the corpus (its SHA-256 and sizes), the hash of the settings
    that change a run's numbers (the corpus, EVAL_SEED and FORGET_BIAS in it) that every saved run carries, and the
    IsoFLOP plan (each budget's widths and the steps that spend it: ``flops_per_token``, ``width_for``)."""
    from seqlab.experiments import scaling
    rec = record("scaling-cpu")["results"]
    s = rec["settings"]
    info = scaling.corpus_info(stdlib_corpus)
    assert_same(without(rec["corpus"], "root"), without(info, "root"), where="scaling corpus")
    tag = scaling.settings_hash({k: s[k] for k in scaling.HASHED}, info["sha256"])
    assert {f["settings_hash"] for f in scaling_run_files().values()} == {tag}
    plan = lambda rows: sorted((r["family"], r["budget"], r["width"], r["steps"], r["n_opt_predicted"]) for r in rows)
    assert_same(plan(rec["isoflop"]), plan(scaling.isoflop_plan(s, stdlib_corpus.vocab_size)), where="isoflop plan")


def test_recorded_scaling_run_is_reproduced_to_its_first_curve_point(stdlib_corpus, one_thread, monkeypatch):
    """The smallest LSTM of the learning-rate grid (width 24, rate 8e-3, seed 0; 800 steps, 11 s of training recorded)
    stopped at its first curve point (step 50): the tune loss there (the recipe: forget-gate bias, warm-up and cosine
    schedule, AdamW's beta2 and weight decay, clipping; the curve's windows), its parameter counts and its FLOPs per
    token. ``train_one`` runs with the recorded settings; ``train`` is told to stop after the first evaluation, and the
    report's evaluation windows are cut to one (their losses are not compared). The curve's seconds are not compared."""
    from seqlab.experiments import scaling
    from seqlab.train import train
    s = record("scaling-cpu")["results"]["settings"]
    want = scaling_run_files()["lr-lstm-d24-lr0.008-s0-n800"]["run"]
    monkeypatch.setattr(scaling, "train", lambda *a, **kw: train(*a, **kw, stop_when=lambda h: True))
    got = scaling.train_one("lstm", 24, 0.008, corpus=stdlib_corpus, steps=800, batch=s["batch"], context=s["context"],
                            layers=s["layers"], windows=1, tune_windows=1, curve_every=s["curve_every"],
                            curve_windows=s["curve_windows"], seed=0, **{k: s[k] for k in scaling._RECIPE})
    assert got["steps"] == 50
    summary = lambda r: {**{k: r[k] for k in ("family", "width", "lr", "seed", "params", "params_nonemb")},
                         "first curve point": [r["curve"][0][0], r["curve"][0][2]],  # [step, seconds, loss, CPU seconds]
                         "flops per token": r["flops"] / r["tokens"], "6N per token": r["flops_6N"] / r["tokens"]}
    assert_same(summary(want), summary(got), where="scaling/lstm d24")
