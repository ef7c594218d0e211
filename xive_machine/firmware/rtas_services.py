"""The core RTAS services of QEMU 7.2's pseries machine: console, time of day, power, CPU start/stop, system
parameters, event scan, os-term, power levels, FWNMI registration and suspend.

Status codes and the order of the checks follow QEMU 7.2 hw/ppc/spapr_rtas.c, spapr_rtc.c and spapr_events.c,
confirmed where noted by running qemu-system-ppc64 7.2.22 (`-M pseries,x-vof=on -cpu POWER9`, TCG). A service
returns the rets it produces (rets[0] = status); the dispatcher writes at most `nret` of them. QEMU reads
argument cells even past `nargs` for the services that do not check the counts; here such missing arguments
read as 0.

The services use only this part of the machine `m`: `nr_cpus`, `memory_size`, `ram`, `vcpus[i].msr`,
`cpus[i].state`, `console.write(bytes)`, `rtc_offset_s`, `power_off()`, `reboot()`, `cpu_stopped(id)`,
`start_cpu(id, pc, r3)`, `stop_self(cpu)`, `uuid`, `os_term(message)`, `vof` (None, or an object whose
`rtas_base` is the guest's `linux,rtas-base` or None), `fwnmi` (None, or the registered (system-reset,
machine-check) addresses; set here, read with a default of None, reset to None by the machine) and
`stop(reason, exit_code, message)`.
"""

from __future__ import annotations

import time
from typing import Any

from xive_machine.cpu.regs import MSR_EE
from xive_machine.firmware.rtas import RtasStatus, RtasTable
from xive_machine.hcalls.codes import H
from xive_machine.hcalls.papr import find_cpu, phys_read, phys_write

RTAS_CORE = RtasTable("core")

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
MiB = 1 << 20
NS_PER_S = 1_000_000_000
RUNNING = "running"

# ibm,get-system-parameter / ibm,set-system-parameter
RTAS_SYSPARM_SPLPAR_CHARACTERISTICS = 20
RTAS_SYSPARM_DIAGNOSTICS_RUN_MODE = 42
RTAS_SYSPARM_UUID = 48
DIAGNOSTICS_RUN_MODE_DISABLED = 0
HOST_THREADS_PER_CORE = 4  # QEMU 7.2 TCG POWER9 appends ",HostThrs=4" (measured)

OS_TERM_MAX = 511  # QEMU reads 512 bytes and forces the last to NUL
RTAS_QCSS_STOPPED = 0
RTAS_QCSS_RUNNING = 2
POWER_LEVEL_FULL = 100


def host_utc_ns() -> int:
    """The host's UTC time in ns (QEMU's rtc clock follows the host). Tests replace it."""
    return time.time_ns()


DETERMINISTIC_EPOCH_NS = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z


def rtc_ns(m: Any) -> int:
    """The wall clock the guest sees: the host's with `--clock host` (as QEMU), and with the deterministic
    clock a fixed epoch plus the machine's virtual time, so that runs (and their traces) repeat exactly."""
    config = getattr(m, "config", None)
    if config is not None and getattr(config, "clock", "host") == "deterministic":
        return DETERMINISTIC_EPOCH_NS + m.clock.ns()
    return host_utc_ns()


def _arg(args: list[int], i: int) -> int:
    return args[i] if i < len(args) else 0


def _s32(value: int) -> int:
    value &= MASK32
    return value - (1 << 32) if value >> 31 else value


def _s64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def mktimegm(year: int, mon: int, mday: int, hour: int, minute: int, sec: int) -> int:
    """QEMU's mktimegm (util/cutils.c) on the u32 cells of set-time-of-day, with its C arithmetic: the cells
    land in `struct tm` ints, the day count is 32-bit int arithmetic that wraps, it is multiplied by 86400ULL
    and the hours/minutes/seconds are added in int. No field is range-checked, so 13/45 is a valid month/day."""
    y = _s32(_s32(year - 1900) + 1900)
    m = _s32(_s32(mon - 1) + 1)
    d = _s32(mday)
    if m < 3:
        m = _s32(m + 12)
        y = _s32(y - 1)
    days = _s32(d + _c_div(_s32(_s32(153 * m) - 457), 5))
    days = _s32(days + _s32(365 * y))
    days = _s32(days + _c_div(y, 4))
    days = _s32(days - _c_div(y, 100))
    days = _s32(days + _c_div(y, 400))
    days = _s32(days - 719469)
    t = _s64(86400 * (days & MASK64))
    hms = _s32(_s32(_s32(3600 * _s32(hour)) + _s32(60 * _s32(minute))) + _s32(sec))
    return _s64(t + hms)


