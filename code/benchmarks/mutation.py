"""A small mutation run: one-line bugs in the package, and whether the tests catch them (issue 23, §7; off CI).

    python code/benchmarks/mutation.py [--n 40] [--seed 0] [--timeout 240] [--jobs 1] [--out results/mutation.md]
    python code/benchmarks/mutation.py --named     # the issue's eleven named survivors, each must die
    python code/benchmarks/mutation.py --package-only   # the package tests alone, without the chapters' stage
    python code/benchmarks/mutation.py --only experiments/scaling.py   # mutants of one module only (targeted)

Every candidate mutant changes one token of one line of code (never a docstring or a comment) in
``ops/``, ``models/``, ``interpret.py``, ``experiments/`` or ``train.py``: an operator swapped
(+ −, * /, < <=, > >=, == !=), a number changed (n → n + 1, a decimal doubled), a sign flipped
(a unary minus dropped), ``True`` ↔ ``False`` (a zero decimal becomes 1.0). ``--n`` of them are drawn at random (``--seed``).
Each is applied to a copy of ``code/`` in a temporary directory and the tests that import the
mutated module run against that copy (``-x``, ``--timeout`` seconds, under ``nice -n 15``); a
mutant is *killed* when they fail; one whose tests run past the time limit is left undecided (out of
the rate, counted apart: on a loaded machine a slow suite is not a caught bug).

A mutant the package tests let through then meets the rest of ``make test``: the chapters, whose
claims assert measured numbers against their rules. It runs only the chapters that execute the mutated
line (a chapter that never runs a line cannot notice a change to it), found once by running every
chapter's kernel under ``coverage`` (``COVERAGE_PROCESS_START``) and kept in
``_build/mutation-lines.json`` (rebuilt when the package or a chapter changes). The chapters run under
nbval as ``make test`` runs them, without the time budget (a loaded machine is not a caught bug), the
quickest first; a chapter that fails is run again without the mutant (a control), and kills the mutant only
if the control passes (a timing claim can fail on a busy machine with no mutant at all). Both rates are reported: the package tests'
alone and the whole suite's. The kill rate, and every survivor with its line,
are printed (and written to ``--out``). A survivor is a missing test or an equivalent mutant (a
change that cannot alter behaviour): read each one.

Three kinds of drawn mutant are reported apart, not run and not in the rate: those ``EQUIVALENT`` names
(each read, with its reason), the equivalence harness's own test inputs (``harness_inputs``: its grid of
shapes and each family's random problem, which the tests feed every form), and changes to an experiment's ``SETTINGS`` at a scale that has no committed
results file (an experiment's choice, which a test could only restate). The settings of a scale with a
committed file are run like any other mutant: ``tests/test_experiments.py`` checks them against the file.
"""
from __future__ import annotations

