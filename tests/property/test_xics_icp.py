"""hypothesis: the ICP CPPR/MFRR/XIRR rules.

1. A differential state machine: SpaprXics (with its resend-mask shortcut) against a naive transcription of
   QEMU 7.2's xics.c that walks every source on each resend. Same results, same state, same line changes.
2. Invariants: output == (XISR != 0); the IrqLine reports every output change and nothing else.
3. Conservation for a well-behaved guest: every MSI edge on an unmasked source is delivered exactly once,
   most favoured first, and an IPI is delivered once (MFRR is one register: IPIs do not queue).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from xive_machine.intc.xics.spapr import SpaprXics

NSRC = 4
NSERV = 2
OFF = 0x1000
LSI_SOURCES = {2, 3}


class NaiveXics:
    """QEMU 7.2 hw/intc/xics.c, transcribed as directly as possible (independent of the model under test)."""

    def __init__(self) -> None:
        self.xirr = [0] * NSERV
        self.pp = [0xFF] * NSERV
        self.mfrr = [0xFF] * NSERV
        self.out = [False] * NSERV
        self.server = [0] * NSRC
        self.prio = [0xFF] * NSRC
        self.saved = [0xFF] * NSRC
        self.status = [0] * NSRC
        self.lsi = [s in LSI_SOURCES for s in range(NSRC)]

    def reject(self, nr):
        s = nr - OFF
        if self.lsi[s]:
            self.status[s] &= ~2
        else:
            self.status[s] |= 4

    def owner(self, i):
        return OFF <= (self.xirr[i] & 0xFFFFFF) < OFF + NSRC

    def check_ipi(self, i):
        xisr = self.xirr[i] & 0xFFFFFF
        if xisr and self.pp[i] <= self.mfrr[i]:
            return
        if xisr and self.owner(i):
            self.reject(xisr)
        self.xirr[i] = (self.xirr[i] & 0xFF000000) | 2
        self.pp[i] = self.mfrr[i]
        self.out[i] = True

    def resend(self, i):
        if self.mfrr[i] < self.xirr[i] >> 24:
            self.check_ipi(i)
        for s in range(NSRC):
            if self.lsi[s]:
                self.resend_lsi(s)
            elif self.status[s] & 4:
                self.status[s] &= ~4
                if self.prio[s] != 0xFF:
                    self.icp_irq(s)

    def resend_lsi(self, s):
        if self.prio[s] != 0xFF and self.status[s] & 1 and not self.status[s] & 2:
            self.status[s] |= 2
            self.icp_irq(s)

    def icp_irq(self, s):
        i, nr, p = self.server[s], s + OFF, self.prio[s]
        xisr = self.xirr[i] & 0xFFFFFF
        if p >= self.xirr[i] >> 24 or (xisr and self.pp[i] <= p):
            self.reject(nr)
            return
        if xisr and self.owner(i):
            self.reject(xisr)
        self.xirr[i] = (self.xirr[i] & 0xFF000000) | nr
        self.pp[i] = p
        self.out[i] = True

    def set_cppr(self, i, cppr):
        old = self.xirr[i] >> 24
        self.xirr[i] = (self.xirr[i] & 0xFFFFFF) | cppr << 24
        if cppr < old:
            xisr = self.xirr[i] & 0xFFFFFF
            if xisr and cppr <= self.pp[i]:
                owned = self.owner(i)
                self.xirr[i] &= 0xFF000000
                self.pp[i] = 0xFF
                self.out[i] = False
                if owned:
                    self.reject(xisr)
        elif not self.xirr[i] & 0xFFFFFF:
            self.resend(i)

    def set_mfrr(self, i, mfrr):
        self.mfrr[i] = mfrr
        if mfrr < self.xirr[i] >> 24:
            self.check_ipi(i)

    def accept(self, i):
        x = self.xirr[i]
        self.out[i] = False
        self.xirr[i] = self.pp[i] << 24
        self.pp[i] = 0xFF
        return x

    def eoi(self, i, xirr):
        self.xirr[i] = (self.xirr[i] & 0xFFFFFF) | (xirr & 0xFF000000)
        nr = xirr & 0xFFFFFF
        if OFF <= nr < OFF + NSRC and self.lsi[nr - OFF]:
            self.status[nr - OFF] &= ~2
        if not self.xirr[i] & 0xFFFFFF:
            self.resend(i)

    def set_irq(self, s, level):
        if self.lsi[s]:
            self.status[s] = self.status[s] | 1 if level else self.status[s] & ~1
            self.resend_lsi(s)
        elif level:
            if self.prio[s] == 0xFF:
                self.status[s] |= 8
            else:
                self.icp_irq(s)

    def write_xive(self, s, server, prio, saved):
        self.server[s], self.prio[s], self.saved[s] = server, prio, saved
        if self.lsi[s]:
            self.resend_lsi(s)
        elif self.status[s] & 8 and prio != 0xFF:
            self.status[s] &= ~8
            self.icp_irq(s)


prio = st.sampled_from([0, 1, 4, 5, 6, 0xFE, 0xFF])
byte = st.one_of(prio, st.integers(0, 0xFF))
cpu = st.integers(0, NSERV - 1)
src = st.integers(0, NSRC - 1)


class XicsDifferential(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.level: dict[int, bool] = {}
        self.changes = 0
        self.model = SpaprXics(NSERV, self._line, nr_irqs=NSRC)
        for c in range(NSERV):
            self.model.connect_cpu(c)
        for s in range(NSRC):
            self.model.claim_irq(OFF + s, lsi=s in LSI_SOURCES)
        self.ref = NaiveXics()
        self.last_xirr = [0] * NSERV

    @initialize(open_cpus=st.lists(cpu, unique=True))
    def linux_setup(self, open_cpus):
        """Linux sets CPPR 0xff at CPU setup; starting there reaches delivery paths sooner."""
        for c in open_cpus:
            self.h_cppr(c, 0xFF)

    def _line(self, c: int, lv: bool) -> None:
        assert self.level.get(c, False) != lv, "IrqLine called without an output change"
        self.level[c] = lv
        self.changes += 1

    @rule(c=cpu, v=byte)
    def h_cppr(self, c, v):
        self.model.icps[c].set_cppr(v)
        self.ref.set_cppr(c, v)

    @rule(c=cpu, v=byte)
    def h_ipi(self, c, v):
        self.model.icps[c].set_mfrr(v)
        self.ref.set_mfrr(c, v)

    @rule(c=cpu)
    def h_xirr(self, c):
        got = self.model.icps[c].accept()
        assert got == self.ref.accept(c)
        self.last_xirr[c] = got

    @rule(c=cpu, use_last=st.booleans(), cppr=byte, s=src)
    def h_eoi(self, c, use_last, cppr, s):
        xirr = self.last_xirr[c] if use_last else (cppr << 24) | (OFF + s)
        self.model.icps[c].eoi(xirr)
        self.ref.eoi(c, xirr)

    @rule(c=cpu)
    def h_ipoll(self, c):
        assert self.model.icps[c].ipoll() == (self.ref.xirr[c], self.ref.mfrr[c])

    @rule(s=src, level=st.booleans())
    def set_irq(self, s, level):
        self.model.set_irq(OFF + s, level)
        self.ref.set_irq(s, level)

    @rule(s=src, server=cpu, p=prio)
    def set_xive(self, s, server, p):
        self.model.ics.write_xive(s, server, p, p)
        self.ref.write_xive(s, server, p, p)

    @rule(s=src, server=cpu, p=prio)
    def route_and_fire(self, s, server, p):
        """set-xive plus a rising edge: what a device driver's first interrupt looks like."""
        self.set_xive(s, server, p)
        self.set_irq(s, True)

    @rule(c=cpu, lower=st.booleans())
    def guest_service(self, c, lower):
        """One round of a well-behaved handler: accept, optionally drop an LSI / clear the IPI, EOI."""
        xirr = self.model.icps[c].accept()
        assert xirr == self.ref.accept(c)
        nr = xirr & 0xFFFFFF
        if lower and OFF <= nr < OFF + NSRC:
            self.set_irq(nr - OFF, False)
        if lower and nr == 2:
            self.h_ipi(c, 0xFF)
        self.model.icps[c].eoi(xirr)
        self.ref.eoi(c, xirr)

    @rule(s=src)
    def int_off(self, s):
        self.model.ics.write_xive(s, self.model.ics.server[s], 0xFF, self.model.ics.priority[s])
        self.ref.write_xive(s, self.ref.server[s], 0xFF, self.ref.prio[s])

    @rule(s=src)
    def int_on(self, s):
        ics = self.model.ics
        ics.write_xive(s, ics.server[s], ics.saved_priority[s], ics.saved_priority[s])
        self.ref.write_xive(s, self.ref.server[s], self.ref.saved[s], self.ref.saved[s])

    @precondition(lambda self: self.changes < 10_000)
    @rule()
    def migrate(self):
        state = self.model.get_state()
        self.model.set_state(state)
        assert self.model.get_state() == state

    @invariant()
    def same_state(self):
        icps, ics, ref = self.model.icps, self.model.ics, self.ref
        assert [i.xirr for i in icps] == ref.xirr
        assert [i.pending_priority for i in icps] == ref.pp
        assert [i.mfrr for i in icps] == ref.mfrr
        assert ics.server == ref.server and list(ics.priority) == ref.prio
        assert list(ics.saved_priority) == ref.saved and list(ics.status) == ref.status

    @invariant()
    def output_rules(self):
        for c, icp in enumerate(self.model.icps):
            assert icp.output == bool(icp.xirr & 0xFFFFFF) == self.ref.out[c]
            assert self.level.get(c, False) == icp.output


