"""Snapshots in memory, driven from plinth's shell (tests/boot/serialsession.py) on
QEMU TCG (AMD-V) and Bochs (VT-x): `snapshot`, `restore`, `snapshots`, `drop`,
the snapshot_memory bound, and what a restored guest sees: its RAM, devices and
CPU state as at the snapshot, its clocks going on from there, while a neighbour
runs throughout."""
import os
import re

import pytest

import test_guests
from serialsession import Session
# The Linux guest of test_shell's console test, beside alpha: two vCPUs on QEMU, one
# on Bochs (a PVH boot there is about 1.5 G instructions).
from test_shell import LINUX_CFG, LINUX_VCPUS

guest_build = test_guests.guest_build
CTRL_A = "\x01"

SMALL_CFG = """[plinth]
on_idle = poweroff
console = shell
snapshot_memory = 3M

[vm alpha]
loader   = multiboot
kernel   = guests/console.elf
cmdline  = tick=10
memory   = 16M
cpus     = 0-{last}

[vm beta]
loader   = multiboot
kernel   = guests/console.elf
cmdline  = tick=20
memory   = 16M
cpus     = 0-{last}

[vm regs]
loader   = multiboot
kernel   = guests/snapregs.elf
cmdline  = tick=10
memory   = 16M
cpus     = 0-{last}
"""
SMP = {"qemu": 2, "bochs": 1}


def ticks(text, name):
    """The tick numbers of name's finished lines (a line still arriving may be cut)."""
    return [int(n) for n in re.findall(rf"^\[{name}\] console: tick (\d+)\n", text, re.MULTILINE)]


def taken(s, name, tag, since):
    """Waits for the snapshot's log line; returns (match, RAM KiB, zero KiB)."""
    m = s.expect(rf"vm {name}: snapshot '{tag}' taken in \d+ ms: (\d+) KiB of RAM held \((\d+) KiB of zero "
                 rf"pages as nothing\), (\d+) KiB of device and vCPU state", 120, since=since)
    return m, int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("emulator", ["qemu", "bochs"])
