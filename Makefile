# Mailshift: the two commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := dovecot-imapd
# Cyrus IMAP conflicts with dovecot-imapd as a package: its .debs are unpacked here instead.
CYRUS_CACHE := /var/cache/mailshift/cyrus

.PHONY: run demo test unit integration bench typecheck system-deps venv clean module

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Dovecot for the real-server tests and the benchmark, and Cyrus IMAP unpacked beside it
# (tests/servers/install-cyrus.sh); each installed only when missing.
system-deps:
	@if [ -x /usr/sbin/dovecot ]; then :; else \
	  echo "installing $(APT_PACKAGES) with apt-get"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi
	@if sh tests/servers/install-cyrus.sh --check $(CYRUS_CACHE); then :; else \
	  $(SUDO) sh tests/servers/install-cyrus.sh $(CYRUS_CACHE); \
	fi

# The service on embedded defaults: instance/ (SQLite, Maildir target), loopback port 5985.
run: venv
	$(VENV)/bin/mailshift serve --instance instance --create-admin

# The engine alone: a throwaway Dovecot mailbox copied twice with `mailshift sync`.
demo: venv system-deps
	$(PY) -m bench.demo

test: venv system-deps
	$(PY) -m mypy
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests/unit

bench: venv system-deps
	$(PY) -m bench.run
	$(PY) -m bench.roundtrip

# Regenerate the PowerShell module's generated files (Public/, format file, MAML help, manifest).
module: venv
	$(VENV)/bin/mailshift module build

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache
