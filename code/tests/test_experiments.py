"""seqlab.experiments: the command line, the results file, and the scaling experiment's parts (chapter 10)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from seqlab import experiments
from seqlab.experiments import scaling

CODE = Path(__file__).resolve().parents[1]


def test_help_lists_every_experiment(capsys):
    from seqlab.experiments.__main__ import main
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for name, e in experiments.REGISTRY.items():
        assert name in out and e.summary[:30] in out


@pytest.fixture(scope="module")
def scaling_tiny(tmp_path_factory):
    """`python -m seqlab.experiments scaling --scale tiny --seeds 3`, run once in this process for the tests
    below: (the results file's path, what it printed, its argv)."""
    import contextlib
    import io
    from seqlab.experiments.__main__ import main
    out_file = tmp_path_factory.mktemp("scaling") / "sub" / "scaling.json"
    argv = ["scaling", "--scale", "tiny", "--seeds", "3", "--out", str(out_file), "--no-progress"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return out_file, printed.getvalue(), argv


def test_the_command_writes_a_complete_results_file(scaling_tiny):
    out_file, stdout, argv = scaling_tiny
    assert_complete(experiments.load(out_file, "scaling"), argv, stdout, seeds=[3])
    record = json.loads(out_file.read_text())
    res = record["results"]
    widths, lrs = res["settings"]["widths"], res["settings"]["lrs"]
    assert len(res["runs"]) == sum(len(widths[f]) for f in scaling.FAMILIES)  # the chosen lr of every size, one seed
    assert len(res["lr_choice"]) == len(res["runs"]) and all(c["grid"] == lrs[c["family"]] for c in res["lr_choice"])
    for family in scaling.FAMILIES:
        assert [r["width"] for r in res["best"][family]] == widths[family]     # one best lr per size
        assert set(res["fits"][family]) == {"non_embedding", "total", "compute"}
        tokens = {r["tokens"] for r in res["best"][family]}
        assert len(tokens) == 1                                                 # matched tokens
    assert set(res["ngram"]["levels"]) == {"1", "2", "3"} and res["corpus"]["sha256"]
    assert res["isoflop"] and all(r["budget"] in res["settings"]["iso_budgets"] for r in res["isoflop"])
    assert not res["checkpoints"]  # only a sweep with a runs directory (the cpu scale) keeps state dicts
    assert experiments.load(out_file, "scaling")["results"]["settings"] == res["settings"]
    assert "alpha" in stdout and str(out_file) in stdout


def test_load_rejects_what_is_not_a_results_file(tmp_path):
    assert experiments.load(tmp_path / "absent.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"experiment": "scaling"}))
    with pytest.raises(ValueError, match="lacks"):
        experiments.load(bad)
    with pytest.raises(ValueError, match="unknown experiment"):
        experiments.run("nope")
    with pytest.raises(ValueError, match="scale"):
        experiments.run("scaling", scale="medium")
    with pytest.raises(ValueError, match="seeds"):
        experiments.run("scaling", scale="tiny", seeds=[])


def test_load_writes_a_recorded_single_thread_device_in_the_singular_that_device_name_now_uses(tmp_path):
    from seqlab.measure import device_name
    record = json.loads((experiments.results_dir() / "copying.json").read_text())
    record["device"] = "AMD EPYC CPU, 2 logical cores, 1 PyTorch threads"   # as files written before the fix say
    f = tmp_path / "old.json"
    f.write_text(json.dumps(record))
    loaded = experiments.load(f, "copying")
    assert loaded["device"] == record["device"].replace("threads", "thread")
    assert loaded["results"] == record["results"]
    if torch.get_num_threads() == 1:
        assert device_name("cpu").endswith(", 1 PyTorch thread")


def test_parameter_counts_by_hand():
    gpt = scaling.make_model("transformer", 32, vocab=50, context=16, layers=2)
    c = scaling.count_parameters(gpt)
    per_block = 4 * (32 * 32 + 32) + 2 * 32 * 128 + 128 + 32 + 4 * 32          # attention, FFN, two LayerNorms
    assert c["non_embedding"] == 2 * per_block + 2 * 32                           # + the final LayerNorm
    assert c["total"] == c["non_embedding"] + 50 * 32 + 16 * 32 + (32 * 50 + 50)
    lstm = scaling.make_model("lstm", 24, vocab=50, context=16, layers=2)
    c = scaling.count_parameters(lstm)
    assert c["non_embedding"] == 2 * (4 * 24 * (24 + 24) + 8 * 24)
    with pytest.raises(ValueError, match="family"):
        scaling.make_model("gru", 8, 50, 16)


@pytest.mark.parametrize("family", scaling.FAMILIES)
def test_flop_count_matches_pytorchs_counter(family):
    T, B = 64, 2
    model = scaling.make_model(family, 32, vocab=40, context=T, layers=2)
    x = torch.randint(0, 40, (B, T))
    with FlopCounterMode(display=False) as counter:  # the GPT counted in its written-out form (the fused one is opaque)
        model(x, form="parallel") if family == "transformer" else model(x)
    forward_per_token = scaling.flops_per_token(model, T)["C"] / 3
    measured = counter.get_total_flops() / (B * T)
    if family == "transformer":                                      # matrix products, incl. Q K^T and A V
        assert measured == pytest.approx(forward_per_token, rel=1e-6)
    else:                                                            # the fused LSTM is one op the counter skips:
        head = 2 * model.head.weight.numel()                          # it sees the head only
        assert measured == pytest.approx(head, rel=1e-6)
        assert forward_per_token > head


def test_fit_recovers_a_known_law():
    N = [1e3, 3e3, 1e4, 3e4, 1e5]
    L = [5.0 * n ** -0.3 + 1.2 for n in N]
    fit = scaling.fit_scaling_law(N, L, n_grid=2000)
    assert fit["alpha"] == pytest.approx(0.3, abs=0.01) and fit["c"] == pytest.approx(1.2, abs=0.02)
    plain = scaling.fit_scaling_law(N, [5.0 * n ** -0.3 for n in N])
    assert plain["alpha"] == pytest.approx(0.3, abs=1e-3)
    with pytest.raises(ValueError, match="3 distinct"):
        scaling.fit_scaling_law([1, 2], [3, 2])


def test_bootstrap_interval_contains_the_exponent_and_narrows_with_less_noise():
    g = torch.Generator().manual_seed(0)
    N = [1e3, 3e3, 1e4, 3e4, 1e5]

    def windows(noise):
        return [(2.0 * n ** -0.25 + 0.5 + noise * torch.randn(64, generator=g)).tolist() for n in N]

    wide = scaling.bootstrap_exponent(N, windows(0.05), n_boot=40)
    narrow = scaling.bootstrap_exponent(N, windows(0.005), n_boot=40)
    assert wide["lo"] <= wide["alpha"] <= wide["hi"]
    assert narrow["hi"] - narrow["lo"] < wide["hi"] - wide["lo"]


def test_position_buckets():
    assert scaling.position_buckets(256) == [(0, 8), (8, 32), (32, 64), (64, 128), (128, 256)]
    assert scaling.position_buckets(100) == [(0, 8), (8, 32), (32, 64), (64, 100)]


def test_torchrun_spreads_a_sweep_over_two_processes(tmp_path, scaling_tiny):
    """Two gloo processes under PyTorch's launcher give the same results file as one process."""
    env = {**os.environ, "PYTHONPATH": str(CODE), "SEQLAB_PROGRESS": "0", "SEQLAB_THREADS": "1"}
    one_file, _, argv = scaling_tiny
    args = argv[:5]                                     # scaling --scale tiny --seeds 3
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "seqlab.experiments", *args, "--out", str(tmp_path / "two.json")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = (json.loads(f.read_text()) for f in (one_file, tmp_path / "two.json"))
    assert r1["processes"] == 1 and r2["processes"] == 2 and r1["command"].startswith("python -m seqlab.experiments")
    assert r2["command"].startswith("torchrun --standalone --nproc_per_node=2 -m seqlab.experiments scaling")
    key = lambda r: (r["family"], r["width"], r["lr"], r["seed"])
    assert [key(r) for r in r2["results"]["runs"]] == [key(r) for r in r1["results"]["runs"]]  # the original order
    for a, b in zip(r1["results"]["runs"], r2["results"]["runs"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6), key(a)  # each run seeds itself
    assert [r["width"] for r in r2["results"]["isoflop"]] == [r["width"] for r in r1["results"]["isoflop"]]


def test_ranks_agree_on_a_value_measured_once_and_refuse_configurations_that_differ(tmp_path):
    """Under torchrun, ``from_rank0`` gives every rank rank 0's value, and ``map_runs`` refuses lists that differ
    between the ranks (a sweep ordered by each rank's own timing lost runs that way)."""
    script = tmp_path / "ranks.py"
    script.write_text(
        "import json, sys, torch\n"
        "from seqlab.experiments import distributed as d\n"
        "d.setup(torch.device('cpu'))\n"
        "out = {'agreed': d.from_rank0(lambda: d.rank() + 10)}\n"
        "out['same'] = d.map_runs(lambda c: c * c, [3, 1, 2])\n"
        "try:\n"
        "    d.map_runs(lambda c: c, [d.rank(), 5], desc='timed order')\n"
        "    out['refused'] = ''\n"
        "except ValueError as e:\n"
        "    out['refused'] = str(e)\n"
        "open(sys.argv[1] + str(d.rank()), 'w').write(json.dumps(out))\n")
    env = {**os.environ, "PYTHONPATH": str(CODE), "SEQLAB_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for r in (0, 1):
        out = json.loads((tmp_path / f"out{r}").read_text())
        assert out["agreed"] == 10 and out["same"] == [9, 1, 4]
        assert "timed order" in out["refused"] and "different configurations" in out["refused"]


def test_map_runs_is_a_plain_loop_outside_torchrun(monkeypatch):
    from seqlab.experiments import distributed
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched() and distributed.rank() == 0 and distributed.world_size() == 1
    assert distributed.map_runs(lambda c: c * c, [3, 1, 2]) == [9, 1, 4]
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer"):
        distributed.launched()


def test_recall_state_grows_with_width_for_linear_attention_and_with_length_for_softmax():
    from seqlab.experiments import recall

    def state_bytes(arch, width, T):
        model = recall.make_model(arch, width, vocab=16)
        with torch.no_grad():
            return model.state_bytes(model(torch.zeros(1, T, dtype=torch.long))[1])

    lin = [state_bytes("linear", w, 48) for w in (16, 32, 64)]
    assert lin[0] < lin[1] < lin[2]
    assert state_bytes("linear", 32, 96) == lin[1]                                       # fixed in T
    assert state_bytes("softmax", 32, 96) > state_bytes("softmax", 32, 48)               # the cache grows
    assert state_bytes("taylor", 32, 48) > lin[1]                                        # a larger d_phi
    with pytest.raises(TypeError, match="got int"):
        recall.make_model("linear", 16, vocab=16).state_bytes(48)


# ---------------------------------------------------------------- every chapter's experiment, through the command
ROOT = CODE.parent


def assert_data_only(record):
    """The results hold data (settings, runs, fits), not the text that ``summarize`` renders from them."""
    res, name = record["results"], record["experiment"]
    assert "summary_lines" not in res, name
    stored = json.dumps(res)
    rendered = [line for line in experiments.summarize(record).splitlines() if len(line.strip()) > 20]
    assert not [line for line in rendered if json.dumps(line) in stored], name


def assert_complete(record, argv, printed, seeds):
    """What every results file holds, whichever experiment wrote it, and what its command printed."""
    for key in experiments.REQUIRED:
        assert key in record, key
    name = argv[0]
    assert record["experiment"] == name and record["command"] == "python -m seqlab.experiments " + " ".join(argv)
    assert record["scale"] == "tiny" and record["seeds"] == seeds and record["processes"] == 1
    assert record["device"] and record["torch"] == torch.__version__ and record["python"]
    import datetime
    assert datetime.datetime.fromisoformat(record["date"]).tzinfo is not None         # a UTC timestamp
    lines = experiments.summarize(record).splitlines()
    assert len(lines) >= 2 and all(isinstance(line, str) for line in lines)
    assert all(line in printed for line in lines) and argv[argv.index("--out") + 1] in printed  # the summary is shown
    assert record["results"]["settings"]                                                      # the settings are recorded
    assert_data_only(record)


# scaling's own test above runs it through the command (the slowest tiny run, so not twice)
@pytest.mark.parametrize("name", sorted(set(experiments.REGISTRY) - {"scaling"}))
def test_every_experiment_runs_at_tiny_scale_and_writes_a_complete_results_file(name, tmp_path, capsys):
    from seqlab.experiments.__main__ import main
    out_file = tmp_path / f"{name}.json"
    argv = [name, "--scale", "tiny", "--seeds", "0", "1", "--out", str(out_file), "--no-progress"]
    start = time.perf_counter()
    assert main(argv) == 0
    wall = time.perf_counter() - start
    record = experiments.load(out_file, name)
    assert 0 <= record["results"]["seconds"] <= wall + 0.1, (record["results"]["seconds"], wall)  # run() times it
    assert_complete(record, argv, capsys.readouterr().out, seeds=[0, 1])
    res = record["results"]
    runs = res.get("runs")
    if runs and isinstance(runs[0], dict) and "seed" in runs[0]:                   # every seed asked for was run
        assert {r["seed"] for r in runs} == {0, 1}


def test_every_experiment_registers_a_renderer():
    missing = [name for name, e in experiments.REGISTRY.items() if e.render is None]
    assert not missing, f"register these with render=...: {missing}"
    for name, e in experiments.REGISTRY.items():  # the renderer lives beside the experiment it renders
        assert e.render.__module__ == e.fn.__module__, name


COMMITTED = [p for p in sorted((ROOT / "results").glob("*.json"))
             if "experiment" in json.loads(p.read_text())]  # not the benchmark tables


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_summarize_renders_every_committed_results_file(path):
    """A results file alone is enough to print its summary: data only, rendered by its experiment's renderer."""
    record = experiments.load(path)
    lines = experiments.summarize(record).splitlines()
    assert len(lines) >= 2 and all(line.strip() for line in lines), path.name
    assert_data_only(record)


def test_summarize_and_register_refuse_what_they_cannot_use(monkeypatch):
    with pytest.raises(ValueError, match="unknown experiment 'nope'; known: .*gating"):
        experiments.summarize({"experiment": "nope", "results": {}})
    with pytest.raises(TypeError, match="record must be a dict"):
        experiments.summarize([])
    with pytest.raises(ValueError, match="'results' dict"):
        experiments.summarize({"experiment": "gating"})
    with pytest.raises(TypeError, match="render must be a function"):
        experiments.register("x", "y", chapter=1, render="lines")
    unrendered = experiments.Experiment("x", "y", 1, fn=lambda **kw: {})
    monkeypatch.setitem(experiments.REGISTRY, "x", unrendered)
    with pytest.raises(ValueError, match="without a renderer"):
        experiments.summarize({"experiment": "x", "results": {}})


def test_mean_over_averages_the_matching_runs():
    runs = [{"cell": "a", "acc": 1.0, "v": [2.0]}, {"cell": "b", "acc": 0.0, "v": [4.0]}, {"cell": "a", "acc": 0.5, "v": [6.0]}]
    assert experiments.mean_over(runs, "acc", cell="a") == 0.75
    assert experiments.mean_over(runs, lambda r: r["v"][0]) == 4.0
    with pytest.raises(ValueError, match="no run has"):
        experiments.mean_over(runs, "acc", cell="c")


def test_every_chapter_with_an_experiment_calls_its_module():
    """The chapter and the command share one function: each chapter imports the module of its experiment."""
    for e in experiments.REGISTRY.values():
        module = e.fn.__module__                                                    # e.g. seqlab.experiments.recurrence
        short = module.rsplit(".", 1)[1]
        notebooks = sorted(ROOT.glob(f"chapters/{e.chapter:02d}*.ipynb"))       # a chapter and its companion pages
        assert notebooks, (e.name, e.chapter)
        codes = ["\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
                 for nb in notebooks]
        assert any(f"seqlab.experiments.{short} import" in code or f"from seqlab.experiments import {short}" in code
                   for code in codes), (e.name, [nb.name for nb in notebooks])


@pytest.mark.parametrize("args, message", [
    ((), "NAME"),                                              # no experiment
    (("scaling", "--scale", "huge"), "invalid choice"),
    (("scaling", "--seeds", "one"), "invalid int"),
    (("gating", "--seeds"), "expected at least one argument"),
    (("gating", "--seeds", "0", "x"), "invalid int value"),
    (("gating", "--seeds", "1", "1"), "must not repeat"),
    (("gating", "--scale", "medium"), "invalid choice"),
    (("gating", "--device", "tpu"), "invalid choice"),
    (("nonsense",), "invalid choice"),
])
def test_bad_arguments_exit_non_zero_with_a_message(args, message, capsys):
    from seqlab.experiments.__main__ import main
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code != 0 and message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_fails_clearly(tmp_path, capsys):
    from seqlab.experiments.__main__ import main
    out_file = tmp_path / "x.json"
    assert main(["gating", "--scale", "tiny", "--device", "cuda", "--out", str(out_file)]) == 2
    assert "cuda" in capsys.readouterr().err and not out_file.exists()             # no results file


def test_a_sweep_shows_progress_and_estimates_its_time(capsys):
    from seqlab.experiments import distributed
    assert distributed.map_runs(lambda c: c + 1, [1, 2, 3], progress=True, desc="toy") == [2, 3, 4]
    err = capsys.readouterr().err
    assert "toy: 3 runs; the first took" in err and "in all" in err
    assert distributed.estimate(10, 30.0) .startswith("runs: 10 runs; the first took 30.0 s, so about 5.0 min")
    assert "on each of 8 processes" in distributed.estimate(10, 1.0, processes=8)


def test_makefile_runs_every_experiment_at_full_scale():
    text = (ROOT / "Makefile").read_text()
    listed = set()
    for line in text.splitlines():
        if line.startswith(("EXPERIMENTS_SWEEP", "EXPERIMENTS_TIMED")):
            listed |= set(line.split(":=", 1)[1].split())
    assert listed == set(experiments.REGISTRY)
    assert "results-gpu:" in text and "results-cpu:" in text


def test_architectures_measures_each_row_for_every_family():
    """Chapter 15's table at the tiny scale: the structural rows come out as the mechanisms dictate, for each seed."""
    from seqlab.compare import ARCHS
    from seqlab.experiments import architectures
    res = architectures.architectures(scale="tiny", seeds=[0, 1])
    assert [r["seed"] for r in res["runs"]] == [0, 1]
    for r in res["runs"]:
        m = r["archs"]
        assert list(m) == list(ARCHS)
        assert m["Transformer"]["seq_depth"] == 0 and all(m[a]["seq_depth"] >= 1 for a in ARCHS if a != "Transformer")
        assert all(m[a]["par_depth"] >= 1 for a in ("RNN", "LSTM"))            # a nonlinear recurrence stays sequential
        assert all(m[a]["par_depth"] == 0 for a in ("Transformer", "linear attention", "SSM", "hybrid"))
        assert all(m[a]["bytes_per_token"] == 0 for a in ("RNN", "LSTM", "linear attention", "SSM"))
        # a KV cache: a key and a value of width d in each of two layers, 4 bytes a number; the hybrid has one such layer
        assert m["Transformer"]["bytes_per_token"] == 2 * 2 * m["Transformer"]["width"] * 4
        assert m["hybrid"]["bytes_per_token"] == 2 * m["hybrid"]["width"] * 4
        assert m["Transformer"]["cost_slope"] > max(m[a]["cost_slope"] for a in ("RNN", "LSTM", "linear attention", "SSM"))
        assert all(m[a]["step_flops"][0] == m[a]["step_flops"][-1] for a in ("RNN", "LSTM", "linear attention", "SSM"))
        assert m["Transformer"]["step_flops"][-1] > m["Transformer"]["step_flops"][0]   # its step attends over the cache
        assert all(m[a]["latency_s"] > 0 and m[a]["gain"] == m[a]["loss_small"] - m[a]["loss_large"] for a in ARCHS)
        assert m["Transformer"]["verdict_sequential"].startswith("no") and m["RNN"]["verdict_memory"].startswith("fixed")
    with pytest.raises(ValueError, match="k_near"):
        architectures.gradient_fade({}, torch.zeros(1, 8, dtype=torch.long), k_near=16)


def test_results_dir_is_the_checkouts_or_the_environments(monkeypatch, tmp_path):
    monkeypatch.delenv("SEQLAB_RESULTS", raising=False)
    assert experiments.results_dir() == CODE.parent / "results"           # imported from this checkout
    monkeypatch.setenv("SEQLAB_RESULTS", str(tmp_path / "elsewhere"))
    assert experiments.results_dir() == tmp_path / "elsewhere"


def test_an_installed_package_finds_results_beside_the_working_directorys_chapters(monkeypatch, tmp_path):
    """Outside a source checkout (the package installed elsewhere), ``results/`` is found from the working directory:
    beside ``chapters/`` when a page runs from there, else in the working directory itself."""
    monkeypatch.delenv("SEQLAB_RESULTS", raising=False)
    monkeypatch.setattr(experiments, "__file__", str(tmp_path / "site-packages" / "seqlab" / "experiments" / "__init__.py"))
    (tmp_path / "course" / "chapters").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "course" / "chapters")
    assert experiments.results_dir() == tmp_path / "course" / "results"
    monkeypatch.chdir(tmp_path / "course")
    assert experiments.results_dir() == tmp_path / "course" / "results"


def test_seed_streams_apply_the_offset_once(monkeypatch):
    from seqlab import seeding
    draw = lambda g: torch.randint(0, 10**9, (3,), generator=g).tolist()  # noqa: E731
    monkeypatch.setenv("SEQLAB_SEED_OFFSET", "0")
    base = {k: draw(f(4)) for k, f in (("batches", seeding.batches), ("held_out", seeding.held_out))}
    assert base["held_out"] == draw(torch.Generator().manual_seed(10_004))
    assert draw(seeding.held_out(4, stream=1)) == draw(torch.Generator().manual_seed(20_004))
    assert base["batches"] == draw(torch.Generator().manual_seed(4)) == draw(seeding.init(4))
    monkeypatch.setenv("SEQLAB_SEED_OFFSET", "3")
    assert draw(seeding.batches(1)) == base["batches"] and draw(seeding.held_out(1)) == base["held_out"]
    assert draw(seeding.batches(1, stream=1)) == draw(torch.Generator().manual_seed(5))


def test_every_committed_results_file_was_made_with_the_settings_in_the_code():
    """A results file the chapters plot holds the settings its experiment module has now, at its scale: a setting
    changed in the code without the sweep run again would leave the pages plotting results the code does not make."""
    import importlib
    found = 0
    for path in sorted(experiments.results_dir().glob("*.json")):
        record = json.loads(path.read_text())
        if "experiment" not in record:
            continue  # the benchmark tables
        module = importlib.import_module(experiments.get(record["experiment"]).fn.__module__)
        settings = (experiments.get(record["experiment"]).settings or module.SETTINGS)[record["scale"]]
        assert record["results"]["settings"] == json.loads(json.dumps(settings)), path.name
        found += 1
    assert found >= 7


def test_norm_placement_summarises_a_run_by_its_definitions():
    """final: the mean of the last 20 losses; reach: the first step whose 10-step mean is within NEAR of the unigram
    entropy; floor: the lowest 10-step mean after that, minus the entropy; the gradient ratio at step 0 (chapter 7)."""
    from seqlab.experiments import norms
    from seqlab.train import History
    h = History()
    h.loss = [5.0] * 10 + [3.0] * 30 + [2.0] * 20          # falls to 3.0, then to 2.0
    grads = torch.tensor([[k + 1.0, 2.0, 4.0 * (k + 1) + k] for k in range(60)])   # (steps, L): each step its own ratio
    out = norms.summarise_run(h, grads, unigram=3.0, near=0.15)
    assert out["final"] == 2.0 and out["grad_ratio"] == 4.0                # top / bottom at step 0: 4 / 1
    assert out["bottom_late"] == torch.arange(21.0, 61.0).median().item() == 40.0   # the bottom block, steps 20 on
    smooth = h.smoothed_loss(10)
    assert out["reach"] == next(t for t, v in enumerate(smooth) if v < 3.15) == 19   # the 10-step mean of 3.0s
    assert out["floor"] == pytest.approx(-1.0)
    h.loss = [5.0] * 60                                    # never reaches the entropy
    assert norms.summarise_run(h, grads, unigram=3.0)["reach"] is None


def test_every_experiments_default_seeds_are_distinct():
    """The command line refuses a repeated seed (a second run of one seed is no new sample); a function's own default
    seeds, for a call from a page, must not repeat one either."""
    import inspect
    for name, e in experiments.REGISTRY.items():
        seeds = inspect.signature(e.fn).parameters["seeds"].default
        assert len(seeds) >= 1 and len(set(seeds)) == len(seeds), (name, seeds)


def test_every_experiment_is_registered_under_the_chapter_its_summary_names():
    """``--help`` shows the summary ("chapter 7: ..."); the chapter it files the experiment under must be that one."""
    import re
    for name, e in experiments.REGISTRY.items():
        said = re.match(r"chapter (\d+)", e.summary)
        assert said and int(said.group(1)) == e.chapter, (name, e.chapter, e.summary)


def test_validation_windows_take_any_window_of_two_or_more():
    """Chapter 2's validation windows: a window of 2 (one input, one target) is the shortest that predicts anything."""
    from seqlab.data import CharCorpus
    from seqlab.experiments import recurrence
    corpus = CharCorpus()
    w = recurrence.validation_windows(corpus, 2)
    assert w.shape == (len(corpus.val) // 2, 2) and torch.equal(w.flatten(), corpus.val[: w.numel()])
    with pytest.raises(ValueError, match="window"):
        recurrence.validation_windows(corpus, 1)
