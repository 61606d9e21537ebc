# Two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.aekit-installed

.PHONY: install demo test docs docs-check dist dist-check bench clean

install: $(STAMP)

# torch is installed first with an exact pin: the local CPU wheel, never a CUDA build.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (aekit needs Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/aekit anomaly demo --out demo_output

# two workers, one per core; each test file runs in one worker, so its shared fitted fixtures are built once
test: install
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile

# the documentation site, into site/; strict: a broken link, page or API reference fails it
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# the site as a reader sees it: screenshots of three pages in headless Chromium (Debian's
# package: apt-get install chromium) into docs_check/, and what is broken on them
docs-check: docs
	$(PY) scripts/docs_check.py --site site --out docs_check

# an sdist and a wheel (the wheel built from the sdist) into dist/, with their sizes
dist: install
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .
	@ls -l dist

# a fresh virtual environment with only torch and the wheel runs the bundled-model commands
dist-check: dist
	$(PY) scripts/wheel_check.py dist/*.whl

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/anomaly_tabular.py
	$(PY) benchmarks/throughput.py

clean:
	rm -rf demo_output .pytest_cache build dist site docs_check *.egg-info src/*.egg-info
