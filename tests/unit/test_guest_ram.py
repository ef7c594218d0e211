"""GuestRam's reset helpers: `restore` (RAM as a machine reset leaves it) and `differing_pages`."""

from __future__ import annotations

import pytest

from xive_machine.memory.ram import PAGE_SIZE, GuestRam


@pytest.fixture
def ram() -> GuestRam:
    return GuestRam(1 << 20)


def test_restore_is_zeroes_with_the_images_over_them(ram: GuestRam) -> None:
    ram.fill(0, ram.size, 0xAB)
    images = [(0x1800, b"\x11" * 0x900), (0x2000, b"\x22" * 0x10), (0x40010, b"\x33" * 5), (0x50000, b"")]
    ram.mark_dirty(0x9000, 1)
    ram.restore(images)
    want = bytearray(ram.size)
    for addr, data in images:  # in order: a later image overwrites an earlier one
        want[addr:addr + len(data)] = data
    assert ram.read(0, ram.size) == bytes(want)
    assert not ram.dirty_pages


def test_restore_refuses_an_image_outside_ram(ram: GuestRam) -> None:
    with pytest.raises(IndexError):
        ram.restore([(ram.size - 4, b"12345678")])


def test_differing_pages(ram: GuestRam) -> None:
    expected = bytes(3 * PAGE_SIZE)
    assert ram.differing_pages(0x4000, expected) == []
    ram.write_u8(0x5005, 1)
    ram.write_u8(0x6FFF, 2)
    ram.write_u8(0x7000, 3)  # just past the range
    assert ram.differing_pages(0x4000, expected) == [0x5000, 0x6000]
    assert ram.differing_pages(0x4000, expected[:PAGE_SIZE + 6]) == [0x5000]
