"""How to run cannot glue: the clocks its experiment table quotes from a results file are checked against the file.

A cell such as "its results file (2026-12-06): its 54 runs' logged training times sum to 25 min of wall time on
1 process" must name the file's date, its number of runs, the sum of their logged `seconds` (rounded as printed)
and its number of processes; re-recording a sweep without updating the page fails here.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOW = (ROOT / "book" / "how_to_run.md").read_text(encoding="utf-8")
CLOCK = re.compile(r"its results file(?: \((\d{4}-\d\d-\d\d)[^)]*\))?: its (\d+) runs' logged training times sum to "
                   r"([\d.]+) (h|min) of wall time(?: on (\d+) process)?")
ROWS = [(m.group(1), line) for line in HOW.splitlines() if (m := re.match(r"\| `(\w+)` \|", line))]
QUOTED = [(name, c) for name, line in ROWS for c in CLOCK.finditer(line)]


def test_the_table_quotes_results_file_clocks():
    assert len(QUOTED) >= 5, "the experiment table's results-file cells have changed form: update this test"


@pytest.mark.parametrize("name, clock", QUOTED, ids=[name for name, _ in QUOTED])
def test_a_quoted_clock_is_the_files(name, clock):
    recorded = json.loads((ROOT / "results" / f"{name}.json").read_text(encoding="utf-8"))
    date, n_runs, amount, unit, processes = clock.groups()
    runs = recorded["results"]["runs"]
    assert int(n_runs) == len(runs)
    if date:
        assert recorded["date"][:10] == date
    if processes:
        assert int(processes) == recorded["processes"]
    seconds = sum(run["seconds"] for run in runs)
    value = seconds / (3600 if unit == "h" else 60)
    digits = len(amount.split(".")[1]) if "." in amount else 0
    assert round(value, digits) == pytest.approx(float(amount)), (name, value)