def test_snapshot_restore_small_guests(guest_build, tmp_path, emulator):
    """alpha is snapshotted, smashes its marker and RAM, and is restored: it goes on
    from the snapshot (its next tick is the one after the last before the
    snapshot; marker and RAM as then), also once stopped; beta ticks throughout.
    The shell refuses what cannot be done, each with its reason."""
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(SMALL_CFG.format(last=SMP[emulator] - 1))
    iso = str(tmp_path / "snap.iso")
    test_guests.make_iso(guest_build, str(cfg), iso)
    with Session(emulator, iso, tmp_path, smp=SMP[emulator], timeout=900) as s:
        s.expect(r"^plinth: console -> shell$", 180)
        s.expect(r"\[alpha\] console: ready", 180)
        s.expect(r"\[beta\] console: ready", 180)
        s.expect(r"\[alpha\] console: tick 2$", 120)
        s.command("snapshots", r"0 snapshots, 0 of 3 MiB of snapshot_memory in use")
        # Taken: a 16 MiB guest that touched little is mostly zero pages, held as nothing.
        at = s.mark()
        s.command("snapshot alpha t1", r"snapshot: vm alpha: taking snapshot 't1'")
        m, ram_kib, zero_kib = taken(s, "alpha", "t1", at)
        assert ram_kib < 2048 and zero_kib > 14000, (ram_kib, zero_kib)
        before = ticks(s.text[:m.start()], "alpha")
        assert before, "alpha never ticked before the snapshot"
        last = before[-1]
        # What the snapshot holds is the shell's to see.
        s.command("snapshots", r"(?s)1 snapshot, \d+ of 3 MiB.*\n  alpha\s+t1\s+\d+\.\d+\s+\d+\s+\d+\s+\d+")
        # alpha wrecks itself and ticks on.
        s.command("attach alpha", r"console -> alpha")
        s.send("smash\r")
        s.expect(r"\[alpha\] console: smashed marker=SMASHED")
        s.expect(rf"^\[alpha\] console: tick {last + 3}\n", 120)
        s.send(CTRL_A + "s")
        s.expect(r"plinth: console -> shell")
        # Restored: from the snapshot's state on, not a reboot.
        at = s.mark()
        s.command("restore alpha t1", r"restore: vm alpha: restoring snapshot 't1'")
        r = s.expect(r"vm alpha: snapshot 't1' restored in \d+ ms", 120, since=at)
        s.expect(r"^\[alpha\] console: tick \d+\n", 120, since=r.end())
        after = ticks(s.text[r.end():], "alpha")
        assert after[0] == last + 1, f"alpha went on from tick {after[0]}, not {last + 1}"
        assert "console: boot" not in s.text[at:], "the restore rebooted alpha"
        s.command("attach alpha", r"console -> alpha")
        s.send("marker\r")
        s.expect(r"^\[alpha\] console: marker=ORIGINAL ram=clean$", 60, since=r.end())
        # Its console input works after (the UART and PIC came back whole).
        s.send("still here\r")
        s.expect(r"^\[alpha\] console: echo still here$", 60, since=r.end())
        s.send(CTRL_A + "s")
        s.expect(r"plinth: console -> shell")
        # beta ran throughout.
        assert len(ticks(s.text[m.start():], "beta")) >= 2, "beta stopped ticking"
        # Refusals, each with its reason; nothing changes.
        s.command("snapshot alpha t1", r"snapshot: this VM has a snapshot 't1' already; `drop` it first")
        s.command("snapshot alpha no/slash", r"snapshot: tag 'no/slash' is not 1-15 letters, digits")
        s.command("snapshot", r"snapshot: `snapshot NAME \[TAG\]`")
        s.command("snapshot nosuch", r"snapshot: no VM 'nosuch'")
        s.command("restore alpha nosuch", r"restore: this VM has no snapshot 'nosuch'; `snapshots` lists them")
        s.command("restore beta", r"restore: this VM has no snapshot; `snapshot NAME \[TAG\]` takes one")
        s.command("drop alpha", r"drop: `drop NAME TAG`")
        s.command("drop beta t1", r"drop: vm beta: this VM has no snapshot 't1'")
        s.command("pause beta", r"pause: vm beta paused")
        s.command("snapshot beta", r"snapshot: vm beta is paused: .* `resume beta` first")
        s.command("resume beta", r"resume: vm beta running again")
        # The bound: alpha's 4 MiB of non-zero RAM do not fit in 3 MiB; refused whole,
        # with what it needs.  beta's snapshot (auto tag s1) fits beside t1.
        s.command("attach alpha", r"console -> alpha")
        s.send("fill\r")
        s.expect(r"\[alpha\] console: filled 4 MiB")
        s.send(CTRL_A + "s")
        s.expect(r"plinth: console -> shell")
        at = s.mark()
        s.command("snapshot alpha big", r"snapshot: vm alpha: taking snapshot 'big'")
        s.expect(r"vm alpha: snapshot 'big' not taken: it needs ([5-9]|\d\d) MiB \(RAM that is not zero\), and "
                 r"snapshot_memory has \d+ of 3 MiB free", 120, since=at)
        at = s.mark()
        s.command("snapshot beta", r"snapshot: vm beta: taking snapshot 's1'")
        taken(s, "beta", "s1", at)
        s.command("snapshots", r"(?s)2 snapshots.*alpha\s+t1 .*beta\s+s1 ")
        # A stopped VM is restored too: it runs again from the snapshot.
        s.command("stop alpha", r"stop: vm alpha: stopped")
        at = s.mark()
        s.command("restore alpha", r"restore: vm alpha: restoring snapshot 't1'")
        r = s.expect(r"vm alpha: snapshot 't1' restored", 120, since=at)
        s.expect(r"^\[alpha\] console: tick \d+\n", 120, since=r.end())
        assert ticks(s.text[r.end():], "alpha")[0] == last + 1
        row = s.command("list", r"^ ?\d+  alpha .*$").group(0)
        assert "running" in row or "halted" in row, row
        s.command("stats alpha", r"snapshots taken: 1, restored: 2")
        s.command("drop alpha t1", r"drop: vm alpha: snapshot 't1' deleted")
        s.command("snapshots", r"1 snapshot, ")
        # The CPU state beyond the VMCS/VMCB fields: vector, x87 and MXCSR, debug
        # registers, SYSCALL MSRs and TSC_AUX, loaded with pattern A at the snapshot
        # and B after; the restore brings back A in the registers as in RAM.
        s.expect(r"^\[regs\] snapregs: tick \d+ pattern A ok\n", 120)
        at = s.mark()
        s.command("snapshot regs r1", r"snapshot: vm regs: taking snapshot 'r1'")
        taken(s, "regs", "r1", at)
        s.command("attach regs", r"console -> regs")
        s.send("mutate\r")
        b = s.expect(r"^\[regs\] snapregs: now pattern B\n", 60, since=at)
        s.expect(r"^\[regs\] snapregs: tick \d+ pattern B ok\n", 60, since=b.end())
        s.send(CTRL_A + "s")
        s.expect(r"plinth: console -> shell", since=b.end())
        at = s.mark()
        s.command("restore regs r1", r"restore: vm regs: restoring snapshot 'r1'")
        r = s.expect(r"vm regs: snapshot 'r1' restored", 120, since=at)
        s.expect(r"^\[regs\] (FAIL )?snapregs: tick \d+ pattern .*\n", 120, since=r.end())
        first = re.search(r"^\[regs\] (FAIL )?snapregs: tick \d+ pattern .*\n", s.text[r.end():], re.MULTILINE)
        assert re.match(r"\[regs\] snapregs: tick \d+ pattern A ok$", first.group(0).strip()), first.group(0)
        assert "FAIL snapregs" not in s.text, "the registers differed from what the guest loaded"
        s.command("poweroff", r"power: off")
        assert s.wait_exit() == 0


