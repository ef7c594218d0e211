# xive-machine: one entry point for setting up, building the guest images, testing and benchmarking.
PYTHON ?= python3
export PYTHON

.PHONY: setup firmware guests linux-guest test test-fast bench lint clean help

help:
	@echo "make setup   install xive-machine with its dev tools, build the firmware stub and guest images"
	@echo "make linux-guest  fetch Debian's ppc64le kernel + busybox, build guest_images/build/{vmlinux,initramfs.cpio}"
	@echo "make test    build what the tests need, run the whole test suite"
	@echo "make bench   measure xive-machine beside QEMU 7.2 TCG; prints a table, writes bench/results.json"
	@echo "make lint    ruff"

setup:
	$(PYTHON) -m pip install -e '.[dev]'
	$(MAKE) firmware guests

firmware:
	$(MAKE) -s -C firmware_stubs PYTHON=$(PYTHON)

guests:
	$(MAKE) -s -C guest_images PYTHON=$(PYTHON)

linux-guest:
	$(MAKE) -s -C guest_images/linux PYTHON=$(PYTHON)

test: firmware guests
	$(PYTHON) -m pytest -n 2

test-fast: firmware guests
	$(PYTHON) -m pytest -q -m "not qemu and not slow"

bench: firmware guests linux-guest
	$(PYTHON) -m xive_machine.bench --json bench/results.json

lint:
	$(PYTHON) -m ruff check .

clean:
	$(MAKE) -s -C firmware_stubs clean
	$(MAKE) -s -C guest_images clean
