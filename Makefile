# Two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.aekit-installed

.PHONY: install demo test bench clean

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

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/anomaly_tabular.py
	$(PY) benchmarks/throughput.py

clean:
	rm -rf demo_output .pytest_cache build *.egg-info src/*.egg-info
