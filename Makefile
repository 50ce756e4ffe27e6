# emr-archive — the whole set-up on a fresh machine is `make demo` and `make test`.
# Each target creates .venv and installs what it needs (pip packages; Debian packages via apt-get
# when missing and we are root) by itself.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The stamp changes with pyproject.toml, so a changed dependency list reinstalls.
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
# softhsm2: a real PKCS#11 token for the tests and `make demo SIGNER_TOKEN=1` (keys in files).
# tesseract-ocr(-vie) and ghostscript: OCRmyPDF's OCR engine and PDF/A converter (paper intake).
APT_PACKAGES := qpdf poppler-utils fonts-dejavu-core softhsm2 tesseract-ocr tesseract-ocr-vie ghostscript
# The portal's browser tests drive Debian's Chromium (Playwright's own browser download is not
# reachable here, and a distribution browser gets security updates with the rest of the system).
BROWSER_PACKAGES := chromium
# The reference validators (veraPDF, EU DSS) that judge our PDFs in the tests: a Maven project in
# tests/oracles, artifacts cached in ~/.m2. Rebuilt only when its pom or Java source changes; the
# stamp name is computed the same way by tests/support/oracles.py.
JAVA_PACKAGES := maven openjdk-17-jdk-headless
ORACLES := tests/oracles
ORACLES_SOURCES := $(ORACLES)/pom.xml $(shell find $(ORACLES)/src -name '*.java' | LC_ALL=C sort)
ORACLES_STAMP := $(ORACLES)/target/.built-$(shell cat $(ORACLES_SOURCES) | sha256sum | cut -c1-16)

.PHONY: venv sysdeps browser oracles lint typecheck test unit integration demo bench stack-up stack-down clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@# Debian ships venv without ensurepip unless python3-venv is installed.
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || $(MAKE) --no-print-directory sysdeps APT_PACKAGES="python3-venv"
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 12), "Python 3.11 or 3.12 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

browser:
	@$(MAKE) --no-print-directory sysdeps APT_PACKAGES="$(BROWSER_PACKAGES)"

oracles: $(ORACLES_STAMP)

$(ORACLES_STAMP): $(ORACLES_SOURCES)
	@$(MAKE) --no-print-directory sysdeps APT_PACKAGES="$(JAVA_PACKAGES)"
	cd $(ORACLES) && mvn -q -B compile
	rm -f $(ORACLES)/target/.built-*
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

unit: venv sysdeps
	$(BIN)/pytest -q tests/unit

integration: venv sysdeps browser oracles
	$(BIN)/pytest -q tests/integration

test: venv sysdeps browser oracles lint typecheck
	$(BIN)/pytest -q

# `make demo SIGNER_TOKEN=1`: the development signer's key on a SoftHSM2 token, signed through
# PKCS#11 as a hospital's USB token or HSM would be.
demo: venv sysdeps
	$(if $(SIGNER_TOKEN),EMR_ARCHIVE_SIGNER__DEV_TOKEN=true )$(BIN)/emr-archive demo

bench: venv sysdeps
	$(BIN)/python -m bench.bench_store

stack-up: venv
	$(BIN)/emr-archive stack up

stack-down: venv
	$(BIN)/emr-archive stack down

clean:
	-$(BIN)/emr-archive stack down 2>/dev/null
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info $(ORACLES)/target
