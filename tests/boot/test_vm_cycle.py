"""The core's VM life cycle (plinth.selftest=vm-cycle, kernel/selftest_vm.c): 40 VMs of
two vCPUs each, one after another, created, run to a HLT and destroyed, on two CPUs
(each VM's vCPUs on different CPUs, so that one CPU destroys what the other must free)
and on one.  More VMs and vCPUs than the core has slots, so a VM or vCPU not given
back fails a later create; free memory back to its first value after every VM; each
new VM's RAM zeroed and each guest's store in its own VM's RAM.  On Bochs (VT-x, with
VPIDs) and QEMU TCG (AMD-V, with ASIDs)."""
import os
import subprocess

import pytest

import plinthboot
from plinthboot import POWEROFF, STATUS_NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = {"bochs": 600, "qemu": 120}


def make_iso(tmp_path):
    iso = tmp_path / "plinth.iso"
    elf = os.path.join(plinthboot.build_dir(), "plinth.elf")
    if not os.path.exists(elf):
        pytest.fail(f"{elf} does not exist: build it first (make BUILD=... {elf})", pytrace=False)
    # The self-test runs instead of the config's guests: a config without any.
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text("[plinth]\non_idle = poweroff\n")
    proc = subprocess.run([os.path.join(ROOT, "tools", "mkiso"), elf, str(cfg),
                           str(iso), "plinth.selftest=vm-cycle"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        pytest.fail(f"tools/mkiso failed: {proc.stdout.decode(errors='replace')[-4000:]}", pytrace=False)
    return str(iso)


@pytest.mark.parametrize("emulator,smp", [("qemu", 2), ("qemu", 1), ("bochs", 2), ("bochs", 1)])
def test_vms_created_run_and_destroyed_give_everything_back(tmp_path, emulator, smp):
    status, log = plinthboot.boot(emulator, "bios", smp=smp, image=make_iso(tmp_path),
                                  timeout=TIMEOUT[emulator])
    problems = []
    if not plinthboot.find(r"selftest: vm-cycle: PASS: 40 VMs of 2 vCPUs created, run and destroyed", log):
        fail = plinthboot.find(r"selftest: vm-cycle: FAIL.*", log)
        problems.append(f"no PASS line{': ' + fail.group(0) if fail else ''}")
    if smp == 2 and not plinthboot.find(r"selftest: vm-cycle: 40 VMs, vCPUs on CPU 0 and 1", log):
        problems.append("the test VMs' vCPUs were not spread over both CPUs")
    if status != POWEROFF:
        problems.append(f"run ended with {STATUS_NAMES.get(status, status)}, expected a clean poweroff")
    assert not problems, "; ".join(problems) + "\n--- serial log ---\n" + log[-6000:]
