"""What every guest image prints, captured from QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18) and checked by hand
against the documents: the reference both QEMU (test_images_qemu.py) and xive-machine (test_conformance.py)
must reproduce byte for byte. Images print only deterministic text, so no normalisation is needed.
"""

from __future__ import annotations

from typing import Any

from xive_machine.machine.config import MachineConfig


class SAME_AS(str):  # noqa: N801 - reads as a marker in the table below
    """The expected console is the one of another case (the same image under other options)."""


# case id -> (image, run_qemu keyword arguments, expected console)
EXPECTED: dict[str, tuple[str, dict, str]] = {
    "hello": (
        "hello",
        {},
        "hello from xive-machine\n"
        "endian BE\n"
        "r3=0x0 r4=0x0\n"
        "msr=0x8000000000000000\n"
        'bootargs ""\n'
        "rtas power-off token 0x2003\n"
        "H_SET_SPRG0 rc=0 sprg0=0x1234\n"
        "hcall 0x1000 rc=-2\n"
        "H_PUT_TERM_CHAR len 17 rc=-4\n"
        "PASS\n",
    ),
    "hello-bootargs": (
        "hello",
        {"append": "console=hvc0 n=42"},
        "hello from xive-machine\n"
        "endian BE\n"
        "r3=0x0 r4=0x0\n"
        "msr=0x8000000000000000\n"
        'bootargs "console=hvc0 n=42"\n'
        "rtas power-off token 0x2003\n"
        "H_SET_SPRG0 rc=0 sprg0=0x1234\n"
        "hcall 0x1000 rc=-2\n"
        "H_PUT_TERM_CHAR len 17 rc=-4\n"
        "PASS\n",
    ),
    "hello-le": (
        "hello-le",
        {},
        "hello from xive-machine\n"
        "endian LE\n"
        "r3=0x0 r4=0x0\n"
        "msr=0x8000000000000001\n"
        'bootargs ""\n'
        "rtas power-off token 0x2003\n"
        "H_SET_SPRG0 rc=0 sprg0=0x1234\n"
        "hcall 0x1000 rc=-2\n"
        "H_PUT_TERM_CHAR len 17 rc=-4\n"
        "PASS\n",
    ),
    "cas-dual-xive": (
        "cas",
        {},
        "cas: requesting XIVE (OV5 byte 23 = 0x40)\n"
        "platform-support: 17 80 18 c0 19 00 1a 40\n"
        "-- before CAS\n"
        "ibm,architecture-vec-5: 00 00\n"
        'intc compatible: "IBM,ppc-xicp"\n'
        'intc device_type: "PowerPC-External-Interrupt-Presentation"\n'
        "cpu-version: 00 4e 12 00\n"
        "call-method catch=0 status=0\n"
        "-- after CAS\n"
        "ibm,architecture-vec-5: 19 00 20 00 00 80 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80 40 40 00 40\n"
        'intc compatible: "ibm,power-ivpe"\n'
        'intc device_type: "power-ivpe"\n'
        "cpu-version: 0f 00 00 05\n"
        "PASS\n",
    ),
    "cas-dual-xics": (
        "cas",
        {"append": "mode=xics"},
        "cas: requesting XICS (OV5 byte 23 = 0x00)\n"
        "platform-support: 17 80 18 c0 19 00 1a 40\n"
        "-- before CAS\n"
        "ibm,architecture-vec-5: 00 00\n"
        'intc compatible: "IBM,ppc-xicp"\n'
        'intc device_type: "PowerPC-External-Interrupt-Presentation"\n'
        "cpu-version: 00 4e 12 00\n"
        "call-method catch=0 status=0\n"
        "-- after CAS\n"
        "ibm,architecture-vec-5: 19 00 20 00 00 80 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80 00 40 00 40\n"
        'intc compatible: "IBM,ppc-xicp"\n'
        'intc device_type: "PowerPC-External-Interrupt-Presentation"\n'
        "cpu-version: 0f 00 00 05\n"
        "PASS\n",
    ),
    "cas-xive-xive": (
        "cas",
        {"ic_mode": "xive"},
        "cas: requesting XIVE (OV5 byte 23 = 0x40)\n"
        "platform-support: 17 40 18 c0 19 00 1a 40\n"
        "-- before CAS\n"
        "ibm,architecture-vec-5: 00 00\n"
        'intc compatible: "ibm,power-ivpe"\n'
        'intc device_type: "power-ivpe"\n'
        "cpu-version: 00 4e 12 00\n"
        "call-method catch=0 status=0\n"
        "-- after CAS\n"
        "ibm,architecture-vec-5: 19 00 20 00 00 80 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80 40 40 00 40\n"
        'intc compatible: "ibm,power-ivpe"\n'
        'intc device_type: "power-ivpe"\n'
        "cpu-version: 0f 00 00 05\n"
        "PASS\n",
    ),
    "cas-xics-xics": (
        "cas",
        {"ic_mode": "xics", "append": "mode=xics"},
        "cas: requesting XICS (OV5 byte 23 = 0x00)\n"
        "platform-support: 17 00 18 c0 19 00 1a 40\n"
        "-- before CAS\n"
        "ibm,architecture-vec-5: 00 00\n"
        'intc compatible: "IBM,ppc-xicp"\n'
        'intc device_type: "PowerPC-External-Interrupt-Presentation"\n'
        "cpu-version: 00 4e 12 00\n"
        "call-method catch=0 status=0\n"
        "-- after CAS\n"
        "ibm,architecture-vec-5: 19 00 20 00 00 80 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80 00 40 00 40\n"
        'intc compatible: "IBM,ppc-xicp"\n'
        'intc device_type: "PowerPC-External-Interrupt-Presentation"\n'
        "cpu-version: 0f 00 00 05\n"
        "PASS\n",
    ),
    "exceptions": (
        "exceptions",
        {},
        "exceptions (BE)\n"
        "illegal  vec=0x700 srr0=insn+0 srr1.reason=0x00080000 srr1=0x8000000000080000 handler-msr=0x8000000000000000\n"
        "trap     vec=0x700 srr0=insn+0 srr1.reason=0x00020000 srr1=0x8000000000020000 handler-msr=0x8000000000000000\n"
        "priv     vec=0x700 srr0=insn+0 srr1.reason=0x00040000 srr1=0x8000000000040000 handler-msr=0x8000000000000000\n"
        "priv     r3 after=0xdead\n"
        "sc0      vec=0xc00 srr0=insn+4 srr1.reason=0x00000000 srr1=0x8000000000000000 handler-msr=0x8000000000000000\n"
        "sc0      r3 at sc=0x77\n"
        "lwarx    vec=0x600 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000000 handler-msr=0x8000000000000000\n"
        "lwarx    dar=buf+2\n"
        "fp       vec=0x800 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000000 handler-msr=0x8000000000000000\n"
        "vmx      vec=0xf20 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000000 handler-msr=0x8000000000000000\n"
        "vsx      vec=0xf40 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000000 handler-msr=0x8000000000000000\n"
        "interrupts taken: 8\n"
        "PASS\n",
    ),
    "exceptions-le": (
        "exceptions-le",
        {},
        "exceptions (LE)\n"
        "illegal  vec=0x700 srr0=insn+0 srr1.reason=0x00080000 srr1=0x8000000000080001 handler-msr=0x8000000000000001\n"
        "trap     vec=0x700 srr0=insn+0 srr1.reason=0x00020000 srr1=0x8000000000020001 handler-msr=0x8000000000000001\n"
        "priv     vec=0x700 srr0=insn+0 srr1.reason=0x00040000 srr1=0x8000000000040001 handler-msr=0x8000000000000001\n"
        "priv     r3 after=0xdead\n"
        "sc0      vec=0xc00 srr0=insn+4 srr1.reason=0x00000000 srr1=0x8000000000000001 handler-msr=0x8000000000000001\n"
        "sc0      r3 at sc=0x77\n"
        "lwarx    vec=0x600 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000001 handler-msr=0x8000000000000001\n"
        "lwarx    dar=buf+2\n"
        "lmw-le   vec=0x600 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000001 handler-msr=0x8000000000000001\n"
        "fp       vec=0x800 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000001 handler-msr=0x8000000000000001\n"
        "vmx      vec=0xf20 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000001 handler-msr=0x8000000000000001\n"
        "vsx      vec=0xf40 srr0=insn+0 srr1.reason=0x00000000 srr1=0x8000000000000001 handler-msr=0x8000000000000001\n"
        "interrupts taken: 9\n"
        "PASS\n",
    ),
    "timer": (
        "timer",
        {},
        "timer: timebase-frequency 512000000, ibm,dec-bits 56\n"
        "timebase advances                            ok\n"
        "decrementer counts down                      ok\n"
        "decrementer interrupts: 20\n"
        "elapsed >= 90% of N periods                  ok\n"
        "elapsed < 100x N periods                     ok\n"
        "H_CEDE sleeps: 5\n"
        "H_CEDE returns H_SUCCESS                     ok\n"
        "each H_CEDE woken by one decrementer tick    ok\n"
        "each H_CEDE lasts >= 90% of the period       ok\n"
        "H_CEDE leaves MSR[EE] set                    ok\n"
        "PASS\n",
    ),
    "xive-ipi": (
        "xive-ipi",
        {},
        "xive-ipi\n"
        "CAS xive: catch=0 status=0\n"
        'intc compatible: "ibm,power-ivpe"\n'
        "ibm,xive-lisn-ranges: 00 00 00 00 00 00 00 01\n"
        "ibm,xive-eq-sizes: 00 00 00 10\n"
        "ibm,plat-res-int-priorities: 00 00 00 07 00 00 00 f8\n"
        "TIMA OS page 0x60302031a0000\n"
        "OS priority 6\n"
        "H_INT_GET_QUEUE_INFO rc=0 esn=0x60100400c0000 size=0\n"
        "H_INT_SET_QUEUE_CONFIG rc=0\n"
        "H_INT_GET_QUEUE_CONFIG rc=0 flags=0x1 qpage=ours qshift=16\n"
        "H_INT_GET_QUEUE_INFO rc=0 esn=0x60100400c0000 size=16\n"
        "H_INT_GET_SOURCE_INFO rc=0 flags=0x0 eoi=0x6010000010000 trig=0x6010000000000 shift=16\n"
        "H_INT_SET_SOURCE_CONFIG rc=0\n"
        "H_INT_GET_SOURCE_CONFIG rc=0 target=0x0 prio=6 eisn=0x1234\n"
        "TIMA QW1 word0 before CPPR 0x000000ffff0000ff\n"
        "TIMA QW1 word0 after CPPR  0x00ff00ffff0000ff\n"
        "ESB PQ (get) 1\n"
        "ESB unmask (set PQ=00) old PQ 1\n"
        "polled: PQ after trigger 2\n"
        "polled: TIMA QW1 word0 0x80ff02ffff000006\n"
        "polled: ack 0x8006\n"
        "polled: TIMA QW1 word0 after ack 0x000600ffff0000ff\n"
        "polled: queue entry eisn 0x1234\n"
        "polled: queue empty after pop yes\n"
        "polled: EOI load returns 0\n"
        "polled: PQ after EOI 0\n"
        "polled: TIMA QW1 word0 after CPPR 0x00ff00ffff0000ff\n"
        "ipis received 1000, spurious 0, bad eisn 0, queue entries 1001\n"
        "final PQ 0, TIMA QW1 word0 0x00ff00ffff0000ff\n"
        "mask (set PQ=01) old PQ 0\n"
        "H_INT_SET_SOURCE_CONFIG prio 0xff rc=0\n"
        "H_INT_SET_QUEUE_CONFIG qshift 0 rc=0\n"
        "H_INT_GET_QUEUE_CONFIG rc=0 flags=0x0 qpage=0x0 qshift=0\n"
        "H_INT_RESET rc=0\n"
        "PASS\n",
    ),
    "xive-ipi-xive": (
        "xive-ipi",
        {"ic_mode": "xive"},
        SAME_AS('xive-ipi'),
    ),
    "xics-ipi": (
        "xics-ipi",
        {},
        "xics-ipi\n"
        "CAS xics: catch=0 status=0\n"
        'intc compatible: "IBM,ppc-xicp"\n'
        "ibm,interrupt-server-ranges: 00 00 00 00 00 00 00 01\n"
        "server 0\n"
        "ibm,get-xive(0x1100) status=0 server=0 prio=0xff\n"
        "H_XIRR rc=0 xirr=0x00000000\n"
        "H_CPPR(0xff) rc=0\n"
        "H_IPI(0, 5) rc=0\n"
        "H_IPOLL rc=0 xirr=0xff000002 mfrr=0x5\n"
        "H_XIRR rc=0 xirr=0xff000002\n"
        "H_IPI(0, 0xff) rc=0\n"
        "H_EOI rc=0\n"
        "H_XIRR rc=0 xirr=0xff000000\n"
        "H_IPI(99, 0xff) rc=-4\n"
        "ipis received 1000, spurious 0, other sources 0\n"
        "H_IPOLL rc=0 xirr=0xff000000 mfrr=0xff\n"
        "H_INT_GET_SOURCE_INFO rc=-2\n"
        "PASS\n",
    ),
    "xics-ipi-xics": (
        "xics-ipi",
        {"ic_mode": "xics"},
        SAME_AS('xics-ipi'),
    ),
    "smp-1": (
        "smp",
        {},
        "smp: 1 cpus\nquery-cpu-stopped-state(bad id) status=-3\nstart-cpu(self, running) status=-1\nPASS\n",
    ),
    "smp-4": (
        "smp",
        {"smp": 4},
        "smp: 4 cpus\n"
        "cpu 1: query-cpu-stopped-state status=0 state=0\n"
        "cpu 1 up: server 1 this_cpu 1 msr 0x8000000000001000\n"
        "cpu 1: stopped again (state 0)\n"
        "cpu 2: query-cpu-stopped-state status=0 state=0\n"
        "cpu 2 up: server 2 this_cpu 2 msr 0x8000000000001000\n"
        "cpu 2: stopped again (state 0)\n"
        "cpu 3: query-cpu-stopped-state status=0 state=0\n"
        "cpu 3 up: server 3 this_cpu 3 msr 0x8000000000001000\n"
        "cpu 3: stopped again (state 0)\n"
        "query-cpu-stopped-state(bad id) status=-3\n"
        "start-cpu(self, running) status=-1\n"
        "PASS\n",
    ),
    "xics-ipi-smp-2": (
        "xics-ipi-smp",
        {"smp": 2},
        "xics-ipi-smp\n"
        "cpus 2\n"
        "CAS xics: catch=0 status=0\n"
        "cpu 1 (server 1): ipis 100, other interrupts 0, stopped yes\n"
        "PASS\n",
    ),
    "xics-ipi-smp-4": (
        "xics-ipi-smp",
        {"smp": 4},
        "xics-ipi-smp\n"
        "cpus 4\n"
        "CAS xics: catch=0 status=0\n"
        "cpu 1 (server 1): ipis 100, other interrupts 0, stopped yes\n"
        "cpu 2 (server 2): ipis 100, other interrupts 0, stopped yes\n"
        "cpu 3 (server 3): ipis 100, other interrupts 0, stopped yes\n"
        "PASS\n",
    ),
    "xive-ipi-smp-2": (
        "xive-ipi-smp",
        {"smp": 2},
        "xive-ipi-smp\n"
        "cpus 2\n"
        "CAS xive: catch=0 status=0\n"
        "ibm,xive-lisn-ranges: 00 00 00 00 00 00 00 02\n"
        "lisn 0: eoi 0x6010000010000 trig 0x6010000000000\n"
        "lisn 0: target 0 prio 6 eisn 0x100\n"
        "lisn 1: eoi 0x6010000030000 trig 0x6010000020000\n"
        "lisn 1: target 1 prio 6 eisn 0x101\n"
        "cpu 1 (server 1): ipis 100, wrong eisn 0, spurious 0, stopped yes\n"
        "H_INT_RESET rc=0\n"
        "PASS\n",
    ),
    "xive-ipi-smp-4": (
        "xive-ipi-smp",
        {"smp": 4},
        "xive-ipi-smp\n"
        "cpus 4\n"
        "CAS xive: catch=0 status=0\n"
        "ibm,xive-lisn-ranges: 00 00 00 00 00 00 00 04\n"
        "lisn 0: eoi 0x6010000010000 trig 0x6010000000000\n"
        "lisn 0: target 0 prio 6 eisn 0x100\n"
        "lisn 1: eoi 0x6010000030000 trig 0x6010000020000\n"
        "lisn 1: target 1 prio 6 eisn 0x101\n"
        "lisn 2: eoi 0x6010000050000 trig 0x6010000040000\n"
        "lisn 2: target 2 prio 6 eisn 0x102\n"
        "lisn 3: eoi 0x6010000070000 trig 0x6010000060000\n"
        "lisn 3: target 3 prio 6 eisn 0x103\n"
        "cpu 1 (server 1): ipis 100, wrong eisn 0, spurious 0, stopped yes\n"
        "cpu 2 (server 2): ipis 100, wrong eisn 0, spurious 0, stopped yes\n"
        "cpu 3 (server 3): ipis 100, wrong eisn 0, spurious 0, stopped yes\n"
        "H_INT_RESET rc=0\n"
        "PASS\n",
    ),
    "xive-ipi-smp-4-xive": (
        "xive-ipi-smp",
        {"smp": 4, "ic_mode": "xive"},
        SAME_AS('xive-ipi-smp-4'),
    ),
    "cas-le": (
        "cas-le",
        {},
        SAME_AS('cas-dual-xive'),
    ),
    "timer-le": (
        "timer-le",
        {},
        SAME_AS('timer'),
    ),
    "xive-ipi-le": (
        "xive-ipi-le",
        {},
        SAME_AS('xive-ipi'),
    ),
    "xics-ipi-le": (
        "xics-ipi-le",
        {},
        SAME_AS('xics-ipi'),
    ),
    "smp-le-4": (
        "smp-le",
        {"smp": 4},
        "smp: 4 cpus\n"
        "cpu 1: query-cpu-stopped-state status=0 state=0\n"
        "cpu 1 up: server 1 this_cpu 1 msr 0x8000000000001001\n"
        "cpu 1: stopped again (state 0)\n"
        "cpu 2: query-cpu-stopped-state status=0 state=0\n"
        "cpu 2 up: server 2 this_cpu 2 msr 0x8000000000001001\n"
        "cpu 2: stopped again (state 0)\n"
        "cpu 3: query-cpu-stopped-state status=0 state=0\n"
        "cpu 3 up: server 3 this_cpu 3 msr 0x8000000000001001\n"
        "cpu 3: stopped again (state 0)\n"
        "query-cpu-stopped-state(bad id) status=-3\n"
        "start-cpu(self, running) status=-1\n"
        "PASS\n",
    ),
    "xive-ipi-smp-le-4": (
        "xive-ipi-smp-le",
        {"smp": 4},
        SAME_AS('xive-ipi-smp-4'),
    ),
    "xive-esb": (
        "xive-esb",
        {},
        "xive-esb\n"
        "CAS xive: catch=0 status=0\n"
        "configured             PQ=1 queue=0 tima=0x000000ffff0000ff\n"
        "trigger while off      PQ=1 queue=0 tima=0x000000ffff0000ff\n"
        "set PQ=00 returns 1\n"
        "unmasked, CPPR 0       PQ=0 queue=0 tima=0x000000ffff0000ff\n"
        "trigger, CPPR 0        PQ=2 queue=1 tima=0x000002ffff000006\n"
        "CPPR 0xff              PQ=2 queue=1 tima=0x80ff02ffff000006\n"
        "trigger while pending  PQ=3 queue=1 tima=0x80ff02ffff000006\n"
        "ack 0x8006\n"
        "acked                  PQ=3 queue=1 tima=0x000600ffff0000ff\n"
        "pop eisn 0x42\n"
        "EOI returns 1\n"
        "EOI with Q set         PQ=2 queue=1 tima=0x000602ffff000006\n"
        "pop eisn 0x42\n"
        "pop on empty -1\n"
        "EOI returns 0\n"
        "EOI                    PQ=0 queue=0 tima=0x000602ffff000006\n"
        "CPPR 0xff again        PQ=0 queue=0 tima=0x80ff02ffff000006\n"
        "ack 0x8006\n"
        "ack, CPPR 0xff         PQ=0 queue=0 tima=0x00ff00ffff0000ff\n"
        "set PQ=11 returns 0\n"
        "set PQ=10 returns 3\n"
        "set PQ=01 returns 2\n"
        "set PQ=00 returns 1\n"
        "trigger-page load 0xffffffffffffffff\n"
        "store to 0xe00: PQ=2\n"
        "store to StoreEOI offset: PQ=2\n"
        "store to 0xc00: PQ=0\n"
        "before wrap test       PQ=0 queue=0 tima=0x00ff00ffff0000ff\n"
        "round trips ok 16484 bad 0, consumer index 102 toggle 1\n"
        "H_INT_GET_QUEUE_CONFIG(debug) rc=0 qindex=102\n"
        "after wrap test        PQ=0 queue=0 tima=0x00ff00ffff0000ff\n"
        "PASS\n",
    ),
    "xive-esb-xive": (
        "xive-esb",
        {"ic_mode": "xive"},
        SAME_AS('xive-esb'),
    ),
    "xive-esb-le": (
        "xive-esb-le",
        {},
        SAME_AS('xive-esb'),
    ),
    "xive-errors": (
        "xive-errors",
        {},
        "xive-errors\n"
        "H_INT_GET_SOURCE_INFO before-cas rc=-2\n"
        "H_INT_SET_SOURCE_CONFIG before-cas rc=-2\n"
        "H_INT_GET_SOURCE_CONFIG before-cas rc=-2\n"
        "H_INT_GET_QUEUE_INFO before-cas rc=-2\n"
        "H_INT_SET_QUEUE_CONFIG before-cas rc=-2\n"
        "H_INT_GET_QUEUE_CONFIG before-cas rc=-2\n"
        "H_INT_SET_OS_REPORTING_LINE before-cas rc=-2\n"
        "H_INT_GET_OS_REPORTING_LINE before-cas rc=-2\n"
        "H_INT_ESB before-cas rc=-2\n"
        "H_INT_SYNC before-cas rc=-2\n"
        "H_INT_RESET before-cas rc=-2\n"
        "CAS xive: catch=0 status=0\n"
        "H_INT_GET_SOURCE_INFO flags=1 rc=-4\n"
        "H_INT_GET_SOURCE_INFO lisn=nr_irqs rc=-55\n"
        "H_INT_GET_SOURCE_INFO lisn=1-unclaimed rc=-55\n"
        "H_INT_GET_SOURCE_INFO lisn=0 rc=0\n"
        "H_INT_SET_SOURCE_CONFIG flags=4 rc=-4\n"
        "H_INT_SET_SOURCE_CONFIG lisn=nr_irqs rc=-55\n"
        "H_INT_SET_SOURCE_CONFIG prio=7-reserved rc=-57\n"
        "H_INT_SET_SOURCE_CONFIG target=99 rc=-56\n"
        "H_INT_SET_SOURCE_CONFIG prio=0xff-mask rc=0\n"
        "H_INT_GET_SOURCE_CONFIG flags=1 rc=-4\n"
        "H_INT_GET_SOURCE_CONFIG lisn=nr_irqs rc=-55\n"
        "H_INT_GET_SOURCE_CONFIG lisn=0-masked rc=0\n"
        "  target=0xfffffc00 prio=0xff eisn=0x0\n"
        "H_INT_GET_QUEUE_INFO flags=1 rc=-4\n"
        "H_INT_GET_QUEUE_INFO prio=7-reserved rc=-56\n"
        "H_INT_GET_QUEUE_INFO target=99 rc=-55\n"
        "H_INT_SET_QUEUE_CONFIG flags=2 rc=-4\n"
        "H_INT_SET_QUEUE_CONFIG prio=7-reserved rc=-56\n"
        "H_INT_SET_QUEUE_CONFIG target=99 rc=-55\n"
        "H_INT_SET_QUEUE_CONFIG qpage-misaligned rc=-57\n"
        "H_INT_SET_QUEUE_CONFIG qpage-outside-ram rc=-57\n"
        "H_INT_SET_QUEUE_CONFIG qshift=13 rc=-58\n"
        "H_INT_SET_QUEUE_CONFIG ok rc=0\n"
        "H_INT_GET_QUEUE_CONFIG flags=2 rc=-4\n"
        "H_INT_GET_QUEUE_CONFIG prio=7-reserved rc=-56\n"
        "H_INT_GET_QUEUE_CONFIG target=99 rc=-55\n"
        "H_INT_GET_QUEUE_CONFIG debug rc=0\n"
        "  notify=1 qshift=16 qindex=0\n"
        "H_INT_SET_OS_REPORTING_LINE unimplemented rc=-2\n"
        "H_INT_GET_OS_REPORTING_LINE unimplemented rc=-2\n"
        "H_INT_ESB flags=2 rc=-4\n"
        "H_INT_ESB lisn=nr_irqs rc=-55\n"
        "H_INT_ESB offset=0x20001 rc=-56\n"
        "H_INT_SYNC flags=1 rc=-4\n"
        "H_INT_SYNC lisn=nr_irqs rc=-55\n"
        "H_INT_SYNC lisn=0 rc=0\n"
        "H_INT_RESET flags=1 rc=-4\n"
        "H_INT_RESET ok rc=0\n"
        "H_XIRR xive-active rc=-1\n"
        "H_CPPR xive-active rc=-1\n"
        "H_IPI xive-active rc=-1\n"
        "H_EOI xive-active rc=-1\n"
        "PASS\n",
    ),
    "hcall-loop": (
        "hcall-loop",
        {"append": "n=1000"},
        "done 1000\n",
    ),
    "spin": (
        "spin",
        {"append": "n=1000"},
        "done 1000 2000\n",
    ),
}

for _case, (_image, _options, _out) in EXPECTED.items():  # another case's console, for the SAME_AS rows
    if isinstance(_out, SAME_AS):
        EXPECTED[_case] = (_image, _options, EXPECTED[str(_out)][2])


def machine_config(kwargs: dict, **extra: Any) -> MachineConfig:
    """Our machine for a case's run_qemu keyword arguments (the same defaults QEMU's runner uses), quiet."""
    return MachineConfig(smp=kwargs.get("smp", 1), memory=kwargs.get("memory", "512M"),
                         ic_mode=kwargs.get("ic_mode", "dual"), append=kwargs.get("append", "") or "",
                         echo_console=False, **extra)
