"""pytest plugin for the chapter notebooks: nbval runs each notebook once, and the book reuses that run.

nbval runs each notebook in its own kernel, one test per cell. This plugin

* **records what nbval saw** -- every kernel message nbval reads goes through
  nbclient's own output handling (``NotebookClient.process_message``: streams,
  displays, ``clear_output``, widget comms and their state), so the executed
  notebook is the one the book build would have made -- and, when
  ``SEQLAB_EXECUTION_CACHE`` names the book's jupyter-cache folder, stores each
  notebook that passed there. ``jupyter-book build`` (``execute_notebooks:
  cache``) then finds every chapter executed and runs none of them again.
  Every executed notebook, passed or failed, is also written to
  ``_build/executed/`` so that a failure can be read cell by cell;
* with ``SEQLAB_EXECUTION_REUSE=1`` (``make book``) skips the notebooks whose
  current cells already have a cached execution (the cache is keyed on the
  cells, and the Makefile clears it when ``code/seqlab`` changes);
* adds up the time of a notebook's cells (and the kernel start) and reads the
  kernel process's CPU seconds (user + system) and peak resident memory (VmHWM,
  Linux) after each cell. At the end it prints a table and, at the quick scale,
  fails the run if a notebook went over its budget by more than 50% (DESIGN.md:
  60 s and 1.5 GB on a 2-core CPU). Time is judged on the kernel's CPU seconds,
  which a busy machine leaves nearly unchanged where it stretches the wall
  clock (a chapter run with nothing else running uses about as many CPU seconds
  as wall seconds: one PyTorch thread); where /proc is missing, on the wall
  time. The figures are also written to ``_build/notebook-timings.json``.

It works alone or under pytest-xdist (``-n 2 --dist loadfile``: each notebook
stays on one worker; the table is gathered from the workers' reports).

Environment: ``SEQLAB_BUDGET_S`` / ``SEQLAB_BUDGET_MB`` change the budget;
``SEQLAB_BUDGET_SLACK`` the allowed excess (default 0.5); ``SEQLAB_BUDGET_CHECK=0``
reports without failing (``make book``).
"""
from __future__ import annotations

import copy
import fcntl
import json
import os
import platform
import re
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

BUDGET_S = float(os.environ.get("SEQLAB_BUDGET_S", 60))
BUDGET_MB = float(os.environ.get("SEQLAB_BUDGET_MB", 1536))
SLACK = float(os.environ.get("SEQLAB_BUDGET_SLACK", 0.5))
BUDGET_CHECK = os.environ.get("SEQLAB_BUDGET_CHECK", "1") != "0"
CACHE = os.environ.get("SEQLAB_EXECUTION_CACHE", "").strip()
REUSE = os.environ.get("SEQLAB_EXECUTION_REUSE", "0") == "1"
ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "executed"

seconds: dict[str, float] = defaultdict(float)
cpu_seconds: dict[str, float] = {}     # notebook -> the kernel's CPU seconds after its last cell
peak_mb: dict[str, float] = defaultdict(float)
failures: dict[str, str] = {}          # notebook -> "Cell N: error line" (the first failure)


def _is_notebook(nodeid: str) -> bool:
    return nodeid.split("::")[0].endswith(".ipynb")


# --------------------------------------------------------------------------- the execution cache

@contextmanager
def _cache_lock():
    """One writer at a time: two xdist workers share the cache's SQLite database."""
    lock = Path(CACHE).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cache():
    from jupyter_cache import get_cache
    return get_cache(CACHE)


def _cached(path: Path) -> bool:
    """Whether the cache holds an execution of this notebook's current cells."""
    nb = nbformat.read(str(path), as_version=4)
    with _cache_lock():
        try:
            _cache().match_cache_notebook(nb)
        except KeyError:
            return False
    return True


class _NoShell:
    """Stands in for the kernel client nbclient's Output widgets would reply through: they never need to
    (the explorers give them nothing to capture, seqlab/widgets.py), and nothing is sent if they do."""

    class shell_channel:  # noqa: N801 - the attribute name nbclient uses
        @staticmethod
        def send(msg):
            pass

    session = None


