"""pytest plugin for the chapter notebooks: time and peak memory of each one, checked against the budget.

nbval runs each notebook in its own kernel, one test per cell. This plugin adds
up the time of a notebook's cells (and the kernel start) and reads the kernel
process's peak resident memory (VmHWM, Linux) after each cell. At the end it
prints a table and, at the quick scale, fails the run if a notebook went over
its budget by more than 50% (DESIGN.md: 60 s and 1.5 GB on a 2-core CPU).
The figures are also written to ``_build/notebook-timings.json``.

Environment: ``SEQLAB_BUDGET_S`` / ``SEQLAB_BUDGET_MB`` change the budget;
``SEQLAB_BUDGET_SLACK`` the allowed excess (default 0.5).
"""
from __future__ import annotations

import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import pytest

BUDGET_S = float(os.environ.get("SEQLAB_BUDGET_S", 60))
BUDGET_MB = float(os.environ.get("SEQLAB_BUDGET_MB", 1536))
SLACK = float(os.environ.get("SEQLAB_BUDGET_SLACK", 0.5))

seconds: dict[str, float] = defaultdict(float)
peak_mb: dict[str, float] = defaultdict(float)


def _kernel_peak_mb(item) -> float | None:
    kernel = getattr(getattr(item, "parent", None), "kernel", None)
    km = getattr(kernel, "km", None)
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if not item.nodeid.split("::")[0].endswith(".ipynb"):
        return
    nb = item.nodeid.split("::")[0]
    seconds[nb] += call.stop - call.start
    if call.when == "call":
        mb = _kernel_peak_mb(item)
        if mb is not None:
            peak_mb[nb] = max(peak_mb[nb], mb)


def _over_budget() -> list[str]:
    if os.environ.get("SEQLAB_SCALE", "quick") == "full":
        return []
    bad = []
    for nb, s in seconds.items():
        if s > BUDGET_S * (1 + SLACK):
            bad.append(f"{nb}: {s:.1f} s > {BUDGET_S * (1 + SLACK):.0f} s (budget {BUDGET_S:.0f} s + {SLACK:.0%})")
        if peak_mb.get(nb, 0) > BUDGET_MB * (1 + SLACK):
            bad.append(f"{nb}: {peak_mb[nb]:.0f} MB > {BUDGET_MB * (1 + SLACK):.0f} MB (budget {BUDGET_MB:.0f} MB + {SLACK:.0%})")
    return bad


def pytest_sessionfinish(session, exitstatus):
    if not seconds:
        return
    out = Path(session.config.rootpath) / "_build" / "notebook-timings.json"
    out.parent.mkdir(exist_ok=True)
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "scale": os.environ.get("SEQLAB_SCALE", "default"),
        "notebooks": {nb: {"seconds": round(seconds[nb], 2), "peak_mb": round(peak_mb.get(nb, 0), 1)} for nb in sorted(seconds)},
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    if _over_budget() and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if not seconds:
        return
    tr = terminalreporter
    tr.section("notebook time and peak memory")
    tr.write_line(f"{'notebook':<40} {'seconds':>8} {'peak MB':>8}")
    for nb in sorted(seconds):
        tr.write_line(f"{nb:<40} {seconds[nb]:>8.1f} {peak_mb.get(nb, float('nan')):>8.0f}")
    tr.write_line(f"budget: {BUDGET_S:.0f} s and {BUDGET_MB:.0f} MB per notebook; a run fails beyond +{SLACK:.0%}")
    for line in _over_budget():
        tr.write_line("OVER BUDGET " + line, red=True)
