"""A small mutation run: one-line bugs in the package, and whether the tests catch them (issue 23, §7; off CI).

    python code/benchmarks/mutation.py [--n 40] [--seed 0] [--timeout 240] [--out results/mutation.md]

Every candidate mutant changes one token of one line of code (never a docstring or a comment) in
``ops/``, ``models/``, ``interpret.py``, ``experiments/`` or ``train.py``: an operator swapped
(+ −, * /, < <=, > >=, == !=), a number changed (n → n + 1, a decimal doubled), a sign flipped
(a unary minus dropped), ``True`` ↔ ``False``. ``--n`` of them are drawn at random (``--seed``).
Each is applied to a copy of ``code/`` in a temporary directory and the tests that import the
mutated module run against that copy (``-x``, ``--timeout`` seconds, under ``nice -n 15``); a
mutant is *killed* when they fail or time out. The kill rate, and every survivor with its line,
are printed (and written to ``--out``). A survivor is a missing test or an equivalent mutant (a
change that cannot alter behaviour): read each one.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "code"
TARGETS = ["seqlab/ops", "seqlab/models", "seqlab/interpret.py", "seqlab/experiments", "seqlab/train.py"]
SWAPS = {"+": "-", "-": "+", "*": "/", "/": "*", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
ALWAYS = ["tests/test_definitions.py"]


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
                    out.append((row, c0, c1, tok.string, repr(float(tok.string) * 2)))
                except ValueError:
                    pass
        elif tok.type == tokenize.NAME and tok.string in ("True", "False"):
            out.append((row, c0, c1, tok.string, "False" if tok.string == "True" else "True"))
    return out


def tests_for(rel: str) -> list[str]:
    """The test files that mention the mutated module (by its import name), plus the definitions battery."""
    stem = Path(rel).stem
    words = [f"ops.{stem}", f"ops import {stem}", f"models.{stem}", f"experiments import {stem}",
             f"experiments.{stem}", f"seqlab.{stem}", f"import {stem}"]
    if rel.startswith("seqlab/ops") or stem in ("__init__", "registry"):
        words.append("seqlab.ops")
    if rel.startswith("seqlab/models"):
        words.append("from seqlab.models import")
    found = []
    for t in sorted((CODE / "tests").glob("test_*.py")):
        text = t.read_text()
        if any(re.search(r"\b" + re.escape(w), text) for w in words) or (stem != "__init__" and f", {stem}" in text
                                                                        and "import" in text):
            found.append(f"tests/{t.name}")
    return sorted(set(found + ALWAYS) - {"tests/test_course.py", "tests/test_site.py"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    files = []
    for target in TARGETS:
        p = CODE / target
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    pool = [(f, *c) for f in files for c in candidates(f)]
    rng = random.Random(args.seed)
    sample = rng.sample(pool, min(args.n, len(pool)))
    print(f"{len(pool)} candidate mutants in {len(files)} files; running {len(sample)} (seed {args.seed})", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="seqlab-mutation-"))
    shutil.copytree(CODE, tmp / "code", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = dict(os.environ, PYTHONPATH=str(tmp / "code"), SEQLAB_PROGRESS="0", MPLBACKEND="Agg")
    killed, rows = 0, []
    try:
        for i, (path, row, c0, c1, old, new) in enumerate(sample, 1):
            rel = str(path.relative_to(CODE))
            target = tmp / "code" / rel
            original = path.read_text()
            lines = original.splitlines(keepends=True)
            line = lines[row - 1]
            lines[row - 1] = line[:c0] + new + line[c1:]
            target.write_text("".join(lines))
            tests = tests_for(rel)
            t0 = time.time()
            try:
                rc = subprocess.run(["nice", "-n", "15", sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                     "no:cacheprovider", *tests], cwd=tmp / "code", env=env, capture_output=True,
                                    timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            finally:
                target.write_text(original)
            dead = rc != 0
            killed += dead
            what = f"{rel}:{row}: `{line.strip()[:90]}`: {old!r} → {new!r}"
            rows.append((dead, what, rc))
            print(f"[{i}/{len(sample)}] {'killed ' if dead else 'SURVIVED'} ({time.time() - t0:.0f} s, rc {rc}) {what}",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rate = killed / len(sample)
    summary = f"Killed {killed} of {len(sample)} mutants ({100 * rate:.1f} %), seed {args.seed}."
    print(summary)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(summary + "\n\nSurvivors:\n\n" + "\n".join(f"- {w}" for d, w, _ in rows if not d) + "\n")


if __name__ == "__main__":
    main()