def counts(text):
    """The counter's values on finished lines (typed echo may share its line)."""
    return [int(n) for n in re.findall(r"count-(\d+)\n", text)]


def virtio_config(text):
    """LINUX_CFG with Linux's console on hvc0 (console = virtio), a NIC on lan0 and
    a disk whose writes are kept apart (disk_mode = snapshot), mounted on /mnt with
    a file written there: the shell's input and output and the count go through
    the virtio console."""
    text = text.replace("cmdline = console=ttyS0 ", "cmdline = console=hvc0 linux-guest.modules "
                        "linux-guest.net=10.0.0.1/24 linux-guest.disk=snapshot ")
    text = text.replace("memory = 128M\n", "memory = 128M\nconsole = virtio\nnet = lan0\n"
                        "disk = guests/linux/disk.ext4\ndisk_mode = snapshot\ndisk_cow = 8M\n", 1)
    return text + "\n[net lan0]\n"


@pytest.mark.parametrize("emulator,virtio", [("qemu", False), ("bochs", False), ("qemu", True)],
                         ids=["qemu", "bochs", "qemu-virtio"])
def test_linux_snapshot_restore(guest_build, tmp_path, emulator, virtio):
    """Debian's kernel (two vCPUs on QEMU, one on Bochs) writes a file in its tmpfs
    and counts on its console; snapshot; it deletes the file and counts on;
    restore: the file is back, the count goes on from its value at the snapshot,
    and the self-check passes again (timers tick, nothing bad in the kernel log,
    clocksource tsc), while alpha ticks throughout.  With virtio, all of it through
    hvc0 with a virtio NIC beside it: their transport, queues and the console's
    state are in the snapshot."""
    import test_linux
    missing = [f for f in test_linux.LINUX_FILES if not os.path.isfile(os.path.join(guest_build, f))]
    if missing:
        pytest.fail(f"`make all` left no {', '.join(missing)}", pytrace=False)
    cfg = tmp_path / "plinth.cfg"
    vcpus = LINUX_VCPUS[emulator]
    text = LINUX_CFG.format(vcpus=vcpus, last=vcpus - 1)
    assert "cmdline = console=ttyS0 " in text and "memory = 128M\n" in text
    cfg.write_text(virtio_config(text) if virtio else text)
    iso = str(tmp_path / "linux.iso")
    test_guests.make_iso(guest_build, str(cfg), iso)
    # Room beside the guests' 144 MiB for a snapshot of Linux's non-zero RAM.
    with Session(emulator, iso, tmp_path, smp=vcpus, timeout=1200, memory=640 if virtio else 512) as s:
        if virtio:
            s.expect(r"vm linux: hvc0 is a virtio console at PCI 00:\d\d\.0$", 120)
            s.expect(r"vm linux: eth0 \S+ on net lan0", 120)
        s.expect(r"^\[linux\] linux-guest: selfcheck ok$", 400)
        if virtio:
            s.expect(r"^\[linux\] linux-guest: net eth0 up 10\.0\.0\.1/24 ", 1)
        s.expect(r"^\[linux\] linux-guest: shell \(linux-guest.stay\)", 120)
        at = s.mark()
        s.send("echo kept-$((40+2)) > /tmp/f; cat /tmp/f\r")
        s.expect(r"^\[linux\] kept-42$", 120, since=at)
        if virtio:
            s.send("sync; sha256sum /mnt/written | sed 's/^/sum-/'\r")
            written = s.expect(r"sum-([0-9a-f]{64}) ", 120, since=at).group(1)
        s.send("(i=0; while :; do i=$((i+1)); echo count-$i; sleep 1; done) &\r")
        s.expect(r"count-3$", 120, since=at)
        s.send(CTRL_A + "s")
        s.expect(r"plinth: console -> shell", since=at)
        at = s.mark()
        s.command("snapshot linux t1", r"snapshot: vm linux: taking snapshot 't1'")
        m, ram_kib, zero_kib = taken(s, "linux", "t1", at)
        snap_count = counts(s.text[:m.start()])[-1]
        # The guest deletes its file and counts on.
        s.send(CTRL_A + "1")
        s.expect(r"plinth: console -> linux \(1/2\)", since=m.end())
        at = s.mark()
        s.send("rm /tmp/f; ls /tmp/f || echo gone-$((1+1))\r")
        s.expect(r"gone-2$", 120, since=at)
        if virtio:
            # The file leaves the disk itself, not just the page cache.
            s.send("rm /mnt/written; sync; echo 3 > /proc/sys/vm/drop_caches; ls /mnt/written || echo off-disk\r")
            s.expect(r"off-disk$", 120, since=at)
        s.expect(rf"count-{snap_count + 4}\n", 120, since=m.end())
        s.send(CTRL_A + "s")
        s.expect(r"plinth: console -> shell", since=at)
        at = s.mark()
        s.command("restore linux t1", r"restore: vm linux: restoring snapshot 't1'")
        r = s.expect(r"vm linux: snapshot 't1' restored in \d+ ms", 300, since=at)
        s.expect(r"count-\d+\n", 120, since=r.end())
        resumed = counts(s.text[r.end():])[0]
        assert resumed == snap_count + 1, f"the count went on from {resumed}, not {snap_count + 1}"
        s.send(CTRL_A + "1")
        s.expect(r"plinth: console -> linux \(1/2\)", since=r.end())
        at = s.mark()
        s.send("cat /tmp/f\r")
        s.expect(r"^(\[linux\] )?.*kept-42$", 120, since=at)
        if virtio:
            # The disk's writes are the snapshot's too: read from the disk again,
            # the file is there with its bytes.
            at = s.mark()
            s.send("umount /mnt && mount -t ext4 /dev/vda /mnt && sha256sum /mnt/written | sed 's/^/back-/'\r")
            back = s.expect(r"back-([0-9a-f]{64}) |No such file.*$", 120, since=at)
            assert back.group(0).startswith("back-") and back.group(1) == written, \
                f"after the restore the disk's /mnt/written is {back.group(0)!r}, not sha256 {written}"
        at = s.mark()
        s.send("/init check\r")
        s.expect(r"linux-guest: selfcheck (ok|FAILED.*)$", 300, since=at)
        verdict = s.expect(r"linux-guest: selfcheck (ok|FAILED.*)$", 1, since=at).group(1)
        assert verdict == "ok", f"after the restore: selfcheck {verdict}"
        later = counts(s.text[r.end():])
        assert later[-1] > resumed, "the count stopped after the restore"
        assert len(ticks(s.text[m.start():], "alpha")) >= 2, "alpha stopped ticking"
        s.send(CTRL_A + "s")
        s.expect(r"plinth: console -> shell", since=at)
        s.command("poweroff", r"power: off")
        assert s.wait_exit() == 0
