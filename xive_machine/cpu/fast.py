"""Loads the compiled fast path (xive_machine.cpu._fast) and hands it the Unicorn binding's own C entry points.

If the extension was not built (an install without a C compiler), the machine cannot meet its hcall budget:
we say so clearly instead of silently falling back.
"""

from __future__ import annotations

import ctypes

import unicorn.unicorn_py3.unicorn as _ucmod

from xive_machine.errors import ConfigError

try:
    from xive_machine.cpu._fast import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - depends on the install
    try:
        import os
        import subprocess
        import sys

        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, os.path.join(here, "_fast_build.py")], cwd=os.path.dirname(
            os.path.dirname(here)), check=True, capture_output=True)
        from xive_machine.cpu._fast import ffi, lib  # type: ignore[import-not-found]
    except Exception:
        raise ConfigError(
            "the vCPU fast path (xive_machine.cpu._fast) is not built: run `pip install -e .` with a C compiler"
        ) from exc

_L = _ucmod.uclib


def _addr(fn: object) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value or 0


lib.xm_init(_addr(_L.uc_reg_read_batch), _addr(_L.uc_reg_write_batch), _addr(_L.uc_reg_read),
            _addr(_L.uc_hook_add), _addr(_L.uc_mem_read))
lib.xm_init_stop(_addr(_L.uc_emu_stop))
lib.xm_init_rw(_addr(_L.uc_reg_write))
lib.xm_init_ctl(_addr(_L.uc_ctl))
lib.xm_init_guard(_addr(_L.uc_hook_del))

__all__ = ["ffi", "lib"]
