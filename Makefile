# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install models bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

models: $(STAMP)
	$(PY) -m mirrorcam models fetch --if-missing

demo: models
	$(PY) -m mirrorcam live --demo-fallback --force  # (out/ is make's: `make clean` removes it)

test: models
	$(PY) -m pytest $(PYTEST_ARGS)

bench: models
	$(PY) benchmarks/pose.py
	$(PY) benchmarks/replay.py
	$(PY) benchmarks/matching.py
	$(PY) benchmarks/live.py

clean:
	rm -rf $(VENV) out .pytest_cache
