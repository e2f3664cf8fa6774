"""Multi-vCPU VMs: the smp guest (guests/smp.c) starts its APs with INIT-SIPI-SIPI
through its local APIC and sends IPIs between its vCPUs, on both backends: VT-x
under Bochs and AMD-V under QEMU's TCG.

Scenarios (guests/configs/): smp2, two vCPUs on a two-CPU machine, one per CPU;
smp3, three vCPUs sharing one CPU (a vCPU waiting for its SIPI, an IPI or its timer
must leave the CPU to the others); smp-reboot, a two-vCPU VM that resets its machine
after its checks: plinth restarts the whole VM, the AP back in wait-for-SIPI, and the
checks pass again.  A failure prints the whole log.
"""
import os
import re

import pytest

import plinthboot
import test_guests
import test_guests_svm
from plinthboot import POWEROFF, STATUS_NAMES
from test_guests import HALTED, Log

# The guest ends with every vCPU halted with interrupts off: the VM stops on the last
# (or, where HLT with interrupts off still ends the whole VM at once, the first) one.
ENDED = rf"every vCPU halted with interrupts disabled \(the last: vCPU \d at rip 0x[0-9a-f]+\)|{HALTED}"

CONFIGS = os.path.join(plinthboot.ROOT, "guests", "configs")

# Bochs takes ~30 s for smp2 alone; twice that for the reboot, more when other
# emulators share the machine.
TIMEOUT_BOCHS = 300

PASSES = ["smp-aps-started", "smp-cpuid-apic-id", "smp-ipi-fixed", "smp-ipi-all-but-self", "smp-ipi-logical",
          "smp-ipi-lowest-priority", "smp-ipi-nmi", "smp-nmi-replies", "smp-sipi-ignored-while-running",
          "smp-sipi-no-restart", "smp-tsc-synchronized", "smp-ipi-replies"]

# name: (config, host CPUs, vCPUs, the CPUs plinth must place them on, boots)
SCENARIOS = {
    "smp2": ("smp2", 2, 2, "0,1", 1),
    "smp3-overcommit": ("smp3", 1, 3, "0,0,0", 1),
    "smp-reboot": ("smp-reboot", 2, 2, "0,1", 2),
}

guest_build = test_guests.guest_build


def check_smp(status, text, vcpus, placement, boots):
    log, problems = Log(text), []
    test_guests.check_run(status, log, ["smp"], problems)
    started = log.plinth(r"vm smp: started \(.*, (\d+) vCPUs?, on CPUs? ([\d,]+)\)$")
    if len(started) != 1:
        problems.append(f"plinth logged {len(started)} 'vm smp: started' lines with the vCPUs' CPUs, expected 1")
    elif (started[0][1].group(1), started[0][1].group(2)) != (str(vcpus), placement):
        problems.append(f"vm smp started with {started[0][1].group(1)} vCPUs on CPUs {started[0][1].group(2)}, "
                        f"expected {vcpus} on {placement}")
    lines = [t for _, t in log.guest("smp")]
    problems += [f"smp: {t}" for t in lines if t.startswith("FAIL")]
    passed = [t.split()[1] for t in lines if t.startswith("PASS ")]
    for c in PASSES:
        if passed.count(c) != boots:
            problems.append(f"smp: PASS {c} printed {passed.count(c)} times, expected {boots}")
    boot_lines = [t for t in lines if t.startswith("INFO smp: boot ")]
    want_boots = [f"INFO smp: boot {b}, {vcpus} vCPUs, BSP APIC ID 0" for b in range(1, boots + 1)]
    if boot_lines != want_boots:
        problems.append(f"smp: boot lines {boot_lines}, expected {want_boots}")
    for ap in range(1, vcpus):
        n = lines.count(f"INFO smp: cpu {ap} up")
        if n != boots:
            problems.append(f"smp: AP {ap} came up {n} times, expected {boots} (once per boot)")
    if lines.count("DONE smp") != 1:
        problems.append("smp: expected one 'DONE smp' line")
    # The reason is the platform's (a reset through port 0x92); the restart count is plinth's.
    restarts = log.plinth(r"vm smp: .*\breset\b.*; restarting \((?:on_crash = restart, )?restart (\d+)(?:, in \d+ ms)?\)$")
    if [m.group(1) for _, m in restarts] != [str(r) for r in range(1, boots)]:
        problems.append(f"plinth logged {len(restarts)} restarts of vm smp after its reset, expected {boots - 1}")
    stops = log.plinth(r"vm smp: stopped \((.*)\)$")
    if len(stops) != 1 or not re.fullmatch(ENDED, stops[0][1].group(1)):
        problems.append(f"vm smp: stopped {[m.group(1) for _, m in stops]}, expected once: {ENDED}")
    if boots > 1:
        reset = log.first("smp", r"^INFO smp: resetting the machine$")
        second = log.first("smp", r"^INFO smp: boot 2,")
        at = restarts[0][0] if restarts else None
        if None in (reset, second, at) or not reset < at < second:
            problems.append("the reset, plinth's restart and the second boot are not in that order")
    test_guests.verdict(problems, log)


def config_text(cfg):
    with open(os.path.join(CONFIGS, cfg + ".cfg")) as f:
        return f.read()


@pytest.mark.parametrize("name", list(SCENARIOS), ids=[f"vmx-{n}" for n in SCENARIOS])
def test_smp_vmx(guest_build, tmp_path, name):
    """VT-x (Bochs): the APs start, IPIs, NMIs and SIPIs behave, TSCs agree."""
    cfg, cpus, vcpus, placement, boots = SCENARIOS[name]
    status, text = test_guests.run(guest_build, tmp_path, config_text(cfg), cpus, TIMEOUT_BOCHS)
    check_smp(status, text, vcpus, placement, boots)


@pytest.mark.parametrize("name", list(SCENARIOS), ids=[f"svm-{n}" for n in SCENARIOS])
def test_smp_svm(guest_build, tmp_path, name):
    """AMD-V (QEMU TCG): the same."""
    cfg, cpus, vcpus, placement, boots = SCENARIOS[name]
    status, text = test_guests_svm.run_svm(guest_build, tmp_path, config_text(cfg), cpus, test_guests_svm.TIMEOUT)
    check_smp(status, text, vcpus, placement, boots)
