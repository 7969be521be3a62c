# Two commands for people: `make demo` and `make test`. Both install what they need into .venv and node_modules.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install test demo bench render-emails clean

install: $(INSTALLED) node_modules/.installed

$(INSTALLED): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Azurite, the storage emulator the tests start on loopback, comes from npm.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

test: install
	$(BIN)/python -m pytest

# Offline demo: the Key Vault and ACS Email emulators; notices and emails land in outbox/.
demo: install
	$(BIN)/python -m emulators.demo --outbox outbox

# Requests per event, sweep cost and import time; writes benchmarks/RESULTS.md.
bench: install
	$(BIN)/python -m benchmarks.run --output benchmarks/RESULTS.md

# Screenshots of every email template in build/email-previews/, for a person to look at. It needs Chromium,
# installed from Debian's packages when missing, so it is not part of `make test`.
render-emails: install
	command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)
	$(BIN)/python tests/email/render_emails.py --out build/email-previews

clean:
	rm -rf $(VENV) node_modules .pytest_cache
