"""The scheduler on one physical CPU: a vCPU that another vCPU of the same CPU makes
runnable runs soon, even when no time slice was armed (one vCPU was runnable).
guests/hostile/sched_wake.c: a two-vCPU VM alone on a one-CPU machine whose BSP
wakes its halted AP with IPIs and waits for each answer spinning with interrupts off,
on Bochs (VT-x) and QEMU TCG (AMD-V)."""
import re

import pytest

import plinthboot
import test_guests
from test_guests import Log, check_run, check_vm, verdict

CFG = """[plinth]
on_idle = poweroff

[vm sched_wake]
loader = multiboot
kernel = guests/hostile/sched_wake.elf
cmdline = bound_us={bound}
memory = 4M
vcpus = 2
cpus = 0
"""
# Bochs' TSC counts instructions: a bound there is exact.  Measured: 0.34 ms with the
# fix, 10 ms without (the BSP ran until a platform timer's deadline).  QEMU's TSC is
# wall-clock time on a shared machine: there the test checks only that every IPI is
# answered (1 ms with the fix, 21 ms without, too close to noise for a bound).
BOUND_US = {"bochs": 2000, "qemu": 0}
SPEC = dict(passes=["sched-wake-ap-up", "sched-wake-answered"], done=True,
            stop=r"every vCPU halted with interrupts disabled \(the last: vCPU \d at rip 0x[0-9a-f]+\)")
TIMEOUT = {"bochs": 300, "qemu": 120}
guest_build = test_guests.guest_build


@pytest.mark.parametrize("emulator", ["bochs", "qemu"])
def test_same_cpu_wake_preempts_spinning_sibling(guest_build, tmp_path, emulator):
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(CFG.format(bound=BOUND_US[emulator]))
    iso = str(tmp_path / "sched.iso")
    test_guests.make_iso(guest_build, str(cfg), iso)
    status, text = plinthboot.boot(emulator, "bios", smp=1, image=iso, timeout=TIMEOUT[emulator])
    log, problems = Log(text), []
    check_run(status, log, ["sched_wake"], problems)
    spec = dict(SPEC)
    if BOUND_US[emulator]:
        spec["passes"] = spec["passes"] + ["sched-wake-bounded"]
    check_vm(log, "sched_wake", problems, spec=spec)
    verdict(problems, log)


STORM_CFG = """[plinth]
on_idle = poweroff

[vm neighbour]
loader = multiboot
kernel = guests/hostile/neighbour.elf
cmdline = rounds={rounds} spin=20000000
memory = 4M
cpus = 0

[vm sched_storm]
loader = multiboot
kernel = guests/hostile/sched_storm.elf
cmdline = bound_us={bound}
memory = 4M
vcpus = 4
cpus = 0
"""
# The sleeping vCPU's worst lateness, on Bochs: four vCPUs that never halt share the
# CPU with it (three of the storm VM, the neighbour), each with a 10 ms slice, so
# without the wake-up boost a timer waited up to 40 ms.  QEMU's TSC is wall-clock
# time on a shared machine: there only arrival and progress are checked.
STORM_BOUND_US = {"bochs": 3000, "qemu": 0}
STORM_ROUNDS = {"bochs": 20, "qemu": 100}
STORM_SPEC = dict(passes=["sched-storm-aps-up", "sched-storm-timers-arrive", "sched-storm-busy-ran"], done=True,
                  stop=r"every vCPU halted with interrupts disabled \(the last: vCPU \d at rip 0x[0-9a-f]+\)")
NEIGHBOUR_SPEC = dict(passes=["neighbour-memory-intact", "neighbour-ran-to-the-end"], done=True,
                      stop=r"halted with interrupts disabled at rip 0x[0-9a-f]+")


@pytest.mark.parametrize("emulator", ["bochs", "qemu"])
def test_sleeping_vcpu_timer_not_behind_busy_siblings(guest_build, tmp_path, emulator):
    """guests/hostile/sched_storm.c: a vCPU sleeping on 1 ms one-shot APIC timers,
    while three sibling vCPUs storm with periodic timers and IPIs and the neighbour
    spins, all on one CPU: every timer arrives, the busy vCPUs and the neighbour run,
    and (Bochs) no timer is more than STORM_BOUND_US late."""
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(STORM_CFG.format(bound=STORM_BOUND_US[emulator], rounds=STORM_ROUNDS[emulator]))
    iso = str(tmp_path / "storm.iso")
    test_guests.make_iso(guest_build, str(cfg), iso)
    status, text = plinthboot.boot(emulator, "bios", smp=1, image=iso, timeout=TIMEOUT[emulator])
    log, problems = Log(text), []
    check_run(status, log, ["neighbour", "sched_storm"], problems)
    spec = dict(STORM_SPEC)
    if STORM_BOUND_US[emulator]:
        spec["passes"] = spec["passes"] + ["sched-storm-bounded"]
    check_vm(log, "sched_storm", problems, spec=spec)
    check_vm(log, "neighbour", problems, spec=NEIGHBOUR_SPEC)
    verdict(problems, log)


