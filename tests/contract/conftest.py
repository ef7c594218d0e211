"""Fixtures of the backend contract suite (the rig itself is in xive_rig.py)."""

from __future__ import annotations

from typing import Any

import pytest
from xive_rig import BACKENDS, Rig


@pytest.fixture(params=BACKENDS)
def rig(request) -> Rig:
    g = Rig(request.param)
    yield g
    g.close()


@pytest.fixture
def make_rig():
    made: list[Rig] = []

    def make(backend: str, **kw: Any) -> Rig:
        g = Rig(backend, **kw)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()