class Recorder:
    """The executed copy of one notebook, built from the kernel messages nbval reads."""

    def __init__(self, nbfile):
        from nbclient import NotebookClient

        self.path = Path(str(nbfile.fspath))
        self.source = nbfile.nb                       # what nbval compares against: left untouched
        self.nb = copy.deepcopy(nbfile.nb)
        self.client = NotebookClient(self.nb, record_timing=False)
        self.client.reset_execution_trackers()
        self.client.kc = _NoShell()
        self.index: int | None = None
        self.msg_id: str | None = None
        self.started = time.time()

    def start_cell(self, item) -> None:
        self.index = next(i for i, c in enumerate(self.source.cells) if c is item.cell)
        self.nb.cells[self.index].outputs = []
        self.client.clear_before_next_output = False

    def feed(self, msg: dict) -> None:
        from nbclient.exceptions import CellExecutionComplete

        if self.index is None or msg.get("parent_header", {}).get("msg_id") != self.msg_id:
            return
        try:
            self.client.process_message(msg, self.nb.cells[self.index], self.index)
        except CellExecutionComplete:
            pass

    def finish(self, passed: bool) -> Path:
        import sys

        self.client.set_widgets_metadata()
        self.nb.metadata["language_info"] = {
            "name": "python", "version": platform.python_version(), "mimetype": "text/x-python",
            "file_extension": ".py", "codemirror_mode": {"name": "ipython", "version": sys.version_info[0]},
            "pygments_lexer": "ipython3", "nbconvert_exporter": "python"}
        EXECUTED.mkdir(parents=True, exist_ok=True)
        out = EXECUTED / self.path.name
        nbformat.write(self.nb, str(out))
        if passed and CACHE:
            from jupyter_cache.base import CacheBundleIn

            with _cache_lock():
                _cache().cache_notebook_bundle(
                    CacheBundleIn(self.nb, str(self.path), data={"execution_seconds": time.time() - self.started}),
                    check_validity=False, overwrite=True)
        return out


def _install_recorder() -> None:
    """Route nbval's kernel messages through a Recorder (nbval's own checks are unchanged)."""
    try:
        from nbval import plugin as nbval_plugin
        from nbval.kernel import RunningKernel
    except ImportError:
        return
    if getattr(nbval_plugin.IPyNbFile, "_seqlab_recording", False):
        return
    get_message = nbval_plugin.IPyNbFile.get_kernel_message

    def get_kernel_message(self, timeout=None, stream="iopub"):
        msg = get_message(self, timeout=timeout, stream=stream)
        recorder = getattr(self, "_seqlab_recorder", None)
        if recorder is not None and stream == "iopub":
            recorder.feed(msg)
        return msg

    def execute_cell_input(self, cell_input, allow_stdin=None):
        # as nbclient and Jupyter do: with store_history=True (nbval's is False) IPython sees the cell
        # in its history, so a trailing `;` hides the last value there too, as it does for a reader
        msg_id = self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False)
        recorder = getattr(self, "_seqlab_recorder", None)
        if recorder is not None:
            recorder.msg_id = msg_id
        return msg_id

    nbval_plugin.IPyNbFile.get_kernel_message = get_kernel_message
    RunningKernel.execute_cell_input = execute_cell_input
    nbval_plugin.IPyNbFile._seqlab_recording = True


_install_recorder()


def _notebook_of(item):
    parent = getattr(item, "parent", None)
    return parent if parent is not None and hasattr(parent, "nb") and hasattr(item, "cell") else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    nbfile = _notebook_of(item)
    if nbfile is None:
        return
    # nbval waits 5 s for each output message after a cell's reply; a loaded machine can take longer,
    # and the reply has come, so the rest will: wait up to a minute rather than fail the notebook
    item.output_timeout = max(getattr(item, "output_timeout", 5), 60)
    if getattr(nbfile, "_seqlab_recorder", None) is None:
        nbfile._seqlab_recorder = Recorder(nbfile)
        nbfile._seqlab_failed = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    nbfile = _notebook_of(item)
    if nbfile is None or nbfile.kernel is None:
        return
    nbfile.kernel._seqlab_recorder = nbfile._seqlab_recorder      # execute_cell_input reports the msg_id here
    nbfile._seqlab_recorder.start_cell(item)


def pytest_collection_modifyitems(session, config, items):
    """``SEQLAB_EXECUTION_REUSE=1``: leave out the notebooks whose current cells are already cached."""
    if not (REUSE and CACHE and Path(CACHE).exists()):
        return
    keep, skipped = [], []
    fresh: dict[str, bool] = {}
    for item in items:
        path = str(item.fspath)
        if path.endswith(".ipynb") and path not in fresh:
            fresh[path] = _cached(Path(path))
        (skipped if fresh.get(path) else keep).append(item)
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = keep
        names = sorted(Path(p).name for p, hit in fresh.items() if hit)
        print(f"\nexecution cache: {len(names)} notebook(s) already executed with these cells, not run again: {', '.join(names)}")


# --------------------------------------------------------------------------- time, memory, failures

def _kernel_pid(item) -> int | None:
    kernel = getattr(getattr(item, "parent", None), "kernel", None)
    km = getattr(kernel, "km", None)
    return getattr(getattr(km, "provisioner", None), "pid", None)