SHARES_CFG = """[plinth]
on_idle = poweroff

[vm light]
loader = multiboot
kernel = guests/spin.elf
cmdline = seconds={seconds}
memory = 4M
cpus = 0

[vm heavy]
loader = multiboot
kernel = guests/spin.elf
cmdline = seconds={seconds}
memory = 4M
cpus = 0
cpu_weight = 300

[vm capped]
loader = multiboot
kernel = guests/spin.elf
cmdline = seconds={seconds}
memory = 4M
cpus = 0
cpu_cap = 20
"""
# Three CPU-bound guests/spin.c on one CPU, each measuring the share of the CPU it
# got from its own TSC: capped takes its 20 %, the other 80 % go 1:3 to light (weight
# 100, the default) and heavy (300): 20 % / 60 %.  Bochs is deterministic (measured:
# 19.8 / 59.5 / 19.8 %); QEMU's TSC is wall-clock time on a shared host, whose own
# scheduling shows up as gaps in every guest's measure alike, so its bounds are looser.
SHARES_SECONDS = {"bochs": 4, "qemu": 6}
SHARES_BOUNDS = {"bochs": dict(capped=(180, 220), light=(170, 230), heavy=(550, 640), ratio=(2.6, 3.4)),
                 "qemu": dict(capped=(120, 280), light=(100, 300), heavy=(350, 750), ratio=(2.0, 4.5))}


@pytest.mark.parametrize("emulator", ["bochs", "qemu"])
def test_cpu_weights_and_cap(guest_build, tmp_path, emulator):
    """cpu_weight and cpu_cap: the spin guests' measured shares of their one CPU."""
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(SHARES_CFG.format(seconds=SHARES_SECONDS[emulator]))
    iso = str(tmp_path / "shares.iso")
    test_guests.make_iso(guest_build, str(cfg), iso)
    status, text = plinthboot.boot(emulator, "bios", smp=1, image=iso, timeout=TIMEOUT[emulator])
    log, problems = Log(text), []
    check_run(status, log, ["light", "heavy", "capped"], problems)
    share = {}
    for vm in ("light", "heavy", "capped"):
        got = [int(m.group(1)) for _, t in log.guest(vm) for m in [re.match(r"spin: share (\d+)/1000", t)] if m]
        if not got:
            problems.append(f"{vm}: reported no share")
        else:
            share[vm] = got[0]
    bounds = SHARES_BOUNDS[emulator]
    for vm, per_mille in share.items():
        lo, hi = bounds[vm]
        if not lo <= per_mille <= hi:
            problems.append(f"{vm}: got {per_mille / 10:.1f} % of the CPU, expected {lo / 10:.0f}-{hi / 10:.0f} %")
    if "light" in share and "heavy" in share:
        ratio = share["heavy"] / max(share["light"], 1)
        lo, hi = bounds["ratio"]
        if not lo <= ratio <= hi:
            problems.append(f"heavy (weight 300) got {ratio:.2f} times light's (weight 100) CPU, expected {lo}-{hi}")
    verdict(problems, log)


RT_CFG = """[plinth]
on_idle = poweroff

[vm sched_rt]
loader = multiboot
kernel = guests/hostile/sched_rt.elf
cmdline = bound_us={bound}
memory = 4M
cpus = 0
priority = high

[vm hog1]
loader = multiboot
kernel = guests/spin.elf
cmdline = seconds=2
memory = 4M
cpus = 0

[vm hog2]
loader = multiboot
kernel = guests/spin.elf
cmdline = seconds=2
memory = 4M
cpus = 0

[vm hog3]
loader = multiboot
kernel = guests/spin.elf
cmdline = seconds=2
memory = 4M
cpus = 0
"""
# guests/hostile/sched_rt.c works 2 ms per 1 ms of sleep, so it earns no wake-up
# boost: with priority = normal its timer waits for the round robin to come to it past
# the three hogs' 10 ms slices (measured on Bochs: worst 21.1 ms), with priority = high
# it pre-empts them (worst 1.1 ms).  Bochs is deterministic, and that worst case
# depends on plinth's code layout: a change that only moved code (258c78a, a helper
# shared by three files) made it 4.5 ms, with the mean unchanged; not explained yet
# (see the issue note).  The bound stays well below the round robin's 21 ms.
RT_BOUND_US = {"bochs": 6000, "qemu": 0}
RT_SPEC = dict(passes=["sched-rt-timers-arrive"], done=True, stop=r"halted with interrupts disabled at rip 0x[0-9a-f]+")


@pytest.mark.parametrize("emulator", ["bochs", "qemu"])
def test_high_priority_preempts_a_hog(guest_build, tmp_path, emulator):
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(RT_CFG.format(bound=RT_BOUND_US[emulator]))
    iso = str(tmp_path / "rt.iso")
    test_guests.make_iso(guest_build, str(cfg), iso)
    status, text = plinthboot.boot(emulator, "bios", smp=1, image=iso, timeout=TIMEOUT[emulator])
    log, problems = Log(text), []
    check_run(status, log, ["sched_rt", "hog1", "hog2", "hog3"], problems)
    spec = dict(RT_SPEC)
    if RT_BOUND_US[emulator]:
        spec["passes"] = spec["passes"] + ["sched-rt-bounded"]
    check_vm(log, "sched_rt", problems, spec=spec)
    verdict(problems, log)
