"""virtio on plinth's PCI bus, as Debian 12's own kernel drives it: a `disk =` line
gives the VM a virtio-blk function (vmm/disk.c on vmm/pci.c) that Linux finds by
scanning bus 0 (the DSDT's PCI0 host bridge and the MCFG's ECAM), binds with its
stock virtio_pci and virtio_blk modules (loaded from the initramfs in dependency
order), and drives with MSI-X.  The guest (guests/linux/init, linux-guest.disk=MODE)
mounts vda (guests/linux/disk.ext4, an ext4 image built without root) and prints

    linux-guest: disk vda pci=<address> irq=<msix|intx|none>
    linux-guest: disk vda ok <sum>                   data.bin matches data.sha256
    linux-guest: disk vda pristine | not pristine    (snapshot, rw: is /mnt/written there?)
    linux-guest: disk vda write ok                   (snapshot, rw: 2 MiB written, read back
                                                      after a remount, sums equal)

Backends: QEMU TCG (AMD-V) with the bzImage, Bochs (VT-x) through PVH with one vCPU
(its run is the costly one).  The disk modes: ro (read-only, checksum), snapshot
(writes kept apart and dropped at each VM restart: a guest that reboots finds its
disk pristine every boot), rw (writes into plinth's copy of the image: the second
boot finds the first boot's file).
"""
import re

import pytest

import test_guests
import test_linux
from test_linux import STOPPED_BY_TEST, after, boot_until, check_boots, check_plinth, configured, \
    machine_cpus, make_image, panicked, verdict

linux_build = test_linux.linux_build
guest_build = test_linux.guest_build

DISK = "guests/linux/disk.ext4"
PCI_RE = re.compile(r"^linux-guest: disk vda pci=(\S+) irq=(\S+)$")
OK_RE = re.compile(r"^linux-guest: disk vda ok [0-9a-f]{16}$")
TIMEOUT_QEMU = test_linux.TIMEOUT_QEMU
TIMEOUT_BOCHS = test_linux.TIMEOUT_BOCHS


def disk_config(name, mode, extra=""):
    text = test_linux.config(name, f"linux-guest.disk={mode} {extra}".strip())
    text, n = re.subn(r"^disk_mode = \S+$", f"disk_mode = {mode}", text, flags=re.MULTILINE)
    assert n == 1, f"{name}.cfg has no disk_mode line"
    return text


def check_disk(log, problems, boots, mode, pristine):
    """Linux's disk lines for each boot (pristine: one expectation per boot)."""
    lines = log.guest("linux")
    found = [PCI_RE.match(t) for _, t in lines if PCI_RE.match(t)]
    if len(found) < boots:
        problems.append(f"linux printed {len(found)} 'disk vda pci=' lines, expected {boots}: vda not found")
    for m in found:
        if not re.fullmatch(r"0000:00:[01][0-9a-f]\.0", m.group(1)):
            problems.append(f"linux: vda's device at {m.group(1)}, expected on bus 0 of segment 0")
        if m.group(2) != "msix":
            problems.append(f"linux: vda's interrupts are {m.group(2)}, expected MSI-X")
    oks = [t for _, t in lines if OK_RE.match(t)]
    if len(oks) < boots:
        problems.append(f"linux printed {len(oks)} 'disk vda ok' lines, expected {boots}: the file on vda "
                        "does not match its checksum")
    for _, t in lines:
        if t.startswith("linux-guest: disk vda") and "FAILED" in t:
            problems.append(f"linux: {t}")
    if mode != "ro":
        states = [t[len("linux-guest: disk vda "):] for _, t in lines
                  if re.match(r"^linux-guest: disk vda (not )?pristine$", t)]
        expect = ["pristine" if p else "not pristine" for p in pristine]
        if states[:boots] != expect:
            problems.append(f"linux found its disk {states} over its boots, expected {expect}")
        writes = [t for _, t in lines if t == "linux-guest: disk vda write ok"]
        if len(writes) < boots:
            problems.append(f"linux printed {len(writes)} 'disk vda write ok' lines, expected {boots}")
    attached = log.plinth(rf"vm linux: vda is {re.escape(DISK)} \(\d+ KiB, {mode}\) at PCI 00:\d\d\.0$")
    if not attached:
        problems.append(f"plinth did not log 'vm linux: vda is {DISK} (... KiB, {mode}) at PCI ...'")


def disk_run(build, tmp_path, name, emulator, backend, mode, boots, pristine, timeout):
    extra = "linux-guest.reboot" if boots > 1 else ""
    text = disk_config(name, mode, extra)
    witness = "[vm counter]" in text
    iso = make_image(build, tmp_path, text)

    def enough(t):
        log = test_guests.Log(t)
        if panicked(log) or log.plinth(r"vm counter: stopped \(") or log.plinth(r"error: "):
            return True
        done = [i for i, s in log.guest("linux") if s.startswith("linux-guest: selfcheck")]
        if len(done) < boots:
            return False
        if boots == 1 and not log.plinth(r"vm linux: stopped \("):
            return False
        return not witness or len(after(log, "counter", test_linux.ROUND_RE.pattern, done[-1])) >= 1

    status, out = boot_until(emulator, iso, machine_cpus(text), timeout, enough)
    log, problems = test_guests.Log(out), []
    check_plinth(status, log, problems, backend, ["counter", "linux"] if witness else ["linux"])
    check_boots(log, 1, int(configured(text, "linux", "memory").rstrip("M")), boots, problems)
    check_disk(log, problems, boots, mode, pristine)
    if boots > 1:
        for _, m in log.plinth(r"vm linux: stopped \((.*)\)$"):
            problems.append(f"linux was stopped ({m.group(1)}); its reboot must restart it")
    if witness:
        for _, t in log.guest("counter"):
            if t.startswith("FAIL"):
                problems.append(f"counter: {t}")
    verdict(problems, out)


# ---- QEMU TCG: AMD-V, bzImage ----------------------------------------------------

def test_virtio_blk_ro_svm(linux_build, tmp_path):
    """vda read-only: found on bus 0 with MSI-X, its file's checksum matches, and
    the VM powers off alone while counter runs on."""
    disk_run(linux_build, tmp_path, "linux-disk-bzimage", "qemu", "svm", "ro", 1, [True], TIMEOUT_QEMU)


def test_virtio_blk_snapshot_restart_svm(linux_build, tmp_path):
    """disk_mode = snapshot: the guest writes and reads back 2 MiB, reboots, and
    finds its disk pristine again (the copy-on-write blocks dropped at the
    restart); twice."""
    disk_run(linux_build, tmp_path, "linux-disk-bzimage", "qemu", "svm", "snapshot", 2, [True, True],
             TIMEOUT_QEMU * 2)


def test_virtio_blk_rw_restart_svm(linux_build, tmp_path):
    """disk_mode = rw: what the first boot wrote is there at the second."""
    disk_run(linux_build, tmp_path, "linux-disk-bzimage", "qemu", "svm", "rw", 2, [True, False],
             TIMEOUT_QEMU * 2)


# ---- Bochs: VT-x, PVH ----------------------------------------------------------------

def test_virtio_blk_snapshot_bochs(linux_build, tmp_path):
    """One boot on VT-x: vda found with MSI-X, checksum matches, 2 MiB written and
    read back through the copy-on-write pool."""
    disk_run(linux_build, tmp_path, "linux-disk-pvh", "bochs", "vmx", "snapshot", 1, [True], TIMEOUT_BOCHS)
