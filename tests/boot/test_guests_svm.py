"""Guest boot tests on AMD-V: the test guests of guests/ and the scenarios of
test_guests.py, run by plinth's SVM backend under QEMU's TCG with -cpu max (SVM and
NPT, but no nRIP-save, decode assists, VMCB clean bits or flush by ASID: every
instruction length comes from plinth's own decoder).

The checks are test_guests.py's, unchanged but for what differs on AMD by design:
VMX instructions are plain #UD on an AMD CPU and never reach plinth (so the vmx
guest's exit counts show no virt-insn, only MONITOR/MWAIT and the CR4.VMXE write,
which the SVM backend intercepts), and TCG's missing XSETBV intercept (see cpuid).  Each run must also show in the log that the SVM
backend ran it.
"""
import re

import pytest

import plinthboot
import test_guests
from plinthboot import POWEROFF, STATUS_NAMES

# TCG runs the guests in a few seconds; these only bound a hung run.
TIMEOUT = 90

SVM_GUESTS = dict(test_guests.GUESTS)
SVM_GUESTS["vmx"] = dict(test_guests.GUESTS["vmx"], exits=[r"\bmwait 2\b", r"\bcr 1\b"])
# QEMU 7.2's TCG ignores the XSETBV intercept: the guest's XSETBVs run (and fault) in
# the emulated CPU itself, so plinth counts no xsetbv exits there; the backend follows
# XCR0 instead (the state scenario checks each VM keeps its own).
SVM_GUESTS["cpuid"] = dict(test_guests.GUESTS["cpuid"], exits=[r"\bcpuid \d+\b"])
# TCG's CPU is an AMD: the four legacy counters exist; MISC_ENABLE does not.
SVM_GUESTS["pmu"] = dict(test_guests.GUESTS["pmu"], exits=[r"\brdpmc 2\b"],
                         passes=["pmu-amd-msrs-zero", "pmu-amd-writes-kept", "pmu-amd-never-counts", "pmu-amd-rdpmc",
                                 "pmu-amd-rdpmc-4-gp", "pmu-amd-ctl-reserved-gp"])
SVM_GUESTS["miscenable"] = dict(test_guests.GUESTS["miscenable"],
                                passes=["miscenable-amd-read-gp", "miscenable-amd-write-gp"])
# AMD-V cannot hide XSAVES, so there is no #UD to check (TCG's CPU has none anyway).
SVM_GUESTS["xsaves"] = dict(test_guests.GUESTS["xsaves"],
                            passes=["xsaves-no-supervisor-components", "xsaves-hidden-xss-gp"])
# The CPU performs task switches under AMD-V (no intercept).
SVM_GUESTS["taskswitch"] = dict(test_guests.GUESTS["taskswitch"], done=True, stop=test_guests.HALTED,
                                passes=["taskswitch-jmp-ran-task", "taskswitch-jmp-back", "taskswitch-sets-ts"])
# Checks QEMU's TCG fails by itself, shown by booting the same guests straight under
# QEMU without plinth (-kernel guests/X.elf): the guests skip them when told to.
SVM_SKIPS = {
    "debugtrap": {"gd-mov-dr-faults": "QEMU 7.2's TCG does not implement DR7.GD: without plinth a MOV to a "
                                      "debug register with GD set raises no #DB there either"},
    "movspf": {"native-pf-rsvd-maxphyaddr": "QEMU 7.2's TCG reports a reserved-bit page fault of the guest's own "
                                            "access without the P bit (error 0xa, not 0xb), with or without plinth",
               "native-pf-rsvd-xd-without-nxe": "QEMU 7.2's TCG reports XD with EFER.NXE clear as error 0x8 (no P "
                                                "bit), with or without plinth; plinth's own walk reports 0x9"},
}
for _vm, _skips in SVM_SKIPS.items():
    SVM_GUESTS[_vm] = dict(SVM_GUESTS[_vm], skips=_skips)


def with_skips(cfg_text):
    """Adds skip=<checks> to the command line of each VM that runs a guest of SVM_SKIPS."""
    out, vm = [], None
    for line in cfg_text.splitlines():
        m = re.match(r"\s*\[\s*vm\s+(\S+)\s*\]", line)
        if m:
            vm = test_guests.SPEC_OF.get(m.group(1), m.group(1))
            out.append(line)
            if vm in SVM_SKIPS and not re.search(rf"\[vm {re.escape(m.group(1))}\][^\[]*\bcmdline\b", cfg_text):
                out.append("cmdline = skip=" + ",".join(SVM_SKIPS[vm]))
            continue
        if vm in SVM_SKIPS and re.match(r"\s*cmdline\s*=", line):
            line += " skip=" + ",".join(SVM_SKIPS[vm])
        out.append(line)
    return "\n".join(out) + "\n"

