"""Oracles the machine is compared against (QEMU 7.2 pseries)."""
