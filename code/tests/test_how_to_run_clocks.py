"""How to run cannot glue: the clocks its experiment table quotes from a results file are checked against the file.

Every cell that quotes a results file takes one of these forms, each checked against the file it names:

- "its results file (2026-12-06): its 54 runs' logged training times sum to 25 min of wall time on 1 process":
  the file's date, its number of runs, the sum of their logged `seconds` (rounded as printed) and its processes;
- "its results file: its last call took 30 min of wall time [for 3 seeds] on 1 process": the file's `seconds`
  (the wall time of its last call), its seeds and its processes;
- encoder_decoder's "the three runs at 3e-2, the file's last call, took 61.9 s of wall time in all at 14–15 ms a
  step, the twelve earlier ones 120–400 ms a step": the runs at that rate, the file's `seconds`, and each range
  against the smallest and largest `step_ms` of its runs, both rounded as printed.

Scaling's "228 runs … about 3.5 CPU-hours of training" is checked against the saved runs of
`results/scaling-cpu/`, counted as chapter 10 counts them. A results-file cell of any other form fails here, so
re-recording a sweep, or rewording a cell, without updating this test or the page fails.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOW = (ROOT / "book" / "how_to_run.md").read_text(encoding="utf-8")
UNIT = {"h": 3600, "min": 60, "s": 1}
WORDS = {"three": 3, "six": 6, "nine": 9, "twelve": 12}
CLOCK = re.compile(r"its results file(?: \((\d{4}-\d\d-\d\d)[^)]*\))?: its (\d+) runs' logged training times sum to "
                   r"([\d.]+) (h|min) of wall time(?: on (\d+) process)?")
LAST_CALL = re.compile(r"its results file(?: \((\d{4}-\d\d-\d\d)[^)]*\))?: its last call took ([\d.]+) (h|min|s) "
                       r"of wall time(?: for (\d+) seeds)? on (\d+) process")
STEPS = re.compile(r"its results file \((\d{4}-\d\d-\d\d)\): its `step_ms` is the wall-clock median of one training "
                   r"step; the (\w+) runs at ([\d.e-]+), the file's last call, took ([\d.]+) s of wall time in all at "
                   r"(\d+)–(\d+) ms a step, the (\w+) earlier ones (\d+)–(\d+) ms a step")
CPU_HOURS = re.compile(r"`results/scaling-cpu\.json` \(resumable, `make results-cpu`: (\d+) runs, [^;)]*; "
                       r"about ([\d.]+) CPU-hours of training\)")
ROWS = [(m.group(1), line) for line in HOW.splitlines() if (m := re.match(r"\| `(\w+)` \|", line))]
QUOTED = [(name, c) for name, line in ROWS for c in CLOCK.finditer(line)]
LAST = [(name, c) for name, line in ROWS for c in LAST_CALL.finditer(line)]
STEP_CELLS = [(name, c) for name, line in ROWS for c in STEPS.finditer(line)]


def recorded(name):
    return json.loads((ROOT / "results" / f"{name}.json").read_text(encoding="utf-8"))


def rounds_to(value, printed):
    """True when `value`, rounded as `printed` is written, is `printed`: to its decimals, or, for a whole number
    ending in 0 (such as "400"), to the nearest ten."""
    if "." in printed:
        digits = len(printed.split(".")[1])
    else:
        digits = -1 if printed.endswith("0") and printed.strip("0") else 0
    return round(value, digits) == pytest.approx(float(printed))


def test_every_results_file_cell_has_a_checked_form():
    cell = re.compile(r"its results file(?: \([^)]*\))?:")              # a cell quoting the file's clock
    cells = [(name, line) for name, line in ROWS if cell.search(line)]
    assert len(cells) >= 10, "the experiment table's results-file cells have changed: update this test"
    forms = (CLOCK, LAST_CALL, STEPS)
    unchecked = [name for name, line in cells if sum(len(f.findall(line)) for f in forms) != len(cell.findall(line))]
    assert not unchecked, f"results-file cells of a form this test does not check: {unchecked}"
    assert len(QUOTED) >= 5 and len(LAST) >= 4 and len(STEP_CELLS) == 1


@pytest.mark.parametrize("name, clock", QUOTED, ids=[name for name, _ in QUOTED])
def test_a_quoted_clock_is_the_files(name, clock):
    record = recorded(name)
    date, n_runs, amount, unit, processes = clock.groups()
    runs = record["results"]["runs"]
    assert int(n_runs) == len(runs)
    if date:
        assert record["date"][:10] == date
    if processes:
        assert int(processes) == record["processes"]
    seconds = sum(run["seconds"] for run in runs)
    assert rounds_to(seconds / UNIT[unit], amount), (name, seconds / UNIT[unit])


@pytest.mark.parametrize("name, clock", LAST, ids=[name for name, _ in LAST])
def test_a_last_call_is_the_files(name, clock):
    record = recorded(name)
    date, amount, unit, seeds, processes = clock.groups()
    if date:
        assert record["date"][:10] == date
    if seeds:
        assert int(seeds) == len(record["seeds"])
    assert int(processes) == record["processes"]
    value = record["results"]["seconds"] / UNIT[unit]
    assert rounds_to(value, amount), (name, value)


@pytest.mark.parametrize("name, cell", STEP_CELLS, ids=[name for name, _ in STEP_CELLS])
def test_step_times_are_the_files(name, cell):
    record = recorded(name)
    date, n_last, lr, amount, lo, hi, n_earlier, lo_earlier, hi_earlier = cell.groups()
    assert record["date"][:10] == date
    assert record["processes"] == 1
    runs = record["results"]["runs"]
    last = [r for r in runs if r["lr"] == pytest.approx(float(lr))]
    earlier = [r for r in runs if r["lr"] != pytest.approx(float(lr))]
    assert len(last) == WORDS[n_last] and len(earlier) == WORDS[n_earlier]
    assert rounds_to(record["results"]["seconds"], amount)
    for group, low, high in ((last, lo, hi), (earlier, lo_earlier, hi_earlier)):
        ms = [v for r in group for v in r["step_ms"].values()]
        assert rounds_to(min(ms), low) and rounds_to(max(ms), high), (name, min(ms), max(ms))


def test_scalings_cpu_hours_are_the_saved_runs():
    """Counted as chapter 10 counts them: the CPU time of the runs that recorded it, and for the early runs that
    recorded wall time only, the mean CPU time of the timed runs of the same family, width and steps."""
    cells = [c for name, line in ROWS if name == "scaling" for c in CPU_HOURS.finditer(line)]
    assert len(cells) == 1, "scaling's cell has changed form: update this test"
    n_runs, hours = cells[0].groups()
    study = ROOT / "results" / "scaling-cpu"
    assert recorded("scaling-cpu")["results"]["corpus"]
    saved = [json.loads(p.read_text(encoding="utf-8"))["run"] for p in (study / "runs").glob("*-s*-n*.json")]
    assert int(n_runs) == len(saved)
    timed = [r for r in saved if r.get("cpu_seconds")]
    key = lambda r: (r["family"], r["width"], r["steps"])

    def cpu(r):
        if r.get("cpu_seconds"):
            return r["cpu_seconds"]
        same = [q["cpu_seconds"] for q in timed if key(q) == key(r)]
        return sum(same) / len(same) if same else r["seconds"]

    total = sum(cpu(r) for r in saved) / 3600
    assert rounds_to(total, hours), total