BACKEND_LINE = r"svm: backend svm in use: NPT"

guest_build = test_guests.guest_build


def run_svm(build, tmp_path, cfg_text, smp, timeout, cmdline=None):
    # TCG runs guest code faster, relative to plinth's restart path (RAM clear, reload),
    # than Bochs: the faults scenario's counters need more rounds to still be running
    # when tf-restart has crashed its fifth time (after back-offs of 50 to 400 ms).
    if "[vm tf-restart]" in cfg_text:
        cfg_text = re.sub(r"\brounds=12\b", "rounds=200", cfg_text)
    cfg_text = with_skips(cfg_text)
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(cfg_text)
    iso = str(tmp_path / "guests.iso")
    test_guests.make_iso(build, str(cfg), iso, cmdline)
    status, text = plinthboot.boot("qemu", "bios", smp=smp, image=iso, timeout=min(timeout, TIMEOUT))
    if not plinthboot.find(BACKEND_LINE, text):
        pytest.fail("plinth did not run its SVM backend (no 'svm: backend svm in use' line); "
                    "tools/run must pick QEMU TCG with -cpu max (AMD-V)\n\n---- serial log ----\n" + text,
                    pytrace=False)
    return status, text


@pytest.fixture(autouse=True)
def svm_runs(monkeypatch):
    """test_guests' helpers and scenario checks, booting QEMU/SVM instead of Bochs/VMX."""
    monkeypatch.setattr(test_guests, "run", run_svm)
    monkeypatch.setattr(test_guests, "GUESTS", SVM_GUESTS)


@pytest.mark.parametrize("vm", list(test_guests.SOLO), ids=[f"svm-solo-{v}" for v in test_guests.SOLO])
def test_svm_guest_alone(guest_build, tmp_path, vm):
    """One guest alone on a one-CPU AMD-V machine: its checks pass and plinth stops it
    as GUESTS says, then powers off."""
    test_guests.test_guest_alone(guest_build, tmp_path, vm)


def test_svm_scenario_basic(guest_build, tmp_path):
    test_guests.test_scenario_basic(guest_build, tmp_path)


def test_svm_scenario_faults(guest_build, tmp_path):
    test_guests.test_scenario_faults(guest_build, tmp_path)


def test_svm_scenario_state(guest_build, tmp_path):
    test_guests.test_scenario_state(guest_build, tmp_path)


def test_svm_scenario_cpu(guest_build, tmp_path):
    test_guests.test_scenario_cpu(guest_build, tmp_path)


def test_svm_scenario_multi_2cpu(guest_build, tmp_path):
    # TCG runs counter's register-only rounds far faster, relative to filler's memory
    # writes, than Bochs does: with 16 rounds counter sometimes finished before filler's
    # stop (about two rounds per filler pass), and the test then showed nothing.  48
    # rounds leave it running well past the stop.
    test_guests.test_scenario_multi_2cpu(guest_build, tmp_path,
                                         edits=[("cmdline = rounds=16", "cmdline = rounds=48")])


def test_svm_backend_log(guest_build, tmp_path):
    """The boot log names the backend and what it uses of TCG's SVM: no nRIP-save, no
    flush by ASID, so lengths come from the decoder and new ASIDs flush the TLB."""
    cfg = "[plinth]\non_idle = poweroff\n\n" + test_guests.SOLO["protmode"]
    status, text = run_svm(guest_build, tmp_path, cfg, 1, TIMEOUT)
    problems = []
    if status != POWEROFF:
        problems.append(f"run ended in {STATUS_NAMES.get(status, status)}")
    for want in (r"virt: svm npt", BACKEND_LINE + r" with 2 MiB and 1 GiB pages, \d+ ASIDs",
                 r"instruction lengths from plinth's decoder \(no nRIP-save\)",
                 r"no flush by ASID", r"sched: time slices of \d+ ms from the local APIC timer"):
        if not plinthboot.find(want, text):
            problems.append(f"no log line matching '{want}'")
    if re.search(r"error: ", text):
        problems.append("plinth logged an error")
    test_guests.verdict(problems, test_guests.Log(text))
