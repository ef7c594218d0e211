"""pytest plugin (entry point `pytest11`): fixtures over the public machine API.

`spapr_machine` is a factory of machines torn down after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def spapr_machine() -> Iterator[Any]:
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine
    from xive_machine.trace.events import ListSink

    made: list[SpaprMachine] = []

    def factory(**options: Any) -> SpaprMachine:
        options.setdefault("echo_console", False)
        trace = ListSink() if options.pop("trace", True) else None
        m = SpaprMachine(MachineConfig(**options), trace=trace)
        made.append(m)
        return m

    yield factory
    for m in made:
        m.close()