def gmtime(seconds: int) -> tuple[int, int, int, int, int, int]:
    """(year, month 1-12, day, hour, minute, second) of a Unix time, any sign (proleptic Gregorian)."""
    days, rem = divmod(seconds, 86400)
    z = days + 719468  # days since 0000-03-01
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day, rem // 3600, rem // 60 % 60, rem % 60


# ------------------------------------------------------------------------------------------------------------
@RTAS_CORE.rtas("display-character")
def rtas_display_character(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: char. Rets: status. The low byte goes to the console (QEMU rtas_display_character; the counts
    are not checked, and the machine always has its vty so the status is 0)."""
    m.console.write(bytes([_arg(args, 0) & 0xFF]))
    return [RtasStatus.SUCCESS]


@RTAS_CORE.rtas("get-time-of-day")
def rtas_get_time_of_day(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: none. Rets: status, year, month, day, hour, minute, second, nanoseconds.

    QEMU rtas_get_time_of_day: nargs != 0 or nret != 8 -> -3. The time is the host's UTC time plus the offset
    set-time-of-day left (m.rtc_offset_s), in int64 nanoseconds that wrap as QEMU's do. QEMU's last cell is
    the low 32 bits of that whole nanosecond count, not the nanoseconds within the second (measured): copied.
    """
    if len(args) != 0 or nret != 8:
        return [RtasStatus.PARAMETER_ERROR]
    guest_ns = _s64(rtc_ns(m) + m.rtc_offset_s * NS_PER_S)
    year, month, day, hour, minute, sec = gmtime(_c_div(guest_ns, NS_PER_S))
    return [RtasStatus.SUCCESS, year & MASK32, month, day, hour, minute, sec, guest_ns & MASK32]


@RTAS_CORE.rtas("set-time-of-day")
def rtas_set_time_of_day(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: year, month, day, hour, minute, second, nanoseconds (ignored). Rets: status.

    QEMU rtas_set_time_of_day: nargs != 7 or nret != 1 -> -3; the date is converted by mktimegm without any
    range check, and only a result of exactly -1 (1969-12-31 23:59:59) is refused with -3 (measured: month
    13, day 45, 99:99:99 is accepted and rolls over). The RTC offset becomes that time minus the host's.
    """
    if len(args) != 7 or nret != 1:
        return [RtasStatus.PARAMETER_ERROR]
    new_s = mktimegm(*args[:6])
    if new_s == -1:
        return [RtasStatus.PARAMETER_ERROR]
    m.rtc_offset_s = new_s - rtc_ns(m) // NS_PER_S
    return [RtasStatus.SUCCESS]


@RTAS_CORE.rtas("power-off")
def rtas_power_off(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: power-on mask high, low. Rets: status. nargs != 2 or nret != 1 -> -3; else the machine powers
    off (QEMU rtas_power_off)."""
    if len(args) != 2 or nret != 1:
        return [RtasStatus.PARAMETER_ERROR]
    m.power_off()
    return [RtasStatus.SUCCESS]


@RTAS_CORE.rtas("system-reboot")
def rtas_system_reboot(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: none. Rets: status. nargs != 0 or nret != 1 -> -3; else a machine reset is requested (QEMU
    rtas_system_reboot)."""
    if len(args) != 0 or nret != 1:
        return [RtasStatus.PARAMETER_ERROR]
    m.reboot()
    return [RtasStatus.SUCCESS]


@RTAS_CORE.rtas("query-cpu-stopped-state")
def rtas_query_cpu_stopped_state(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: cpu id. Rets: status, state (0 stopped, 2 running; 1 "stop in progress" is never reported).

    QEMU rtas_query_cpu_stopped_state: nargs != 1 or nret != 2 -> -3; unknown cpu -> -3.
    """
    if len(args) != 1 or nret != 2:
        return [RtasStatus.PARAMETER_ERROR]
    target = find_cpu(m, args[0])
    if target is None:
        return [RtasStatus.PARAMETER_ERROR]
    return [RtasStatus.SUCCESS, RTAS_QCSS_STOPPED if m.cpu_stopped(target) else RTAS_QCSS_RUNNING]


@RTAS_CORE.rtas("start-cpu")
def rtas_start_cpu(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: cpu id, start address, r3 value. Rets: status.

    QEMU rtas_start_cpu order: nargs != 3 or nret != 1 -> -3; unknown cpu -> -3; target not stopped -> -1
    (measured on the running boot cpu). The machine then starts it (nip, r3, MSR = SF|ME, r1 = r4 = 0).
    """
    if len(args) != 3 or nret != 1:
        return [RtasStatus.PARAMETER_ERROR]
    target = find_cpu(m, args[0])
    if target is None:
        return [RtasStatus.PARAMETER_ERROR]
    if not m.cpu_stopped(target):
        return [RtasStatus.HARDWARE_ERROR]
    m.start_cpu(target, args[1], args[2])
    return [RtasStatus.SUCCESS]


@RTAS_CORE.rtas("stop-self")
def rtas_stop_self(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: none. Rets: none. The caller stops and does not return (QEMU rtas_stop_self writes no status and
    checks no counts)."""
    m.stop_self(cpu)
    return []


@RTAS_CORE.rtas("ibm,suspend-me")
def rtas_ibm_suspend_me(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: none. Rets: status.

    QEMU rtas_ibm_suspend_me: nargs != 0 or nret != 1 -> -3; any other vCPU running or with MSR[EE] set ->
    H_MULTI_THREADS_ACTIVE (-9005) as the status; else QEMU suspends the VM (measured: it stops running until
    woken from the monitor). This machine has no wake-up, so it ends the run with reason "suspend".
    """
    if len(args) != 0 or nret != 1:
        return [RtasStatus.PARAMETER_ERROR]
    for other in range(m.nr_cpus):
        if other != cpu and (m.cpus[other].state == RUNNING or m.vcpus[other].msr & MSR_EE):
            return [H.MULTI_THREADS_ACTIVE]
    m.stop("suspend", 0, "the guest suspended itself (ibm,suspend-me)")
    return [RtasStatus.SUCCESS]


def _sysparm_st(m: Any, buffer: int, length: int, value: bytes) -> int:
    """QEMU sysparm_st: length < 2 -> -9999; else u16 BE full value length, then as much as fits."""
    if length < 2:
        return RtasStatus.SYSPARM_PARAM_ERROR
    room = min(length - 2, len(value))
    phys_write(m.ram, buffer, len(value).to_bytes(2, "big") + value[:room])
    return RtasStatus.SUCCESS


def splpar_characteristics(m: Any) -> bytes:
    """The parameter 20 string with its NUL, as QEMU 7.2 formats it (max_cpus = cpus here; memory in MiB)."""
    n = m.nr_cpus
    text = (f"MaxEntCap={n},DesMem={m.memory_size // MiB},DesProcs={n},MaxPlatProcs={n},"
            f"HostThrs={HOST_THREADS_PER_CORE}")
    return text.encode() + b"\0"


@RTAS_CORE.rtas("ibm,get-system-parameter")
def rtas_ibm_get_system_parameter(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: parameter, buffer, length. Rets: status. The buffer gets a u16 BE length and the value.

    QEMU rtas_ibm_get_system_parameter (no count checks): 20 SPLPAR characteristics, e.g.
    "MaxEntCap=1,DesMem=512,DesProcs=1,MaxPlatProcs=1,HostThrs=4" with its NUL (measured), 42 diagnostics run
    mode (one byte 0), 48 the UUID (16 bytes, or length 0 when none is set); any other -> -3. Length < 2 ->
    -9999 with nothing written; a short buffer gets the full length and a truncated value.
    """
    param, buffer, length = _arg(args, 0), _arg(args, 1), _arg(args, 2)
    if param == RTAS_SYSPARM_SPLPAR_CHARACTERISTICS:
        status = _sysparm_st(m, buffer, length, splpar_characteristics(m))
    elif param == RTAS_SYSPARM_DIAGNOSTICS_RUN_MODE:
        status = _sysparm_st(m, buffer, length, bytes([DIAGNOSTICS_RUN_MODE_DISABLED]))
    elif param == RTAS_SYSPARM_UUID:
        uuid = m.uuid
        status = _sysparm_st(m, buffer, length, bytes(uuid[:16]) if uuid else b"")
    else:
        status = RtasStatus.PARAMETER_ERROR
    return [status]


@RTAS_CORE.rtas("ibm,set-system-parameter")
def rtas_ibm_set_system_parameter(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: parameter, buffer. Rets: status. 20, 42 and 48 -> -9002 (not authorized), any other -> -3
    (QEMU rtas_ibm_set_system_parameter; no count checks; measured)."""
    if _arg(args, 0) in (RTAS_SYSPARM_SPLPAR_CHARACTERISTICS, RTAS_SYSPARM_DIAGNOSTICS_RUN_MODE, RTAS_SYSPARM_UUID):
        return [RtasStatus.NOT_AUTHORIZED]
    return [RtasStatus.PARAMETER_ERROR]


@RTAS_CORE.rtas("check-exception")
def rtas_check_exception(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: vector, info, event mask, critical, buffer, length[, extended info]. Rets: status.

    QEMU check_exception: nargs not 6 or 7, or nret != 1 -> -3; else the first queued event matching the mask
    is written out (status 0). This machine queues no events (no EPOW or hot-plug sources), so the status is
    always 1, no errors found (measured on an idle QEMU).
    """
    if not 6 <= len(args) <= 7 or nret != 1:
        return [RtasStatus.PARAMETER_ERROR]
    return [RtasStatus.NO_ERRORS_FOUND]


@RTAS_CORE.rtas("event-scan")
def rtas_event_scan(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: event mask, critical, buffer, length. Rets: status. nargs != 4 or nret != 1 -> -3; else always
    1, no errors found (QEMU event_scan only re-pulses event-source interrupts, and there are none here)."""
    if len(args) != 4 or nret != 1:
        return [RtasStatus.PARAMETER_ERROR]
    return [RtasStatus.NO_ERRORS_FOUND]


@RTAS_CORE.rtas("ibm,os-term")
def rtas_ibm_os_term(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: message address. Rets: status.

    QEMU rtas_ibm_os_term (no count checks): reads up to 511 bytes of the NUL-terminated message (zero outside
    RAM), reports "OS terminated: <message>" and raises the guest-panic event; status 0. Here the message is
    recorded and the machine stops through m.os_term.
    """
    raw = phys_read(m.ram, _arg(args, 0), OS_TERM_MAX)
    message = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    m.os_term(message)
    return [RtasStatus.SUCCESS]


def _power_level(args: list[int], nargs: int, nret: int, want_nargs: int) -> list[int]:
    """QEMU rtas_set/get_power_level: counts, then the domain must be -1 (the live-insert domain): level 100."""
    if nargs != want_nargs or nret != 2:
        return [RtasStatus.PARAMETER_ERROR]
    if _s32(args[0]) != -1:
        return [RtasStatus.PARAMETER_ERROR]
    return [RtasStatus.SUCCESS, POWER_LEVEL_FULL]


@RTAS_CORE.rtas("set-power-level")
def rtas_set_power_level(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: power domain, level. Rets: status, level set. nargs != 2 or nret != 2 -> -3; domain other than -1
    -> -3; else 0 and 100, whatever level was asked (measured)."""
    return _power_level(args, len(args), nret, 2)


@RTAS_CORE.rtas("get-power-level")
def rtas_get_power_level(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: power domain. Rets: status, level. nargs != 1 or nret != 2 -> -3; domain other than -1 -> -3;
    else 0 and 100 (measured)."""
    return _power_level(args, len(args), nret, 1)


FWNMI_ADDR_LIMIT = 32 * MiB


@RTAS_CORE.rtas("ibm,nmi-register")
def rtas_ibm_nmi_register(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: system-reset handler, machine-check handler (real addresses). Rets: status.

    QEMU rtas_ibm_nmi_register (no count checks; cap-fwnmi is on by default): -3 while the guest has not set
    /rtas linux,rtas-base; -3 if either address is at or above 32 MiB or the RMA size (all of RAM here);
    else both are recorded in m.fwnmi and the status is 0.
    """
    vof = m.vof
    if vof is None or not vof.rtas_base:
        return [RtasStatus.PARAMETER_ERROR]
    sreset, mce = _arg(args, 0), _arg(args, 1)
    limit = min(FWNMI_ADDR_LIMIT, m.memory_size)
    if sreset >= limit or mce >= limit:
        return [RtasStatus.PARAMETER_ERROR]
    m.fwnmi = (sreset, mce)
    return [RtasStatus.SUCCESS]


@RTAS_CORE.rtas("ibm,nmi-interlock")
def rtas_ibm_nmi_interlock(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: none. Rets: status. QEMU rtas_ibm_nmi_interlock (no count checks): -3 before ibm,nmi-register
    (measured), else 0. No machine check is ever delivered here, so there is no interlock to release."""
    if getattr(m, "fwnmi", None) is None:  # the machine sets m.fwnmi = None at reset; absent means the same
        return [RtasStatus.PARAMETER_ERROR]
    return [RtasStatus.SUCCESS]
