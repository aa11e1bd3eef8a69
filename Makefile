# kernsurf: `make serve` builds the default database (if missing) and serves it;
# `make test` runs the test suite; `make lint` runs ruff and mypy. All install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KERNSURF := $(VENV)/bin/kernsurf
DB ?= kernels.db
MANIFEST ?= manifests/default.yml
TEST_KERNEL_PACKAGE := linux-image-6.1.0-56-amd64-dbg

.PHONY: install system-deps serve database test lint fetch-test-kernel bench bench-build bench-serve bench-diff bench-check bench-modules bench-storage clean

$(VENV)/.installed: pyproject.toml setup.py ingest/readers/_dwarfwalk.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint,rpm]'
	touch $@

install: $(VENV)/.installed

system-deps:
	bash scripts/install-system-deps.sh

$(DB): | install
	$(KERNSURF) build $(MANIFEST) --db $(DB)

database: $(DB)

serve: $(DB)
	bash scripts/serve.sh $(DB)

fetch-test-kernel: install
	$(KERNSURF) fetch debian $(TEST_KERNEL_PACKAGE) --suite bookworm

# ruff (lint and format) over the tree, mypy over ingest/ (pyproject.toml: [tool.ruff], [tool.mypy]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The real-kernel tests run when the image is cached; a failed download only makes them skip.
test: install system-deps
	-$(MAKE) --no-print-directory fetch-test-kernel
	$(PY) -m pytest -q -ra

bench: install
	$(PY) scripts/bench_ingest.py

bench-build: install
	$(PY) scripts/bench_build.py manifests/debian.yml

bench-serve: $(DB)
	$(PY) scripts/bench_serve.py $(DB)

bench-diff: $(DB)
	$(PY) scripts/bench_diff.py $(DB)

# BPF_OBJECTS: a directory of *.bpf.o (e.g. the 52 libbpf-tools objects tests/test_corpus.py extracts);
# empty: tests/fixtures/check/real.bpf.c.
bench-check: $(DB)
	$(PY) scripts/bench_check.py $(DB) $(BPF_OBJECTS)

# The 6.1.0-56 amd64 package with its 4 023 modules (kernsurf fetch keeps them); MODULES_IMAGE to change.
MODULES_IMAGE ?= $(shell $(PY) -m ingest fetch debian 6.1.0-56-amd64 --suite bookworm 2>/dev/null)
bench-modules: install
	$(PY) scripts/bench_modules.py $(MODULES_IMAGE)

# Bytes per table and index of STORAGE_DB; with STORAGE_IMAGES (vmlinux paths, in order) each is first
# ingested into it, measured (bytes added, write time, peak RSS, pahole anchor), and the archive projected.
# Keep a fresh STORAGE_DB outside the repository (e.g. ~/.cache/kernsurf/bench/storage.db) to reuse it.
STORAGE_DB ?= $(DB)
STORAGE_IMAGES ?=
bench-storage: install
	$(PY) scripts/bench_storage.py --manifest manifests/debian.yml $(STORAGE_DB) $(STORAGE_IMAGES)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