XicsDifferential.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestXicsDifferential = XicsDifferential.TestCase


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, NSRC - 1), st.integers(0, 0xFE), cpu),
                         min_size=1, max_size=6, unique_by=lambda t: t[0]), min_size=1, max_size=5),
       st.lists(st.tuples(cpu, st.integers(0, 0xFE)), max_size=2, unique_by=lambda t: t[0]))
def test_well_behaved_guest_receives_every_msi_once_most_favoured_first(batches, ipis):
    x = SpaprXics(NSERV, lambda c, lv: None, nr_irqs=NSRC)
    for c in range(NSERV):
        x.connect_cpu(c)
        x.icps[c].set_cppr(0xFF)
    for s in range(NSRC):
        x.claim_irq(OFF + s, lsi=False)
    for batch in batches:
        sent: dict[int, list[int]] = {c: [] for c in range(NSERV)}
        for s, p, server in batch:
            x.ics.write_xive(s, server, p, p)
            x.set_irq(OFF + s, True)
            sent[server].append(OFF + s)
        for c, mfrr in ipis:
            x.icps[c].set_mfrr(mfrr)
            sent[c].append(2)
        for c in range(NSERV):
            got, prios = [], []
            icp = x.icps[c]
            while icp.output:
                prios.append(icp.pending_priority)
                xirr = icp.accept()
                assert xirr >> 24 == 0xFF
                nr = xirr & 0xFFFFFF
                got.append(nr)
                if nr == 2:
                    icp.set_mfrr(0xFF)  # as Linux does before the EOI
                icp.eoi(xirr)
            assert sorted(got) == sorted(sent[c])
            assert prios == sorted(prios)
            assert icp.xirr == 0xFF000000
        assert x.ics.resend_mask == 0
