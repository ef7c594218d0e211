"""kvm/uapi.py: identifiers and attribute words against the values of the Linux uapi headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xive_machine.kvm import uapi as U


def test_identifiers_are_the_kernel_values():
    assert U.KVM_DEV_TYPE_XIVE == 9
    assert U.KVM_CAP_PPC_IRQ_XIVE == 169
    assert (
        U.KVM_DEV_XIVE_GRP_CTRL,
        U.KVM_DEV_XIVE_GRP_SOURCE,
        U.KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
        U.KVM_DEV_XIVE_GRP_EQ_CONFIG,
        U.KVM_DEV_XIVE_GRP_SOURCE_SYNC,
    ) == (1, 2, 3, 4, 5)
    assert (U.KVM_DEV_XIVE_RESET, U.KVM_DEV_XIVE_EQ_SYNC, U.KVM_DEV_XIVE_NR_SERVERS) == (1, 2, 3)
    assert (U.KVM_XIVE_ESB_PAGE_OFFSET, U.KVM_XIVE_TIMA_PAGE_OFFSET) == (4, 0)
    assert U.KVM_REG_PPC_VP_STATE == 0x104000000000008D
    assert U.kvm_reg_size(U.KVM_REG_PPC_VP_STATE) == 16 == U.KVM_REG_PPC_VP_STATE_SIZE
    assert U.KVMPPC_XIVE_NR_IRQS == 1 << 20


def test_derived_shifts_and_masks_match_the_header():
    assert (U.KVM_XIVE_LEVEL_SENSITIVE, U.KVM_XIVE_LEVEL_ASSERTED) == (1, 2)
    assert (U.KVM_XIVE_SOURCE_PRIORITY_SHIFT, U.KVM_XIVE_SOURCE_PRIORITY_MASK) == (0, 0x7)
    assert (U.KVM_XIVE_SOURCE_SERVER_SHIFT, U.KVM_XIVE_SOURCE_SERVER_MASK) == (3, 0xFFFFFFF8)
    assert (U.KVM_XIVE_SOURCE_MASKED_SHIFT, U.KVM_XIVE_SOURCE_MASKED_MASK) == (32, 0x100000000)
    assert (U.KVM_XIVE_SOURCE_EISN_SHIFT, U.KVM_XIVE_SOURCE_EISN_MASK) == (33, 0xFFFFFFFE00000000)
    assert (U.KVM_XIVE_EQ_PRIORITY_SHIFT, U.KVM_XIVE_EQ_PRIORITY_MASK) == (0, 0x7)
    assert (U.KVM_XIVE_EQ_SERVER_SHIFT, U.KVM_XIVE_EQ_SERVER_MASK) == (3, 0xFFFFFFF8)
    assert U.KVM_XIVE_EQ_ALWAYS_NOTIFY == 1


def test_struct_kvm_ppc_xive_eq_layout_little_endian():
    raw = U.xive_eq(flags=1, qshift=16, qaddr=0x0123456789ABC000, qtoggle=1, qindex=0x10)
    assert len(raw) == 64 == U.KVM_PPC_XIVE_EQ_SIZE
    assert raw[0:4] == bytes.fromhex("01000000")
    assert raw[4:8] == bytes.fromhex("10000000")
    assert raw[8:16] == bytes.fromhex("00c0ab8967452301")
    assert raw[16:24] == bytes.fromhex("0100000010000000")
    assert raw[24:] == bytes(40)
    assert U.xive_eq_decode(raw) == dict(flags=1, qshift=16, qaddr=0x0123456789ABC000, qtoggle=1, qindex=0x10)


def test_source_words_in_memory():
    w = U.KvmXiveSourceConfig.build(dict(eisn=0x1234, masked=True, server=5, priority=6))
    assert w == U.u64(U.source_config(5, 6, True, 0x1234))
    assert int.from_bytes(w, "little") == (0x1234 << 33) | (1 << 32) | (5 << 3) | 6
    assert U.KvmXiveSource.build(dict(asserted=True, level_sensitive=True)) == bytes.fromhex("0300000000000000")
    assert U.source_state(True, True) == 3 and U.source_state(False, True) == 0


@given(st.integers(0, (1 << 29) - 1), st.integers(0, 7), st.booleans(), st.integers(0, (1 << 31) - 1))
def test_source_config_shift_mask_agree_with_construct(server, prio, masked, eisn):
    word = U.source_config(server, prio, masked, eisn)
    c = U.KvmXiveSourceConfig.parse(U.u64(word))
    assert (c.server, c.priority, c.masked, c.eisn) == (server, prio, masked, eisn)
    assert U.source_config_decode(word) == (server, prio, masked, eisn)


@given(st.integers(0, (1 << 29) - 1), st.integers(0, 7))
def test_eq_id_round_trip(server, prio):
    a = U.eq_id(server, prio)
    assert U.eq_id_decode(a) == (server, prio)
    c = U.KvmXiveEqId.parse(U.u64(a))
    assert (c.server, c.priority) == (server, prio)


def test_vp_state_word_is_tima_byte_order():
    raw = U.KvmPpcVpState.build(dict(w01=0x0006400000FF00FF, unused=0))
    assert raw[:8] == bytes.fromhex("0006400000ff00ff")  # NSR CPPR IPB LSMFB ACK# INC AGE PIPR


@pytest.mark.parametrize("value", [{"flags": 1, "qshift": 16}, U.xive_eq(1, 16)])
def test_as_eq_bytes(value):
    assert U.as_eq_bytes(value) == U.xive_eq(1, 16)


def test_xics_identifiers_are_the_kernel_values():
    assert U.KVM_DEV_TYPE_XICS == 3 and U.KVM_CAP_IRQ_XICS == 92 and U.KVM_CAP_PPC_RTAS == 91
    assert (U.KVM_DEV_XICS_GRP_SOURCES, U.KVM_DEV_XICS_GRP_CTRL, U.KVM_DEV_XICS_NR_SERVERS) == (1, 2, 1)
    assert U.KVM_REG_PPC_ICP_STATE == 0x103000000000008C and U.kvm_reg_size(U.KVM_REG_PPC_ICP_STATE) == 8
    assert (U.KVMPPC_XICS_FIRST_IRQ, U.KVMPPC_XICS_NR_IRQS, U.XICS_IPI) == (16, 1 << 20, 2)
    assert (U.KVM_INTERRUPT_SET, U.KVM_INTERRUPT_UNSET, U.KVM_INTERRUPT_SET_LEVEL) == (
        0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD)


def test_xics_shifts_and_masks_match_the_header():
    """The header writes these masks unshifted: value = (word >> SHIFT) & MASK."""
    assert (U.KVM_XICS_DESTINATION_SHIFT, U.KVM_XICS_DESTINATION_MASK) == (0, 0xFFFFFFFF)
    assert (U.KVM_XICS_PRIORITY_SHIFT, U.KVM_XICS_PRIORITY_MASK) == (32, 0xFF)
    assert (U.KVM_XICS_LEVEL_SENSITIVE, U.KVM_XICS_MASKED, U.KVM_XICS_PENDING, U.KVM_XICS_PRESENTED,
            U.KVM_XICS_QUEUED) == (1 << 40, 1 << 41, 1 << 42, 1 << 43, 1 << 44)
    assert (U.KVM_REG_PPC_ICP_CPPR_SHIFT, U.KVM_REG_PPC_ICP_CPPR_MASK) == (56, 0xFF)
    assert (U.KVM_REG_PPC_ICP_XISR_SHIFT, U.KVM_REG_PPC_ICP_XISR_MASK) == (32, 0xFFFFFF)
    assert (U.KVM_REG_PPC_ICP_MFRR_SHIFT, U.KVM_REG_PPC_ICP_MFRR_MASK) == (24, 0xFF)
    assert (U.KVM_REG_PPC_ICP_PPRI_SHIFT, U.KVM_REG_PPC_ICP_PPRI_MASK) == (16, 0xFF)


def test_xics_words_in_memory():
    w = U.xics_source(0x1234, 5, masked=True, lsi=True, pending=True)
    assert w == 0x0000_0705_0000_1234 and U.u64(w) == bytes.fromhex("3412000005070000")
    assert U.KvmXicsSource.parse(U.u64(w)).destination == 0x1234
    assert U.icp_state(0xFF, 0x1100, 5, 4) == 0xFF00_1100_0504_0000
    assert U.KvmPpcIcpState.build(dict(cppr=0xFF, xisr=0x1100, mfrr=5, ppri=4)) == U.u64(0xFF00_1100_0504_0000)


@given(st.integers(0, (1 << 32) - 1), st.integers(0, 0xFF), st.booleans(), st.booleans(), st.booleans(),
       st.booleans(), st.booleans())
def test_xics_source_shift_mask_agree_with_construct(server, prio, masked, lsi, pending, presented, queued):
    word = U.xics_source(server, prio, masked=masked, lsi=lsi, pending=pending, presented=presented, queued=queued)
    c = U.KvmXicsSource.parse(U.u64(word))
    assert (c.destination, c.priority, c.masked, c.level_sensitive, c.pending, c.presented, c.queued) == (
        server, prio, masked, lsi, pending, presented, queued)
    assert U.xics_source_decode(word) == dict(server=server, priority=prio, masked=masked, lsi=lsi,
                                              pending=pending, presented=presented, queued=queued)


@given(st.integers(0, 0xFF), st.integers(0, 0xFFFFFF), st.integers(0, 0xFF), st.integers(0, 0xFF))
def test_icp_state_round_trip(cppr, xisr, mfrr, ppri):
    word = U.icp_state(cppr, xisr, mfrr, ppri)
    c = U.KvmPpcIcpState.parse(U.u64(word))
    assert (c.cppr, c.xisr, c.mfrr, c.ppri) == U.icp_state_decode(word) == (cppr, xisr, mfrr, ppri)