def _kernel_cpu_seconds(item) -> float | None:
    """CPU seconds the kernel process has used so far, user + system, its threads and waited-for children (Linux)."""
    pid = _kernel_pid(item)
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])  # fields 14-17 of proc(5)
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def _kernel_peak_mb(item) -> float | None:
    pid = _kernel_pid(item)
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
    """On the process that runs the cell (an xdist worker or the only process): attach the kernel's peak memory."""
    outcome = yield
    if not _is_notebook(item.nodeid):
        return
    report = outcome.get_result()
    if call.when == "call":
        mb = _kernel_peak_mb(item)
        if mb is not None:
            report.user_properties.append(("seqlab_peak_mb", mb))
        cpu = _kernel_cpu_seconds(item)
        if cpu is not None:
            report.user_properties.append(("seqlab_cpu_s", cpu))
    nbfile = _notebook_of(item)
    if nbfile is not None and report.failed:
        nbfile._seqlab_failed = True
    if nbfile is not None and call.when == "teardown" and item is getattr(nbfile, "_seqlab_last_item", None):
        recorder = getattr(nbfile, "_seqlab_recorder", None)
        if recorder is not None:
            out = recorder.finish(passed=not nbfile._seqlab_failed)
            report.user_properties.append(("seqlab_executed", str(out.relative_to(ROOT))))


def pytest_collection_finish(session):
    last = {}
    for item in session.items:
        nbfile = _notebook_of(item)
        if nbfile is not None:
            last[nbfile] = item
    for nbfile, item in last.items():
        nbfile._seqlab_last_item = item


executed_at: dict[str, str] = {}


def pytest_runtest_logreport(report):
    """On the controller (or the only process): add up each notebook's time, peak memory and first failure."""
    if not _is_notebook(report.nodeid):
        return
    nb = report.nodeid.split("::")[0]
    seconds[nb] += report.duration
    for key, value in report.user_properties:
        if key == "seqlab_peak_mb":
            peak_mb[nb] = max(peak_mb[nb], value)
        elif key == "seqlab_cpu_s":
            cpu_seconds[nb] = max(cpu_seconds.get(nb, 0.0), value)
        elif key == "seqlab_executed":
            executed_at[nb] = value
    if report.failed and nb not in failures:
        cell = report.nodeid.split("::")[-1]
        text = (report.longreprtext or "").strip().splitlines()
        errors = [line for line in text if re.match(r"\s*(E\s+)?\w*(Error|Exception|Interrupt|Timeout)\b", line)]
        failures[nb] = f"{cell} ({report.when}): {(errors or text or ['?'])[-1].strip()[:300]}"


def _over_budget() -> list[str]:
    if os.environ.get("SEQLAB_SCALE", "quick") == "full":
        return []
    bad = []
    for nb, wall in seconds.items():
        s, what = (cpu_seconds[nb], "CPU s") if nb in cpu_seconds else (wall, "s")
        if s > BUDGET_S * (1 + SLACK):
            bad.append(f"{nb}: {s:.1f} {what} > {BUDGET_S * (1 + SLACK):.0f} s (budget {BUDGET_S:.0f} s + {SLACK:.0%})")
        if peak_mb.get(nb, 0) > BUDGET_MB * (1 + SLACK):
            bad.append(f"{nb}: {peak_mb[nb]:.0f} MB > {BUDGET_MB * (1 + SLACK):.0f} MB (budget {BUDGET_MB:.0f} MB + {SLACK:.0%})")
    return bad


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionfinish(session, exitstatus):
    if not seconds or _is_worker(session.config):
        return
    out = ROOT / "_build" / "notebook-timings.json"
    out.parent.mkdir(exist_ok=True)
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "scale": os.environ.get("SEQLAB_SCALE", "default"),
        "workers": os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"),
        "notebooks": {nb: {"seconds": round(seconds[nb], 2), "cpu_seconds": round(cpu_seconds.get(nb, float("nan")), 2),
                           "peak_mb": round(peak_mb.get(nb, 0), 1)} for nb in sorted(seconds)},
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    if BUDGET_CHECK and _over_budget() and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if not seconds:
        return
    tr = terminalreporter
    tr.section("notebook time and peak memory")
    tr.write_line(f"{'notebook':<44} {'seconds':>8} {'CPU s':>8} {'peak MB':>8}")
    for nb in sorted(seconds):
        tr.write_line(f"{nb:<44} {seconds[nb]:>8.1f} {cpu_seconds.get(nb, float('nan')):>8.1f} "
                      f"{peak_mb.get(nb, float('nan')):>8.0f}")
    tr.write_line(f"budget: {BUDGET_S:.0f} s and {BUDGET_MB:.0f} MB per notebook; a run fails beyond +{SLACK:.0%}, time judged "
                  "on the kernel's CPU seconds (other work on the machine stretches the wall clock, not these)"
                  + ("" if BUDGET_CHECK else " (not checked in this run)"))
    for line in _over_budget():
        tr.write_line(("OVER BUDGET " if BUDGET_CHECK else "over budget (not checked) ") + line, red=BUDGET_CHECK)
    for nb, what in sorted(failures.items()):
        where = executed_at.get(nb)
        tr.write_line(f"FAILED {nb}: {what}", red=True)
        if where:
            tr.write_line(f"       the executed notebook, outputs up to the failure: {where}", red=True)
    if CACHE and not failures:
        tr.write_line(f"executed notebooks stored in the book's execution cache ({CACHE}): the book build reuses them")
