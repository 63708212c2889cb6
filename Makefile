# callctl: contact-center controller for Asterisk 22, with a real Asterisk testbed.
#
#   make setup          host packages, .venv, the Asterisk root (all idempotent)
#   make run            demo Asterisk + controller in the foreground (Ctrl-C stops both)
#   make test           ruff + every test, integration tests on a real Asterisk included
#   make demo           real traffic on the real stack, live status, summary (DURATION=180)
#   make cluster        PostgreSQL, Kamailio on :5060, two Asterisk nodes, two controllers
#   make bench          benchmarks (BENCH=routing runs the ones whose name has that word)
#   make asterisk-start / asterisk-stop / clean
#
# Needs root (apt-get, debootstrap, chroot). Works with Debian 12's python3 (python3-venv is
# installed by setup) or any other Python 3.11 found as $(PYTHON). Debian's postgresql is
# installed for the store's PostgreSQL backend; tests and benchmarks start their own clusters
# under var/ as the postgres user, never the system service.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST_PACKAGES := debootstrap sip-tester prometheus sox espeak-ng python3-venv sqlite3 iproute2 postgresql systemd \
    kamailio kamailio-postgres-modules
# Test sessions side by side (pytest-xdist), one module at a time each; worker K uses test slot
# CALLCTL_TEST_SLOT+K, its own instances and ports. TEST_WORKERS=0 runs the suite in-process.
TEST_WORKERS ?= 2
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: setup host-packages venv asterisk-root run test demo cluster bench asterisk-start \
    asterisk-stop clean

setup: host-packages venv asterisk-root

host-packages:
	@missing=$$(for p in $(HOST_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	    echo "installing host packages:" $$missing; \
	    $(SUDO) apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Reinstall when pyproject.toml changes (the stamp is older than it).
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml | host-packages
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

asterisk-root:
	@$(SUDO) bash scripts/asterisk-root.sh

run: setup
	@$(PY) -m testbed asterisk start
	@$(PY) -m testbed config
	@# the trailing `|| status=` keeps bash from exec-ing callctl, which would drop the traps
	@trap '$(PY) -m testbed asterisk stop' EXIT; trap 'exit 130' INT TERM; status=0; \
	    $(VENV)/bin/callctl --config var/controller.toml serve || status=$$?; exit $$status

test: setup
	$(VENV)/bin/ruff check controller testbed tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile

# Ctrl-C stops every process of the demo (the script's own cleanup).
demo: setup
	$(PY) -m testbed.demo --duration $(or $(DURATION),180)

# Ctrl-C stops every part of the cluster (the script's own cleanup).
cluster: setup
	$(PY) -m testbed.cluster

bench: setup
	$(PY) -m bench $(BENCH)

asterisk-start: setup
	$(PY) -m testbed asterisk start

asterisk-stop:
	@[ ! -x $(PY) ] || $(PY) -m testbed asterisk stop

# Keeps the Asterisk root (outside the tree, slow to rebuild): scripts/asterisk-root.sh --force
clean: asterisk-stop
	rm -rf var build .pytest_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
