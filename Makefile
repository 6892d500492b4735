# hvagent: the two commands a newcomer needs are `make run` and `make test` (see README.md).
# Both install whatever is missing on a Debian 12 machine; run them as root (or with sudo).

PYTHON ?= python3
VENV := .venv
RUN_DIR := $(CURDIR)/.run
GUEST_DIR ?= /var/cache/hvagent/guest
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
LISTEN ?= 127.0.0.1:54322
# The engine port, plain STOMP on loopback for `make run` (the shipped config: mutual TLS).
STOMP_LISTEN ?= 127.0.0.1:54321
export HVAGENT_GUEST_DIR := $(GUEST_DIR)

.PHONY: run test unit integration e2e host host-packages package-tools deb guest venv lint bench fuzz load clean

## run: start hvagent on the embedded QEMU driver (no libvirtd), domain type qemu
run: host-packages venv guest
	mkdir -p $(RUN_DIR)/embed $(RUN_DIR)/console
	@echo "hvagent on http://$(LISTEN), STOMP on $(STOMP_LISTEN); the first VM.create waits about a minute while libvirt probes QEMU"
	$(VENV)/bin/hvagent --listen $(LISTEN) \
	    --set stomp.listen=$(STOMP_LISTEN) --set stomp.tls=false \
	    --libvirt-uri "qemu:///embed?root=$(RUN_DIR)/embed" \
	    --set virt.domain_type=qemu --set virt.console_log_dir=$(RUN_DIR)/console \
	    --set 'host_access.image_roots=["$(GUEST_DIR)", "/var/lib/libvirt/images"]'

## test: the whole suite: unit, integration (libvirt test driver), e2e (libvirtd + QEMU guests),
## package (the Debian package in a Debian 12 root, booted with systemd)
test: host package-tools venv guest
	$(VENV)/bin/pytest -p no:cacheprovider tests

unit: venv
	$(VENV)/bin/pytest tests/unit

integration: venv
	$(VENV)/bin/pytest tests/unit tests/integration

e2e: host venv guest
	$(VENV)/bin/pytest tests/e2e

host:
	$(SUDO) scripts/host-setup.sh

host-packages:
	$(SUDO) scripts/host-setup.sh --packages-only

package-tools:
	$(SUDO) scripts/host-setup.sh --package-tools

## deb: the Debian package, build/deb/hvagent_<version>_amd64.deb (README: Install on a host)
deb: package-tools
	$(SUDO) scripts/build-deb.sh

guest:
	$(SUDO) tests/guest/build.sh $(GUEST_DIR)

# The venv is rebuilt when pyproject.toml changes.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

lint: venv
	$(VENV)/bin/ruff check agent tests bench

bench: venv
	$(SUDO) scripts/host-setup.sh --bench-tools
	$(VENV)/bin/python bench/rpc_ping.py
	$(VENV)/bin/python bench/stomp_ping.py

## fuzz: the long fuzz run: 3 passes of 10,000 hostile requests at a real daemon (test
## driver), daemon RSS printed after each pass (README.md "Hostile input")
fuzz: venv
	HVAGENT_FUZZ_EXAMPLES=10000 HVAGENT_FUZZ_PASSES=3 \
	    $(VENV)/bin/pytest -q -s -p no:cacheprovider tests/integration/test_fuzz.py

## load: 200 concurrent clients for 60 s, mixed verbs and VM churn (bench/load.py)
load: venv
	$(VENV)/bin/python bench/load.py

clean:
	rm -rf $(VENV) $(RUN_DIR) *.egg-info
