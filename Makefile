# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv/ first (idempotent).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.runner-installed
# runner's simulated arm, scripted operator, emulated camera and world as LeRobot plugins (README: Using LeRobot's own tools).
PLUGINS := $(wildcard plugins/lerobot_*)
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test test-fast matrix cluster lint bench clean-venv

setup: $(STAMP)

# Reinstall only when the declared or pinned dependencies change. The compat editable mode is a plain
# .pth entry: the default mode's import hook costs every command ~25 ms.
$(STAMP): pyproject.toml constraints.txt $(PLUGINS:%=%/pyproject.toml)
	@if [ ! -x $(PY) ]; then \
		python=$$(scripts/find-python) || exit 1; \
		echo "Creating $(VENV) with $$python"; \
		"$$python" -m venv $(VENV); \
	fi
	@# uv installs the same pinned set as pip in about 45 s instead of 2-3 min (parallel downloads, and a cache
	@# it reuses: ~/.cache/uv); pip does it where uv cannot be installed. --compile-bytecode as pip does: without
	@# .pyc files every fresh interpreter compiles torch and LeRobot again (and cannot cache them under
	@# PYTHONDONTWRITEBYTECODE), which made a clean-clone CI half again as slow. torch's CUDA wheels are GBs
	@# from PyPI: a dropped connection is retried, first by the installer, then whole.
	@$(PY) -m pip install --quiet -c constraints.txt uv || echo "uv could not be installed: installing with pip (slower)"
	@for attempt in 1 2 3; do \
		if [ -x $(VENV)/bin/uv ]; then \
			$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -c constraints.txt \
				-C editable_mode=compat -e '.[dev]' $(PLUGINS:%=-e %) && break; \
		else \
			$(PY) -m pip install --quiet --upgrade pip && \
			$(PY) -m pip install --quiet --resume-retries 20 -c constraints.txt \
				--config-settings editable_mode=compat -e '.[dev]' $(PLUGINS:%=-e %) && break; \
		fi; \
		[ $$attempt = 3 ] && exit 1; \
		echo "install failed (attempt $$attempt of 3); retrying in $$((attempt * 30)) s"; \
		sleep $$((attempt * 30)); \
	done
	@touch $(STAMP)

# The whole loop in simulation, ending with a policy that learned: record -> train -> eval sweep -> compare,
# about 4 minutes on 2 CPU cores (experiments/demo.yaml).
demo: setup
	$(VENV)/bin/runner pipeline experiment=demo

# One pytest worker per core (pytest-xdist); tests sharing an expensive fixture stay in one worker. Tests
# marked `alone` (emulated servos answering from a Python thread within LeRobot's packet timeout, realtime
# loops, the SLURM cluster) run beside them one at a time, the workers niced (scripts/test-suite says why).
test: setup
	scripts/test-suite "not matrix"

test-fast: setup
	scripts/test-suite "not slow and not matrix"

# The kill matrix (RELIABILITY.md): RUNNER_MATRIX_POINTS kill points per stage (default 3).
matrix: setup
	$(PY) -m pytest -q -s -m matrix tests/stages/test_kill_matrix.py

# Only the SLURM tests (also in `make test`), on a single-node cluster they start (root and apt, or slurm-wlm + munge).
cluster: setup
	$(PY) -m pytest -q tests/core/test_slurm.py

lint: setup
	$(VENV)/bin/ruff check runner tests benchmarks hydra_plugins plugins
	$(VENV)/bin/ruff format --check runner tests benchmarks hydra_plugins plugins

bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