import argparse
import ast
import io
import json
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "code"
TARGETS = ["seqlab/ops", "seqlab/models", "seqlab/interpret.py", "seqlab/experiments", "seqlab/train.py"]
SWAPS = {"+": "-", "-": "+", "*": "/", "/": "*", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
ALWAYS = ["tests/test_definitions.py"]
# the survivors of the first mutation run (file, line as it is, line mutated, what): --named re-runs them
NAMED = [
    ("seqlab/ops/linear_attention.py", "/ math.sqrt(2.0)  # (…, d²)", "/ 2.0  # (…, d²)", "Taylor map's 1/sqrt2"),
    ("seqlab/models/encoder_decoder.py", "table(ids) * math.sqrt(self.config.d_model)", "table(ids)", "sqrt(d_model) embedding scale"),
    ("seqlab/experiments/scaling.py", "pick = [w[rng.randrange(len(w))] for _ in w]", "pick = [w[rng.randrange(len(w))] for _ in window_losses]", "bootstrap draws as many windows as sizes"),
    ("seqlab/interpret.py", "lam = torch.linalg.eigvals(ov.double())", "lam = torch.linalg.eigvals(((ov + ov.transpose(-1, -2)) / 2).double())", "copying score on (OV+OVT)/2"),
    ("seqlab/interpret.py", "z[..., head * d_head:(head + 1) * d_head] = 0.0", "z[..., 0:d_head] = 0.0", "ablate_head right for head 0 only"),
    ("seqlab/data/bpe.py", "                pairs[pair] += n\n", "                pairs[pair] += 1\n", "BPE pairs not weighted by frequency"),
    ("seqlab/train.py", "lr=lr, weight_decay=weight_decay)", "lr=lr)", "train(weight_decay=...) ignored"),
    ("seqlab/models/ssm.py", "A = -torch.exp(self.A_log)", "A = torch.exp(self.A_log)", "selective A = +exp(A_log)"),
    ("seqlab/models/ssm.py", "self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))", "self.dt_proj.bias.copy_(dt)", "dt bias not inverse-softplus"),
    ("seqlab/models/mixer_lm.py", "(self.k - 1, 0))", "(0, self.k - 1))", "short conv padded on the right"),
    ("seqlab/experiments/scaling.py", '6.0 * count_parameters(model)["non_embedding"]', '6.0 * count_parameters(model)["total"]', "6N from the total count"),
]

# mutants read and found equivalent (no behaviour can tell them from the code): (file, the line's text, old, new,
# why). They are reported apart and left out of the rate; each needs its reason, and a new one a reader's check.
EQUIVALENT = [
    ("seqlab/experiments/scaling.py", "return math.exp(xm) if x.min().item() <= xm <= x.max().item() else None", "<=", "<",
     "a fitted vertex exactly at the smallest measured size: a floating-point tie of a least-squares solution"),
    ("seqlab/models/linear_attention.py", "chunk: int = 64", "64", "65",
     "the chunked form's default chunk length: every length gives the same output (the harness checks the chunked "
     "form against the loop for chunks that do and do not divide T)"),
    # seed 79's (read after that run)
    ("seqlab/models/ssm.py", "chunk: int = 8", "8", "9",
     "the SSM layer's default chunk length for its chunked form: every length gives the same output (the harness "
     "checks the chunked form against the loop for chunks that do and do not divide T)"),
    ("seqlab/ops/ssd.py", 'chunk = validate.positive_int("chunk", 64 if chunk is None else chunk)', "64", "65",
     "SSD's default chunk length: every length gives the same output (the harness checks chunks that do and do not "
     "divide T)"),
    ("seqlab/experiments/scaling.py", "if best is None or err < best[0]:", "<", "<=",
     "a tie of two floating-point fit errors on the grid: < keeps the first, <= the last, of equal errors"),
    ("seqlab/experiments/scaling.py", "flush=True)", "True", "False", "flushing a printed line"),
    ("seqlab/ops/registry.py", "Case(B=1, T=9, D=2, H=6, with_state=True),", "6", "7",
     "the harness's test case sizes: another size of test input, not library behaviour"),
    ("seqlab/ops/ssm.py", "log_dt=math.log(1e-3) + torch.rand(Dm, **kw) * (math.log(0.1) - math.log(1e-3)),", "+", "-",
     "the harness's random S4D test problem: another test input, not library behaviour"),
    ("seqlab/ops/recurrent.py", 'state = "h (L, B, H)" if PARTS[family] == 1 else "(h, c) each (L, B, H)"', "1", "2",
     "the text of a generated docstring"),
    # seed 83's (read after that run)
    ("seqlab/experiments/attention.py", "hidden = next(h for h in range(16, 4096) if size(h) >= n_params)", "4096", "4097",
     "the search's upper bound: only a count above a 4095-wide LSTM's (about 67 million parameters) reaches it; "
     "chapter 7's race matches its GPTs at widths 20, 127 and 483 (tiny, quick, full)"),
    # seed 89's (read after that run)
    ("seqlab/experiments/scaling.py", 'sorted(configs, key=cost, reverse=True), runs, common, show, cost, '
     'f"IsoFLOP lr grid, pass {attempt + 1}")}', "True", "False",
     "the order the IsoFLOP grid's runs are dealt to the workers (dearest first, to balance them); each run's numbers "
     "do not depend on when it runs (run_many keys every run by its config)"),
    ("seqlab/experiments/scaling.py", "while term > 1e-17 * total:", "*", "/",
     "the series' stopping tolerance: both stop once the terms fall below the sum's rounding (a convergent series, "
     "its terms falling geometrically once n > t − a), so the sum agrees to rounding"),
    # seed 97's (read after that run)
    ("seqlab/ops/ssm.py", "if n_chunks * chunk > T:", ">", ">=",
     "at n_chunks · chunk == T the padding it would add has no steps: concatenating it changes nothing"),
    ("seqlab/experiments/hybrid.py", '"chance": task.chance, "curve": {"step": list(h.eval_step), "accuracy": [round(a, 4) '
     'for a in h.eval["acc"]]}}', "4", "5", "the decimals a results file keeps of a recall curve (read by plots only)"),
    ("seqlab/experiments/scaling.py", '"window_losses": {k + 1: [round(v, 5) for v in losses[k].mean(1).tolist()] for k in '
     'range(s["max_order"])},', "5", "6", "the decimals a results file keeps of a per-window loss"),
    ("seqlab/experiments/recall.py", '"chance": task.chance, "seconds": round(h.seconds, 3)}', "3", "4",
     "the decimals a results file keeps of a run's seconds"),
    # seed 101's (read after that run)
    ("seqlab/experiments/recall.py", '"selective": {"chunk": 16}}', "16", "17",
     "chapter 12's selective layer's chunk length for its chunked form: every length gives the same output (the harness "
     "checks chunks that do and do not divide T)"),
    # seed 12's (read after that run)
    ("seqlab/experiments/encoder_decoder.py", "bar.update(1)", "1", "2", "a progress bar's count"),
    ("seqlab/experiments/distributed.py", "if k == 0 and len(indices) > 1:", ">", ">=",
     "whether a progress bar prints its time estimate"),
    ("seqlab/interpret.py", "picked = A.gather(-1, key[:, None, :, None].expand(B, H, T, 1))[..., 0]", "1", "2",
     "the gather then reads the same column twice and [..., 0] keeps one"),
    ("seqlab/ops/minrnn.py", "return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))", ">=", ">",
     "g is continuous at 0: 0 + 1/2 = sigmoid(0)"),
    ("seqlab/ops/ssm.py", "m = max(1, math.isqrt(T - 1) + 1) if T > 1 else 1", "1", "2",
     "for T > 1, isqrt(T - 1) + 1 >= 2 already"),
    ("seqlab/ops/registry.py", "Case(B=2, T=6, D=4, H=4, layers=2, chunk=5, with_state=True),", "6", "7",
     "the harness's test case sizes: another size of test input, not library behaviour"),
    ("seqlab/ops/ssm.py", "log_A_real=log_A_real + 0.1 * torch.randn(Dm, N, **kw), A_imag=A_imag + 0.1 * torch.randn(Dm, N, **kw),",
     "*", "/", "the harness's random S4D test problem: another test input, not library behaviour"),
    ("seqlab/ops/recurrent.py", 'for _family, _chapter, _options in (("rnn", 2, {}), ("lstm", 4, {}), ("gru", 4, {})):',
     "4", "5", "the chapter named in a generated docstring"),
    # seeds 7 and 21's (read after those runs)
    ("seqlab/ops/recurrent.py", "s = 1.0 / H ** 0.5",
     "/", "*", "the harness's random test problem's weight scale: another test input, not library behaviour"),
    ("seqlab/ops/registry.py", "Case(B=1, T=9, D=2, H=6, with_state=True),", "True", "False",
     "the harness's test cases: another test input (other cases start from a state), not library behaviour"),
    ("seqlab/ops/registry.py", "Case(B=1, T=1, D=3, H=4),", "3", "4",
     "the harness's test case sizes: another size of test input, not library behaviour"),
    ("seqlab/train.py", "opt.zero_grad(set_to_none=True)", "True", "False",
     "gradients zeroed in place instead of freed: the same numbers, only the memory differs"),
    ("seqlab/train.py", 'bar.set_postfix(loss=f"{history.loss[-1]:.3f}", refresh=False)', "False", "True",
     "whether a progress bar redraws at once"),
    ("seqlab/experiments/parallel_rnn.py", "x = torch.randint(0, vocab, (B, T), generator=g)", "0", "1",
     "the token ids of a timing benchmark's input: another input, the same work"),
    ("seqlab/ops/linear_attention.py",
     "_FACTOR_LIMIT = {torch.float32: 30.0, torch.float64: 300.0, torch.bfloat16: 30.0, torch.float16: 5.0}",
     "30.0", "60.0", "a safety margin: e^(+-60) is still inside float32's range (e^88), so no input tells 30 from 60"),
    ("seqlab/ops/ssm.py", "m = max(1, math.isqrt(T - 1) + 1) if T > 1 else 1", ">", ">=",
     "for T = 1 both branches give m = 1"),
    ("seqlab/ops/recurrent.py", "H = W_h[0].shape[-1]", "-", "",
     "the line before refuses a W_h[0] that is not 2-D, so its last axis is axis 1"),
    # seed 44's (read after that run)
    ("seqlab/ops/minrnn.py", "return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))", ">=", ">",
     "log g is continuous at 0: log(0 + 1/2) = -softplus(0)"),
    ("seqlab/ops/ssm.py", "log_A_real=log_A_real + 0.1 * torch.randn(Dm, N, **kw), A_imag=A_imag + 0.1 * torch.randn(Dm, N, **kw),",
     "0.1", "0.2", "the harness's random S4D test problem: another test input, not library behaviour"),
    ("seqlab/experiments/scaling.py", "choice, widened = {}, False", "False", "True",
     "one more pass over a grid whose runs are all done: run_many finds them and runs nothing"),
    ("seqlab/ops/minrnn.py", "def minlstm_chunked(x, W_f, b_f, W_i, b_i, W_h, b_h, state=None, chunk: int = 16):",
     "16", "17", "a default chunk length: every chunk length gives the same numbers (the harness checks several)"),
    # seed 23's (read after that run)
    ("seqlab/ops/attention.py", "if case.layers > 1:", ">", ">=",
     "the harness's test cases: a random score bias in one more case, another test input, not library behaviour"),
    ("seqlab/experiments/scaling.py", 'return below, b["hi"] < 0', "<", "<=",
     "reached only when hi < 0, where hi <= 0 holds as well"),
    ("seqlab/ops/recurrent.py", "def rand(*shape, scale=1.0):", "1.0", "2.0",
     "the harness's random input's scale (only x takes the default): another test input, not library behaviour"),
    ("seqlab/experiments/scaling.py",
     "def paired_bootstrap(stat, window_sets: dict, n_boot: int = 1000, seed: int = 0) -> dict:", "1000", "1001",
     "a default no caller takes: every call, in the package and the chapters, passes its own n_boot"),
    ("seqlab/experiments/scaling.py",
     "layers: int, windows: int = 64, tune_windows: int = 32, curve_every: int | None = None,", "32", "33",
     "a default no caller takes: the sweep and every call in the chapters and tests pass their own tune_windows"),
    # seed 31's (read after that run)
    ("seqlab/experiments/sequences.py",
     "def ngram_orders(corpus: CharCorpus, max_order: int, k: float = 0.01, start: int | None = None,", "0.01", "0.02",
     "a default no caller takes: the experiment passes its settings' k and chapter 1 its own"),
    ("seqlab/experiments/scaling.py",
     "def repeat_probe(model: torch.nn.Module, ids: torch.Tensor, n: int, *, span: int = 100, context: int = 256,",
     "100", "101", "a default no caller takes: chapter 10 and the tests pass their own span"),
    ("seqlab/experiments/parallel_rnn.py",
     "depths = [graph_depth(logits_of(model(torch.zeros(1, T, dtype=torch.long) % vocab))) for T in (T1, T2)]", "1", "2",
     "a batch of two sequences instead of one: the autograd graph's longest chain does not depend on the batch size"),
    ("seqlab/experiments/longrange.py",
     'def estimate(scale: str = "quick", probe_steps: int = 5, processes: int = 2, out=None) -> list[str]:', "5", "6",
     "how many steps a cost estimate times: a noisy CPU time per step either way, which only a restated constant "
     "could tell apart"),
    # seed 37's (read after that run)
    ("seqlab/ops/registry.py", "Case(B=2, T=6, D=4, H=4, layers=2, chunk=5, with_state=True),", "5", "6",
     "the harness's test case sizes: another size of test input, not library behaviour"),
    ("seqlab/ops/registry.py", "Case(B=2, T=6, D=4, H=4, layers=2, chunk=5, with_state=True),", "2", "3",
     "the harness's test case sizes: another size of test input, not library behaviour"),
    ("seqlab/ops/ssm.py", "B=torch.randn(Dm, N, 2, **kw), C=torch.randn(Dm, N, 2, **kw) * 0.5, D=torch.randn(Dm, **kw),",
     "0.5", "1.0", "the harness's random S4D test problem: another test input, not library behaviour"),
    ("seqlab/models/rnn.py",
     'if not module.bidirectional or module.num_layers != 1 or not module.bias or module.dropout or getattr(module, "proj_size", 0):',
     "0", "1", "getattr's fallback for a module with no proj_size: every nn.RNN, nn.GRU and nn.LSTM has one"),
    # seed 67's (read after that run)
    ("seqlab/ops/recurrent.py", "i, f, g, o = gates.chunk(4, dim=-1)", "-", "",
     "every caller passes one step x[:, t] of a (B, T, D) input, so gates is (B, 4H): its dim 1 is its dim -1"),
    ("seqlab/experiments/encoder_decoder.py", 'bar = tqdm(total=s["steps"], desc="reversal", leave=False)', "False", "True",
     "whether a progress bar stays on screen when it ends"),
    # seed 41's (read after that run)
    ("seqlab/models/attention.py", "bound = 1.0 / math.sqrt(p.shape[-1] if p.dim() == 2 else self.d_hidden)", "-", "",
     "p.shape[1] is p.shape[-1] in the branch where p has two dimensions"),
    ("seqlab/ops/ssm.py", "log_A_real=log_A_real + 0.1 * torch.randn(Dm, N, **kw), A_imag=A_imag + 0.1 * torch.randn(Dm, N, **kw),",
     "+", "-", "the harness's random S4D test problem: another test input, not library behaviour"),
    # seed 107's (read after that run)
    ("seqlab/experiments/scaling.py", '"window_buckets": {k + 1: [[round(v, 5) for v in row] for row in bucket_means(losses[k], '
     's["context"]).tolist()]', "5", "6", "the decimals a results file keeps of a count model's bucketed losses"),
    ("seqlab/models/minrnn.py", 'def __init__(self, d: int, cell: str = "mingru", form: str = "chunked", chunk: int = 16):',
     "16", "17", "the minGRU / minLSTM layer's default chunk length: every length gives the same output (the harness "
     "checks chunks that do and do not divide T)"),
    ("seqlab/ops/ssd.py", "def ssd_chunked(x, dt, B, C, A, D, state=None, chunk: int = 64):", "64", "65",
     "SSD's default chunk length: every length gives the same output (the harness checks chunks that do and do not "
     "divide T)"),
    # seed 108's (read after that run)
    ("seqlab/models/ngram.py", "lam = total / (total + distinct).clamp(min=1)", "1", "2",
     "the clamp acts only where total + distinct is 0 (an unseen context: 0 either way); it is never 1, since a seen "
     "context has total >= 1 and distinct >= 1"),
    # seed 113's (read after that run)
    ("seqlab/experiments/parallel_rnn.py", "opt.zero_grad(set_to_none=True)", "True", "False",
     "the throughput benchmark's training step: every parameter gets a gradient each step, so zeroed tensors and None "
     "give the same update; only the time to zero them differs, and no test times a step"),
    ("seqlab/experiments/attention.py",
     'share = gradient_share(lambda x: attn(x, x, x, causal=True)[0], s["Ts"], batch=s["batch"], d=s["d_model"],',
     "True", "False",
     "chapter 6's dilution differentiates only the last output, and the last position sees every key with or without "
     "the causal mask (a test shows the two give the same numbers)"),
    # seed 131's (read after that run)
    ("seqlab/experiments/scaling.py",
     '"passes": round(tokens / len(parts["train"]), 4), "flops": fl["C"] * tokens, "flops_6N": fl["6N"] * tokens,',
     "4", "5", "the stored precision of a derived ratio (passes over the training split: the tokens, stored beside it, over "
     "the split's length): a fifth decimal changes no reading, and the pages print two"),
    # seed 137's (read after that run)
    ("seqlab/experiments/runlog.py", "order[lr] = (worst, (m if lower else -m) if not worst else 0.0,", "0.0", "1.0",
     "the placeholder score of a rate whose mean is NaN: every such rate gets the same constant, and the first key "
     "(worst = True) already puts them after every finite rate, so which constant it is orders nothing"),
    # seed 151's (read after that run)
    ("seqlab/ops/minrnn.py", 'chunk = validate.positive_int("chunk", 16 if chunk is None else chunk)', "16", "17",
     "the chunked scan's default chunk length: every length gives the same states (the harness checks the chunked "
     "form against the loop at several chunk lengths, ragged last chunks included)"),
    ("seqlab/experiments/attention.py", "warmup=2, repeats=7, device=device).items()}", "2", "3",
     "one more untimed call before chapter 7's race times a step: the steps run on copies of the models "
     "(``one_step`` deep-copies), so only the timing's warm-up changes, and the fastest of seven calls is kept"),
    ("seqlab/experiments/__init__.py", 'results = {**results, "seconds": round(time.perf_counter() - start, 1)}', "1", "2",
     "the decimals a results file keeps of a command's wall time (a clock reading that no two runs share; the pages "
     "and the README quote it in minutes)"),
    # seed 163's (read after that run)
    ("seqlab/experiments/attention.py", "ids, weights = model.greedy_decode(src, S + 1, t.bos, lengths)", "1", "2",
     "one more greedy step after the S that are scored: decoding is autoregressive, so the first S outputs and their "
     "attention weights do not depend on how many steps follow them"),
    # seed 179's (read after that run)
    ("seqlab/experiments/scaling.py", "if n > 4 * target:", "4", "5",
     "the width search's early stop: counts grow with width, so once a width's count is 4 (or 5) times the target "
     "every later one is farther from it in log than a width already seen; either stop returns the same width"),
    ("seqlab/ops/linear_attention.py", "den = (fq_t * z).sum(-1)", "-", "",
     "fq_t and z are (B, d_φ): their last dimension is dimension 1"),
    ("seqlab/experiments/scaling.py", "curve_rows = [[s, round(sec, 3), round(l, 5), round(cpu, 3)] for s, sec, l, cpu in",
     "3", "4", "the decimals a results file keeps of a wall-clock or CPU time (read by plots and estimates only)"),
    ("seqlab/experiments/architectures.py",
     "for a, t in time_calls(calls, warmup=2, repeats=2 * rounds, device=device).items():", "2", "3",
     "how many calls warm up or are timed: it changes only a wall-clock time, which no test can compare"),
    ("seqlab/experiments/scaling.py", "slope = (dx * (ly - my)).sum() / (dx ** 2).sum()", "-", "+",
     "the y centring: dx sums to zero, so sum(dx * (ly + my)) equals sum(dx * (ly - my)) up to rounding"),
    # seed 181's (read after that run)
    ("seqlab/ops/minrnn.py", "def mingru_chunked(x, W_z, b_z, W_h, b_h, state=None, chunk: int = 16):", "16", "17",
     "the chunked minGRU's default chunk length: every length gives the same output (the harness checks chunks that "
     "do and do not divide T)"),
    ("seqlab/experiments/parallel_rnn.py", "def matched_widths(vocab: int, params: int, n_layers: int, widths=range(16, "
     "513, 8)) -> dict:", "513", "514", "range(16, 514, 8) holds the same widths as range(16, 513, 8): 512 is "
     "the last of both"),
]


def equivalent(rel: str, line: str, old: str, new: str) -> str | None:
    """The reason ``EQUIVALENT`` gives for this mutant (its line's code, a comment left out, and its change), or None."""
    code = line.split("  #")[0].strip()
    for f, text, o, n, why in EQUIVALENT:
        if f == rel and code == text and (o, n) == (old, new):
            return why
    return None


SCALES = ("tiny", "quick", "cpu", "full")  # seqlab.experiments.SCALES, read without importing the package


def _all_scales(keys) -> bool:
    """Whether ``keys`` are scale names only, and at least one: an experiment's settings by scale, whatever the
    dict's name (``parallel_rnn.SWEEP``)."""
    keys = list(keys)
    return bool(keys) and all(k in SCALES for k in keys)


def _keyed_by_scale(value) -> bool:
    """A dict literal whose keys are all scale names (``_all_scales``)."""
    return (isinstance(value, ast.Dict) and all(isinstance(k, ast.Constant) for k in value.keys)
            and _all_scales(k.value for k in value.keys))


def settings_scales(path: Path) -> dict[int, tuple[str, str]]:
    """line -> (dict name, scale) for every line of the values of a ``*SETTINGS = {"scale": dict(...), ...}``
    literal in ``path``, or of any module-level dict literal keyed by scale names only."""
    out = {}
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names = [t.id for t in targets if isinstance(t, ast.Name)
                 and (t.id.endswith("SETTINGS") or _keyed_by_scale(node.value))]
        if names and isinstance(node.value, ast.Dict):
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    out.update({line: (names[0], key.value) for line in range(value.lineno, value.end_lineno + 1)})
    return out


def committed_scales() -> set[tuple[str, str, str]]:
    """(module, settings dict, scale) pinned by a committed results file (``results/*.json``): test_experiments.py
    checks those settings against the file, so a mutant of them is run like any other.

    A module may hold several experiments' settings; a dict's scale is pinned when a committed file of that
    module and scale recorded the same settings (every key of the dict, the same value), or when the file
    records none to compare with.
    """
    import importlib

    sys.path.insert(0, str(CODE))
    from seqlab import experiments
    same = lambda a, b: json.loads(json.dumps(a)) == json.loads(json.dumps(b))
    out = set()
    for path in (ROOT / "results").glob("*.json"):
        record = json.loads(path.read_text())
        if "experiment" not in record:
            continue
        name = experiments.get(record["experiment"]).fn.__module__
        module, scale = importlib.import_module(name), record["scale"]
        recorded = (record.get("results") or {}).get("settings") if isinstance(record.get("results"), dict) else None
        for attr in dir(module):
            table = getattr(module, attr)
            if (isinstance(table, dict) and (attr.endswith("SETTINGS") or _all_scales(table))
                    and isinstance(table.get(scale), dict)):
                if recorded is None or all(k in recorded and same(v, recorded[k]) for k, v in table[scale].items()):
                    out.add((name.replace(".", "/") + ".py", attr, scale))
    return out


def harness_inputs(path: Path) -> set[int]:
    """The lines of the equivalence harness's test inputs in an ``ops/`` file: the shapes of its grid (``Case`` and
    ``GRID`` in ``registry.py``) and each family's random problem (``_make*``/``_problem`` functions).

    A mutant there changes what the harness feeds every form (another size, another random scale), not what
    the library computes: it is the tests' input, as a test file's own numbers are, and is reported apart.
    """
    if "seqlab/ops/" not in path.as_posix():
        return set()
    out = set()
    for node in ast.parse(path.read_text()).body:
        named = getattr(node, "name", None)
        assigned = [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
        if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and (named.startswith("_make") or named in ("_problem", "Case"))
                or "GRID" in assigned):
            out.update(range(node.lineno, node.end_lineno + 1))
    return out


def candidates(path: Path) -> list[tuple[int, int, int, str, str]]:
    """Every one-token mutation of ``path``: (line, start col, end col, old, new)."""
    out = []
    src = path.read_text()
    tokens = list(tokenize.generate_tokens(io.StringIO(src).readline))
    for i, tok in enumerate(tokens):
        (row, c0), (_, c1) = tok.start, tok.end
        prev = tokens[i - 1] if i else None
        if tok.type == tokenize.OP and tok.string in SWAPS:
            if tok.string in ("*", "**") and prev is not None and prev.string in ("(", ",", "[", "="):
                continue  # *args, **kwargs
            if tok.string == "-" and prev is not None and (prev.type == tokenize.OP and prev.string not in (")", "]")):
                out.append((row, c0, c1, "-", ""))  # a unary minus: drop it (a sign flip)
                continue
            out.append((row, c0, c1, tok.string, SWAPS[tok.string]))
        elif tok.type == tokenize.NUMBER and not tok.string.startswith("0x"):
            try:
                value = int(tok.string)
                out.append((row, c0, c1, tok.string, str(value + 1)))
            except ValueError:
                try:
                    value = float(tok.string)  # a decimal doubled; a zero (doubling it changes nothing) made 1.0
                    out.append((row, c0, c1, tok.string, repr(value * 2) if value else "1.0"))
                except ValueError:
                    pass
        elif tok.type == tokenize.NAME and tok.string in ("True", "False"):
            out.append((row, c0, c1, tok.string, "False" if tok.string == "True" else "True"))
    return out


def imported_names(path: Path) -> set[str]:
    """Every module and name a test file imports, wherever the import sits and however many lines it spans."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names |= {node.module or ""} | {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def tests_for(rel: str, root: Path = CODE) -> list[str]:
    """The test files that import the mutated module or one of its public names, plus the definitions battery
    (first) and the chapters' checks (last).

    A test "imports" the module when its imports (parsed, so that an import over several lines counts)
    name the module (``ssd``, ``from seqlab.ops import minrnn, ssd``) or one of the module's top-level
    public functions and classes (``from seqlab.models import GPT``). Mutants of ``ops/`` also run the
    batteries that reach every family through the registry (equivalence, bad input, layers, pinned checkers),
    mutants of ``models/`` the layer and bad-input batteries, mutants of ``experiments/`` ``test_experiments.py``
    and ``test_replay.py`` (the reruns of recorded runs, which ``train.py``'s mutants run too).
    """
    stem = Path(rel).stem
    src = (root / rel).read_text()
    names = {stem} | set(re.findall(r"^(?:def|class) ([A-Za-z]\w*)", src, flags=re.M))
    names -= {"__init__"}
    found = []
    for t in sorted((root / "tests").glob("test_*.py")):
        imports = " ".join(imported_names(t))
        if any(re.search(r"\b" + re.escape(n) + r"\b", imports) for n in names):
            found.append(f"tests/{t.name}")
    # the batteries that reach every family or layer through a registry rather than by name: ops/ mutants run the
    # equivalence harness, the bad-input battery, the layer battery and the checkers pinned to the ops; models/
    # mutants the layer and bad-input batteries; experiments/ mutants the battery that runs every experiment at the
    # tiny scale and checks the committed results files against the settings, and the reruns of recorded runs (which
    # train.py's options reach too)
    extra = (["tests/test_equivalence.py", "tests/test_bad_input.py", "tests/test_mixers.py", "tests/test_check_pinned.py"]
             if rel.startswith("seqlab/ops") else
             ["tests/test_mixers.py", "tests/test_bad_input.py"] if rel.startswith("seqlab/models") else
             ["tests/test_experiments.py", "tests/test_replay.py"] if rel.startswith("seqlab/experiments") else
             ["tests/test_replay.py"] if rel == "seqlab/train.py" else [])
    chosen = set(found + extra) - {"tests/test_course.py", "tests/test_site.py"} - set(ALWAYS)
    # pytest runs them in this order and stops at the first failure: the quick definitions first, the
    # chapters' checks (which train models) last, so that a killed mutant is found early
    return ALWAYS + sorted(chosen, key=lambda t: (Path(t).name.startswith("test_check"), t))


def copy_checkout() -> Path:
    """A temporary copy of the checkout the tests see: everything but ``.git``, virtual environments and builds.

    The tests read more than ``code/``: ``results_dir()`` needs ``chapters/`` beside ``code/`` (else
    ``test_experiments.py`` fails on every mutant, a false kill), and tests read the ``Makefile``,
    ``book/``, committed ``results/`` and the exercises.
    """
    tmp = Path(tempfile.mkdtemp(prefix="seqlab-mutation-"))
    skip = shutil.ignore_patterns(".git", ".venv", "venv", "_build", "__pycache__", "*.egg-info", ".ipynb_checkpoints",
                                  ".pytest_cache")
    shutil.copytree(ROOT, tmp, ignore=skip, dirs_exist_ok=True)
    return tmp


def run_named() -> None:
    """Apply each of ``NAMED`` to a copy of ``code/`` and run ``tests/test_definitions.py`` on it."""
    tmp = copy_checkout()
    env = dict(os.environ, PYTHONPATH=str(tmp / "code"), MPLBACKEND="Agg")
    killed = 0
    try:
        for rel, old, new, what in NAMED:
            f = tmp / "code" / rel
            original = f.read_text()
            if original.count(old) != 1:
                raise SystemExit(f"{rel}: the line {old!r} is no longer there once; update NAMED")
            f.write_text(original.replace(old, new))
            try:
                rc = subprocess.run(["nice", "-n", "15", sys.executable, "-m", "pytest", "-q", "-x", "-p",
                                     "no:cacheprovider", "tests/test_definitions.py"], cwd=tmp / "code", env=env,
                                    capture_output=True).returncode
            finally:
                f.write_text(original)
            killed += rc != 0
            print(f"{'killed  ' if rc else 'SURVIVED'} {what}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{killed} of {len(NAMED)} named mutants killed by tests/test_definitions.py")


def imported_lines() -> dict[str, set[int]]:
    """The lines of ``code/seqlab`` that importing every module runs (definitions, signatures, settings literals)."""
    from coverage import Coverage

    code = ("import importlib, pkgutil, seqlab\n"
            "for m in pkgutil.walk_packages(seqlab.__path__, 'seqlab.'):\n"
            "    importlib.import_module(m.name)\n")
    work = Path(tempfile.mkdtemp(prefix="seqlab-coverage-"))
    (work / "imports.py").write_text(code)
    try:
        subprocess.run([sys.executable, "-m", "coverage", "run", f"--data-file={work / 'import.cov'}",
                        "--source=seqlab", str(work / "imports.py")], cwd=ROOT, check=True, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(CODE)))
        cov = Coverage(data_file=str(work / "import.cov"))
        cov.load()
        data = cov.get_data()
        return {str(Path(f).resolve().relative_to(CODE)): set(data.lines(f) or ()) for f in data.measured_files()
                if (CODE / "seqlab") in Path(f).resolve().parents}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def chapter_lines(jobs: int = 2) -> dict:
    """Which chapters execute which lines of ``code/seqlab``: ``{"chapters": {chapter: {module: [lines]}},
    "imported": {module: [lines]}, "failed": [chapters]}``, the lines importing the package runs left out of
    each chapter's; "failed" names the chapters that failed without a mutant (on a busy machine, a timing claim).

    Kept in ``_build/mutation-lines.json`` with a hash of the package and the chapters (each chapter as it
    ends, so an interrupted map goes on where it stopped), and rebuilt when either changes. Each chapter runs (by nbclient) with ``COVERAGE_PROCESS_START`` set, so that its kernel measures
    itself (coverage's own start-up hook) into that chapter's data file.
    """
    import hashlib

    from coverage import CoverageData

    sources = sorted((CODE / "seqlab").rglob("*.py")) + sorted((ROOT / "chapters").glob("*.ipynb"))
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    cache = ROOT / "_build" / "mutation-lines.json"
    saved = json.loads(cache.read_text()) if cache.exists() else {}
    if saved.get("key") != key:
        saved = {"key": key, "chapters": {}, "failed": [],
                 "imported": {rel: sorted(rows) for rel, rows in imported_lines().items()}}
    notebooks = [nb for nb in sorted((ROOT / "chapters").glob("[0-9]*.ipynb")) if nb.name not in saved["chapters"]]
    if not notebooks:
        return saved
    print(f"mapping the lines each of {len(notebooks)} chapters executes (each chapter once, under coverage)", flush=True)
    imported = {rel: set(rows) for rel, rows in saved["imported"].items()}
    work = Path(tempfile.mkdtemp(prefix="seqlab-coverage-"))
    lock = threading.Lock()

    def measure(nb: Path) -> None:
        rc_file = work / f"{nb.stem}.rc"
        rc_file.write_text(f"[run]\ndata_file = {work / nb.stem}.cov\nparallel = True\nsource = seqlab\n")
        env = dict(os.environ, COVERAGE_PROCESS_START=str(rc_file), SEQLAB_PROGRESS="0", SEQLAB_BUDGET_CHECK="0",
                   PYTHONPATH=str(CODE))  # this checkout's package, whatever the editable install points at
        env.pop("MPLBACKEND", None)
        # nbclient, not nbval: nbval kills its kernel at the end, before coverage can save what the kernel ran;
        # nbclient asks the kernel to shut down, and it exits as a process should (coverage saves at exit)
        run = ("import sys, nbformat, nbclient; nb = nbformat.read(sys.argv[1], 4); "
               "nbclient.NotebookClient(nb, timeout=1800, resources={'metadata': {'path': 'chapters'}}).execute()")
        done = subprocess.run(["nice", "-n", "15", sys.executable, "-c", run, str(nb.relative_to(ROOT))],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:  # its lines still count (the kernel saved them); a mutant's run of it is checked
            print(f"  {nb.name} failed without a mutant (a timing claim on a busy machine?):\n"  # against a control
                  f"{done.stderr.strip().splitlines()[-1][:300]}", flush=True)
        lines: dict[str, set[int]] = {}
        for f in work.glob(f"{nb.stem}.cov*"):
            data = CoverageData(basename=str(f))
            data.read()
            for measured in data.measured_files():
                path = Path(measured).resolve()
                if (CODE / "seqlab") in path.parents:
                    lines.setdefault(str(path.relative_to(CODE)), set()).update(data.lines(measured) or ())
        ran = {rel: sorted(rows - imported.get(rel, set())) for rel, rows in lines.items()}
        ran = {rel: rows for rel, rows in ran.items() if rows}
        print(f"  {nb.name}: {sum(map(len, ran.values()))} lines beyond the imports, in {len(ran)} modules", flush=True)
        with lock:  # kept as each chapter ends: an interrupted map goes on where it stopped
            saved["chapters"][nb.name] = ran
            saved["failed"] = sorted(set(saved["failed"]) | ({nb.name} if done.returncode else set()))
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(saved))

    try:
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(measure, notebooks))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return saved


def chapters_for(lines: dict, rel: str, row: int, source: str) -> list[str]:
    """The chapters that can notice a change to line ``row`` of module ``rel`` (its unmutated ``source``).

    A line the chapters run beyond the imports: the chapters that run it. A line importing runs (a signature
    with its defaults, a decorator, a module-level settings literal) runs in every chapter that imports the
    package, whether or not it uses it: the chapters that run the body of the function or class it belongs to,
    and for a module-level statement, the chapters that run any line of the module beyond its imports.
    """
    if not lines:
        return []
    if row not in set(lines["imported"].get(rel, ())):
        return [nb for nb, ran in lines["chapters"].items() if row in set(ran.get(rel, ()))]
    span = None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if first <= row <= node.end_lineno and (span is None or node.end_lineno - first < span[1] - span[0]):
                span = (first, node.end_lineno)  # the innermost definition the line belongs to
    lo, hi = span if span is not None else (1, len(source.splitlines()))
    return [nb for nb, ran in lines["chapters"].items() if any(lo <= r <= hi for r in ran.get(rel, ()))]


def chapter_order() -> dict[str, float]:
    """Each chapter's seconds in the last ``make test`` (``_build/notebook-timings.json``), so the quickest run first."""
    f = ROOT / "_build" / "notebook-timings.json"
    if not f.exists():
        return {}
    return {Path(k).name: v["seconds"] for k, v in json.loads(f.read_text()).get("notebooks", {}).items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--jobs", type=int, default=1, help="mutants tested at once, each in its own copy of code/")
    ap.add_argument("--named", action="store_true", help="only the issue's named survivors, against test_definitions.py")
    ap.add_argument("--package-only", action="store_true",
                    help="the package tests alone: no chapters for the mutants they let through")
    ap.add_argument("--chapter-timeout", type=int, default=600, help="seconds for one chapter under a mutant")
    ap.add_argument("--only", nargs="+", metavar="PATH",
                    help="draw mutants only from files whose path (relative to code/) contains one of these, e.g. "
                         "experiments/scaling.py: a targeted run, to find a module's gaps (not an unseen sample)")
    args = ap.parse_args()
    if args.named:
        return run_named()
    lines_run = {} if args.package_only else chapter_lines(max(args.jobs, 2))
    seconds = chapter_order()
    # one copy of the checkout per worker, made first: the mutants are drawn from, written into and restored from
    # the copies alone, so that editing the checkout while a run goes on cannot change what it tests
    copies = queue.Queue()
    tmps = [copy_checkout() for _ in range(args.jobs)]
    for tmp in tmps:
        copies.put(tmp / "code")
    src = tmps[0] / "code"
    files = []
    for target in TARGETS:
        p = src / target
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    if args.only:
        files = [f for f in files if any(o in str(f.relative_to(src)) for o in args.only)]
        if not files:
            raise SystemExit(f"--only {args.only}: no file of {TARGETS} matches")
    pool = [(f, *c) for f in files for c in candidates(f)]
    rng = random.Random(args.seed)
    sample = rng.sample(pool, min(args.n, len(pool)))
    print(f"{len(pool)} candidate mutants in {len(files)} files; running {len(sample)} (seed {args.seed})", flush=True)
    lock = threading.Lock()
    killed, timeouts, rows, done = 0, 0, [None] * len(sample), [0]
    by_package = [0]  # of the killed, those the package tests killed (the rest: a chapter)
    flaky = []  # chapters that failed under a mutant and again without it: not a kill
    same = []  # the sampled mutants that EQUIVALENT names: not run, not in the rate
    unpinned = []  # settings of a scale with no committed results: an experiment's choice, which a test could only restate
    committed = committed_scales()
    scales = {path: settings_scales(path) for path in {m[0] for m in sample}}  # each drawn file parsed once
    inputs = {path: harness_inputs(path) for path in scales}
    fixtures = []  # mutants of the harness's test inputs: not library behaviour, reported apart
    for path, row, c0, c1, old, new in list(sample):
        rel, line = str(path.relative_to(src)), path.read_text().splitlines()[row - 1]
        why = equivalent(rel, line, old, new)
        scale = scales[path].get(row)
        if row in inputs[path]:
            fixtures.append(f"{rel}:{row}: `{line.strip()[:90]}`: {old!r} → {new!r}")
            sample.remove((path, row, c0, c1, old, new))
        elif why is not None:
            same.append(f"{rel}:{row}: `{line.strip()[:90]}`: {old!r} → {new!r}: {why}")
            sample.remove((path, row, c0, c1, old, new))
        elif scale is not None and (rel, *scale) not in committed:
            unpinned.append(f"{rel}:{row}: `{line.strip()[:90]}`: {old!r} → {new!r}: {scale[0]}[{scale[1]!r}]")
            sample.remove((path, row, c0, c1, old, new))
    rows = [None] * len(sample)

    def one(i: int, path: Path, row: int, c0: int, c1: int, old: str, new: str):
        nonlocal killed, timeouts
        rel = str(path.relative_to(src))
        code = copies.get()
        target = code / rel
        original = target.read_text()  # the copy's own text (the copies are identical)
        lines = original.splitlines(keepends=True)
        line = lines[row - 1]
        lines[row - 1] = line[:c0] + new + line[c1:]
        target.write_text("".join(lines))
        env = dict(os.environ, PYTHONPATH=str(code), SEQLAB_PROGRESS="0", MPLBACKEND="Agg")
        t0 = time.time()
        try:
            rc = subprocess.run(["nice", "-n", "15", sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                 "no:cacheprovider", *tests_for(rel, code)], cwd=code, env=env, capture_output=True,
                                timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        by = "package tests"
        try:
            if rc == 0:  # the rest of make test: the chapters that execute this line, the quickest first
                chapters = sorted(chapters_for(lines_run, rel, row, original), key=lambda n: (seconds.get(n, 1e9), n))
                nb_env = dict(env, SEQLAB_BUDGET_CHECK="0")
                nb_env.pop("MPLBACKEND")  # the kernels draw inline, as in make test
                def chapter(nb: str) -> int:
                    return subprocess.run(["nice", "-n", "15", sys.executable, "-m", "pytest", "--nbval-lax",
                                           "--nbval-current-env", "-x", "-q", "-p", "no:cacheprovider",
                                           f"chapters/{nb}"], cwd=code.parent, env=nb_env, capture_output=True,
                                          timeout=args.chapter_timeout).returncode

                for nb in chapters:
                    try:
                        if chapter(nb) == 0:
                            continue
                        # a control: the same chapter without the mutant. A chapter that fails without it too (a
                        # timing claim on a busy machine) has not caught the mutant; the next chapter is asked
                        target.write_text(original)
                        control = chapter(nb)
                        target.write_text("".join(lines))
                    except subprocess.TimeoutExpired:
                        rc = "timeout"
                        break
                    if control == 0:
                        rc, by = 1, nb
                        break
                    flaky.append(f"{nb} (under {rel}:{row})")
        finally:
            target.write_text(original)
            copies.put(code)
        dead = rc not in (0, "timeout")
        what = f"{rel}:{row}: `{line.strip()[:90]}`: {old!r} → {new!r}"
        verdict = "timeout " if rc == "timeout" else f"killed by {by}" if dead else "SURVIVED"
        with lock:
            killed += dead
            by_package[0] += dead and by == "package tests"
            timeouts += rc == "timeout"
            rows[i] = (dead, what, rc)
            done[0] += 1
            print(f"[{done[0]}/{len(sample)}] {verdict} ({time.time() - t0:.0f} s, rc {rc}) {what}", flush=True)

    try:
        with ThreadPoolExecutor(args.jobs) as pool_:
            for f in [pool_.submit(one, i, *m) for i, m in enumerate(sample)]:
                f.result()
    finally:
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
    decided = len(rows) - timeouts
    rate = killed / max(decided, 1)
    stage = ("package tests only" if args.package_only else
             f"by the package tests {by_package[0]} ({100 * by_package[0] / max(decided, 1):.1f} %), by a chapter "
             f"{killed - by_package[0]} more")
    summary = (f"Killed {killed} of {decided} decided mutants ({100 * rate:.1f} %; {stage}); {timeouts} more ran "
               f"past the time limit and are left undecided; {len(same)} known equivalent, not run; "
               f"{len(unpinned)} settings of a scale with no committed results file, not run; {len(fixtures)} of the "
               f"harness's test inputs, not run; seed {args.seed}.")
    if flaky:
        summary += (f" {len(flaky)} chapter runs failed under a mutant and again without it (not counted as "
                    f"kills): {', '.join(flaky)}.")
    print(summary)
    for w in same:
        print(f"equivalent {w}")
    for w in unpinned:
        print(f"setting    {w}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(summary + "\n\nSurvivors:\n\n" + "\n".join(f"- {w}" + (" (timeout)" if rc == "timeout" else "") for d, w, rc in rows if not d) + "\n\nEquivalent (not run):\n\n" + "\n".join(f"- {w}" for w in same)
                            + "\n\nSettings of a scale with no committed results (not run):\n\n" + "\n".join(f"- {w}" for w in unpinned)
                            + "\n\nThe equivalence harness's test inputs (not run):\n\n" + "\n".join(f"- {w}" for w in fixtures) + "\n")


if __name__ == "__main__":
    main()
