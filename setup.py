"""Only for the cffi fast path; all metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["xive_machine/cpu/_fast_build.py:ffibuilder"])
