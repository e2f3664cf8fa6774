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

BACKEND_LINE = r"svm: backend svm in use: NPT"

guest_build = test_guests.guest_build


def run_svm(build, tmp_path, cfg_text, smp, timeout, cmdline=None):
    # TCG runs guest code faster, relative to plinth's restart path (RAM clear, reload),
    # than Bochs: the faults scenario's counters need more rounds to still be running
    # when tf-restart has crashed its fifth time.
    if "[vm tf-restart]" in cfg_text:
        cfg_text = re.sub(r"\brounds=12\b", "rounds=60", cfg_text)
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


def test_svm_scenario_multi_2cpu(guest_build, tmp_path):
    test_guests.test_scenario_multi_2cpu(guest_build, tmp_path)


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
