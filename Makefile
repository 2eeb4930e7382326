# The two commands of the README: `make serve` and `make test` (each installs what it needs first).
PYTHON ?= python3
# The service's default model is open_clip ViT-B-32 (downloads CLIP weights on first start).
# Override, e.g. `make serve MODEL=open_clip:ViT-B-32@/models/clip.bin`.
MODEL ?=

.PHONY: install serve test bench
install:
	PYTHON=$(PYTHON) EXTRAS=test scripts/install.sh

serve: install
	$(if $(MODEL),COUNTERFEIT_MODEL=$(MODEL)) $(PYTHON) -m service serve

test: install
	$(PYTHON) -m pytest -q
