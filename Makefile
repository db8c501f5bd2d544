# The README's two commands: `make book` builds the website, `make test` runs every check.
# Both create .venv and install requirements.txt themselves (Python 3.11 and make are all you need).
# Each notebook is executed once per command, two at a time (JOBS=2), and the website is built from those runs.

SHELL  := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# No progress bars in built pages and logs.
export SEQLAB_PROGRESS := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Kernels must draw figures inline (ipykernel's default). MPLBACKEND=Agg in a
# kernel's environment leaves every figure, and every widget's first state, off
# the website, so it is never passed on; the package tests choose Agg themselves
# (code/tests/conftest.py), and matplotlib needs no display either way.
unexport MPLBACKEND

.PHONY: book bench exercises lab screenshots test test-exercises test-seeds test-gpu test-package test-package-beside-the-book test-notebooks test-book test-site vendor setup clean results-gpu results-cpu

setup: $(STAMP)

$(STAMP): requirements.txt code/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	@# Byte-compile what was installed, on every core (pip's own pass runs on one). Python caches a module's
	@# bytecode when first imported, but not where PYTHONDONTWRITEBYTECODE is set (CI's machines set it):
	@# there every notebook kernel compiled torch and matplotlib again, about 5 s of each chapter's time.
	@# The few files meant for newer Pythons (torch's py312 tests) fail to compile and are left as they are.
	$(PY) -c "import compileall, sysconfig; compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=2, workers=0)"
	touch $@

# jupyter-cache hashes only notebook cells, so a change to code/seqlab (or to
# the pinned requirements) would leave stale pages: key the execution cache on
# a hash of the package and requirements.txt.
cache-key:
	@mkdir -p _build
	@key=$$( (find code/seqlab -name '*.py' | LC_ALL=C sort | xargs cat; cat requirements.txt) | sha256sum | cut -c1-16); \
	if [ "$$(cat _build/.seqlab-hash 2>/dev/null)" != "$$key" ]; then \
		echo "code/seqlab or requirements.txt changed: clearing the notebook execution cache"; \
		rm -rf _build/.jupyter_cache; echo $$key > _build/.seqlab-hash; fi
.PHONY: cache-key

# require.js and the ipywidgets manager, from npm into _build/_vendor, so that
# widgets on the website work offline; without npm it says so and the build goes on.
vendor:
	@$(PYTHON) book/_vendor/vendor_js.py _build/_vendor

# Every notebook is executed once, by nbval, two at a time (JOBS, one PyTorch thread each): the
# plugin in chapters/conftest.py stores each executed notebook in the book's execution cache, and
# the book build reads it from there instead of running the chapters a second time.
JOBS ?= 2
NBVAL   := $(PY) -m pytest --nbval-lax --nbval-current-env -q -p no:cacheprovider
EXECUTE := SEQLAB_EXECUTION_CACHE=_build/.jupyter_cache $(NBVAL) -n $(JOBS) --dist loadfile
NOTEBOOKS ?= chapters

# make book runs only the notebooks whose cells have no cached execution yet (none after make test),
# reports their time without failing on it, and builds the website from the cache.
book: setup cache-key vendor
	SEQLAB_EXECUTION_REUSE=1 SEQLAB_BUDGET_CHECK=0 $(EXECUTE) $(NOTEBOOKS) || [ $$? -eq 5 ]
	$(VENV)/bin/jupyter-book build . --builder html
	@echo "The website is in _build/html/index.html"

# make test: every notebook first, alone on both cores (their times are the budget table's), then the
# package tests beside the book build and the browser tests, which leave a core idle much of the time
# (Sphinx writes pages on one; the browser waits on pages). The package tests' output is kept in
# _build/package-tests.log and printed when they finish, so that it does not interleave with the build's.
test: setup
	@$(MAKE) --no-print-directory -j2 test-site test-package-beside-the-book

PACKAGE_TESTS = $(PY) -m pytest code/tests -q -n $(JOBS)

test-package: setup
	$(PACKAGE_TESTS)

test-package-beside-the-book: setup test-notebooks
	@echo "package tests (code/tests): running beside the book build and the browser tests; their output follows when they finish"
	@$(PACKAGE_TESTS) > _build/package-tests.log 2>&1; rc=$$?; \
		echo "== package tests (code/tests), exit status $$rc:"; cat _build/package-tests.log; exit $$rc

# every notebook, validated by nbval within its budget, and stored for the book build
test-notebooks: setup cache-key
	$(EXECUTE) $(NOTEBOOKS)

# Every chapter again under other seeds (SEQLAB_SEED_OFFSET shifts every seed_everything call):
# a claim asserted on a page must hold for any seed, not only the committed one.
SEEDS ?= 1 2 3
test-seeds: setup
	@for s in $(SEEDS); do echo "== chapters with SEQLAB_SEED_OFFSET=$$s"; \
		SEQLAB_SEED_OFFSET=$$s $(NBVAL) -n $(JOBS) --dist loadfile $(NOTEBOOKS) || exit 1; done

# The book must build with warnings treated as errors, from the executions test-notebooks stored:
# a notebook the build had to execute again means the cache missed, and fails the target.
test-book: setup test-notebooks vendor
	@set -o pipefail; $(VENV)/bin/jupyter-book build . --builder html -W --keep-going 2>&1 | tee _build/book-build.log
	@if grep -q "Executing notebook" _build/book-build.log; then \
		echo "test-book: the build executed notebooks again instead of reading test-notebooks' executions:"; \
		grep -B1 "Executing notebook" _build/book-build.log; exit 1; fi

# The site test-book built (no second build): launch and download buttons, the
# API page, no CDN; then every page in headless Chromium, offline, with
# screenshots in _build/screenshots (skipped, saying why, without a Chromium).
test-site: setup test-book
	rm -f _build/screenshots/*.png
	$(PY) -m pytest code/site_tests -q -rs -p no:cacheprovider -n $(JOBS)

# The browser test again on the site make book or make test built, saving every page's whole
# length as well (_build/screenshots/*.full.png), for reading the site as a reviewer would.
screenshots: setup
	SEQLAB_FULL_SCREENSHOTS=1 $(PY) -m pytest code/site_tests/test_browser.py -q -rs -p no:cacheprovider

# seqlab's modules against PyTorch's built-ins, and each fast scan against its loop, side by side in one run;
# the tables go to results/ and the book's benchmark page shows them (with the machine they ran on).
bench: setup
	$(PY) code/benchmarks/modules.py --json results/bench-modules.json --markdown results/bench-modules.md
	$(PY) code/benchmarks/scans.py --markdown results/bench-scans.md

# The exercise notebooks, exercises/NN_name.ipynb: every chapter with its coding solutions
# replaced by stubs and their checkers, the other solutions by a pointer to the book
# (code/seqlab/exercises.py). They are committed; the package tests fail when one is out of date.
exercises: setup
	$(PY) -m seqlab.exercises

# Every exercise notebook top to bottom, stubs unwritten (the checkers report, nothing may fail).
# Off make test: its other cells are the chapters' own, which test-notebooks runs, and
# code/tests/test_exercises.py runs every stub, checker and summary cell.
test-exercises: setup
	$(NBVAL) -n $(JOBS) --dist loadfile exercises

# JupyterLab on the exercise notebooks, in the course's environment (.venv). JupyterLab itself
# is installed into .venv the first time (make book and make test never need it).
JUPYTERLAB ?= jupyterlab>=4.2,<5
lab: setup
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check "$(JUPYTERLAB)"
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/exercises

# On a CUDA machine: every chapter at full scale (no time budget), and the package tests on the GPU.
test-gpu: setup
	SEQLAB_SCALE=full $(PY) -m pytest code/tests -q
	SEQLAB_SCALE=full $(NBVAL) $(NOTEBOOKS)

# Every chapter's experiment at full scale on a CUDA machine, into results/NAME.json
# (`python -m seqlab.experiments --help` lists them). GPUS=8 spreads each sweep's runs over
# eight GPUs with torchrun; the timed experiments run alone on one GPU, so that no process
# slows another's clock.
GPUS ?= 1
results-gpu results-cpu: export SEQLAB_PROGRESS := 1
SEEDS_FULL ?= 0 1 2
EXPERIMENTS_SWEEP := ngrams char_rnn clipping gating reversal dilution positions scaling induction recall copying hybrid_recall hybrid_steps hybrid_lr parallel_rnn longrange ssm_lags norm_placement induction_lr
EXPERIMENTS_TIMED := race encoder_decoder cost architectures
results-gpu: setup
	@$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'make results-gpu needs a CUDA GPU, and torch.cuda.is_available() is False here; make results-cpu runs the sweeps that a CPU can')"
	@for e in $(EXPERIMENTS_SWEEP); do \
		if [ "$(GPUS)" = "1" ]; then $(PY) -m seqlab.experiments $$e --scale full --seeds $(SEEDS_FULL) --device cuda || exit 1; \
		else $(VENV)/bin/torchrun --standalone --nproc_per_node=$(GPUS) -m seqlab.experiments $$e --scale full --seeds $(SEEDS_FULL) --device cuda || exit 1; fi; done
	@for e in $(EXPERIMENTS_TIMED); do $(PY) -m seqlab.experiments $$e --scale full --seeds $(SEEDS_FULL) --device cuda || exit 1; done

# The sweeps that need more than a chapter's minute but no GPU, on the CPU at the chapters'
# scale (each prints an estimate of its time once its first run is done); their results
# files are committed and chapters 7 to 15 plot them beside their live numbers.
# Each sweep saves every finished run as it completes and skips it when run again, so this target
# can be stopped and resumed over several sittings (chapter 10's scaling study: ~3.5 CPU-hours;
# recall and long range: a few CPU-hours each). The process count does not change a run's numbers
# (each run seeds itself), only the wall-clock times a results file records.
TORCHRUN_CPU := SEQLAB_THREADS=1 $(PY) -m torch.distributed.run --standalone --nproc_per_node=2 -m seqlab.experiments
results-cpu: setup
	$(TORCHRUN_CPU) scaling --scale cpu --seeds 0 1 2 --out results/scaling-cpu.json
	$(TORCHRUN_CPU) recall --scale quick --seeds 0 1 2
	$(TORCHRUN_CPU) longrange --scale quick --seeds 0 1 2
	$(TORCHRUN_CPU) induction --scale quick --seeds 0 1 2
	$(TORCHRUN_CPU) induction_lr --scale quick --seeds 0 1 2
	$(PY) -m seqlab.experiments copying --scale quick --seeds 0 1 2 --device cpu
	$(PY) -m seqlab.experiments hybrid_recall --scale quick --seeds 0 1 2 --device cpu
	$(TORCHRUN_CPU) hybrid_steps --scale quick --seeds 0 1 2
	$(TORCHRUN_CPU) hybrid_lr --scale quick --seeds 0 1 2
	$(TORCHRUN_CPU) parallel_rnn --scale quick --seeds 0 1 2
	$(TORCHRUN_CPU) ssm_lags --scale quick --seeds 0 1 2
	$(TORCHRUN_CPU) norm_placement --scale quick --seeds 0 1 2
	$(PY) -m seqlab.experiments encoder_decoder --scale quick --seeds 0 1 2 --device cpu  # timed (step_ms): one process
	$(TORCHRUN_CPU) positions --scale quick --seeds 0 1 2

clean:
	rm -rf _build

# One-line bugs (operator swaps, constants, sign flips) in ops/, models/, interpret.py, experiments/ and
# train.py, and whether the tests that import the mutated module catch each (off CI: tens of minutes).
MUTANTS ?= 40
mutation: setup
	nice -n 15 $(PY) code/benchmarks/mutation.py --named
	nice -n 15 $(PY) code/benchmarks/mutation.py --n $(MUTANTS) --out results/mutation.md
.PHONY: mutation
