"""Linux boot tests: Debian 12's own kernel with the busybox initramfs of guests/linux
runs on plinth, on both backends:

    Bochs (VT-x)      the vmlinux through PVH entry (guests/configs/linux-pvh*.cfg):
                      no decompressor to emulate at Bochs' ~30 M instructions/s
    QEMU TCG (AMD-V)  the bzImage through the x86 boot protocol
                      (guests/configs/linux-bzimage*.cfg)

each with one and with two vCPUs, beside the counter test guest on a CPU of its own
(but for Bochs with two vCPUs, which runs Linux alone: Bochs executes its CPUs one
after the other, so a busy neighbour doubles the run).  The guest's /init
(guests/linux/init) prints

    linux-guest: up cpus=<online> mem=<MemTotal MiB> clocksource=<name> date=<RTC date>
    linux-guest: memory: <RAM in the memory map> MiB RAM in the memory map, MemTotal <MiB> MiB
    linux-guest: selfcheck ok | linux-guest: selfcheck FAILED: <what>

and checks itself what the command line says the VM has (linux-guest.cpus,
linux-guest.mem, linux-guest.clocksource=tsc), its kernel log (no BUG, WARNING, soft
lockup, timed out, clocksource marked unstable: each such line is echoed as
"linux-guest: dmesg: ..."), the RTC and the local timer on every CPU; then it powers
off (ACPI S5), which must stop its VM alone while counter runs on.  The reboot test
adds linux-guest.reboot: the guest then ends every boot with `reboot -f`, plinth must
restart the VM, and it must reach its marker again.

Two more check the recipe without plinth: its outputs (pinned versions, the PVH note,
the initramfs' entries) and a straight QEMU boot of the same kernel and initramfs.

Counter has rounds for far longer than Linux takes; each run ends when the test has
seen what it needs (here, not in plinth: Linux's poweroff leaves counter running, and
a guest that reboots every boot never stops), else at its timeout.  On a failure the
serial log is printed with counter's round lines thinned out.
"""
import gzip
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

import plinthboot
import test_guests
from plinthboot import PANIC, POWEROFF, STATUS_NAMES

CONFIGS = os.path.join(plinthboot.ROOT, "guests", "configs")
LINUX_FILES = ("guests/linux/vmlinux", "guests/linux/bzImage", "guests/linux/initramfs.cpio.gz")

# Emulator memory (MiB): plinth, the 66 MB vmlinux as a boot module, 128 MiB of
# Linux and 16 MiB of counter.
EMULATOR_MEMORY = 512
# Upper bounds on a run; a healthy one ends well before.  Booting to poweroff takes
# Linux 1.57 G instructions through PVH and 6.07 G from the bzImage (counted under
# QEMU with tools/bench's insncount plugin): about 50 s of Bochs for the first, twice
# that with counter on the second CPU.
TIMEOUT_BOCHS = 300
TIMEOUT_QEMU = 240
# Bochs counts emulated time in instructions: 4 M per second by default, at which
# Linux's 20 s soft-lockup watchdog fires on any 80 M-instruction stretch without a
# reschedule (a Debian kernel booted straight under Bochs logged three).  50 M, about
# what Bochs executes per second of real time, gives the guest a CPU of plausible
# speed; a bochsrc line on Bochs' command line overrides that key of the file's.
BOCHS_IPS = "cpu: ips=50000000"
# The end of a test run that the test itself asked for.
STOPPED_BY_TEST = "stopped by the test"

MARKER_RE = re.compile(r"^linux-guest: up cpus=(\d+) mem=(\d+) clocksource=(\S+) date=(\S+)$")
MEMORY_RE = re.compile(r"^linux-guest: memory: (\d+) MiB RAM in the memory map, MemTotal (\d+) MiB$")
# What a sound platform never makes Linux print (the list; Linux words a
# clocksource it stops trusting "Marking clocksource 'x' as unstable" or "Marking
# TSC unstable"; an MSR that CPUID promises but that faults is an "unchecked MSR
# access error"), and what a dying kernel prints.
BAD_RE = re.compile(r"BUG|WARNING|soft lockup|timed out|clocksource unstable|as unstable|TSC unstable|"
                    r"unchecked MSR access|"
                    r"Kernel panic|Oops")
ROUND_RE = re.compile(r"^INFO counter: round \d+ ")
# The memory map may hold less RAM than configured by the legacy hole (640K-1M) and a
# few firmware pages; guests/linux/init allows 4 MiB.
MEM_SLACK = 4


def config(name, cmdline_extra=""):
    """The text of guests/configs/NAME.cfg, with cmdline_extra added to Linux's cmdline."""
    with open(os.path.join(CONFIGS, name + ".cfg")) as f:
        text = f.read()
    if cmdline_extra:
        text, n = re.subn(r"^(cmdline = console=ttyS0 .*)$", rf"\1 {cmdline_extra}", text, flags=re.MULTILINE)
        assert n == 1, f"{name}.cfg has no Linux cmdline line to extend"
    return text


def configured(text, vm, key):
    """The value of key in [vm NAME] of a config text."""
    section = re.search(rf"^\[vm {re.escape(vm)}\]\n(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    m = re.search(rf"^{key}\s*=\s*(.*?)\s*$", section.group(1), re.MULTILINE) if section else None
    assert m, f"config has no {key} in [vm {vm}]"
    return m.group(1)


def machine_cpus(text):
    """How many CPUs the emulator needs: one past the highest CPU any VM names."""
    top = 0
    for value in re.findall(r"^cpus\s*=\s*(\S+)", text, re.MULTILINE):
        top = max([top] + [int(n) for n in re.findall(r"\d+", value)])
    return top + 1


guest_build = test_guests.guest_build


@pytest.fixture(scope="session")
def linux_build(guest_build):
    """The build directory, with the Linux guest built (`make all` builds it too)."""
    missing = [f for f in LINUX_FILES if not os.path.isfile(os.path.join(guest_build, f))]
    if missing:
        pytest.fail(f"`make all` left no {', '.join(missing)} in {guest_build}; "
                    "`make linux-guest` says why", pytrace=False)
    return guest_build


def boot_until(emulator, iso, smp, timeout, enough, memory=None):
    """Boots iso through tools/run and returns (status, log text).  Every half second
    the log so far goes to enough(text); once it returns true the run is ended (tools/run
    stops the emulator on SIGINT) and status is STOPPED_BY_TEST; otherwise status is
    tools/run's (plinthboot's POWEROFF, OTHER, PANIC, TIMEOUT)."""
    with tempfile.TemporaryDirectory(prefix="plinth-linux-") as tmp:
        log_path = os.path.join(tmp, "serial.log")
        err_path = os.path.join(tmp, "run.err")
        cmd = [sys.executable, plinthboot.RUN, emulator, "--firmware", "bios", "--image", iso,
               "--smp", str(smp), "--memory", str(memory or EMULATOR_MEMORY), "--timeout", str(timeout),
               "--log", log_path]
        if emulator == "bochs":
            cmd += ["--extra", BOCHS_IPS]
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, cwd=plinthboot.ROOT, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
            status = None
            hard_deadline = time.monotonic() + timeout + 60
            try:
                while proc.poll() is None:
                    time.sleep(0.5)
                    text = read_log(log_path)
                    if enough(text):
                        proc.send_signal(signal.SIGINT)
                        proc.wait(timeout=60)
                        status = STOPPED_BY_TEST
                        break
                    if time.monotonic() > hard_deadline:
                        raise subprocess.TimeoutExpired(cmd, timeout + 60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if status is None:
            status = proc.returncode
        with open(err_path, "rb") as f:
            sys.stderr.write(f.read().decode(errors="replace"))
        return status, read_log(log_path)


def read_log(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return ""
    # Only whole lines: the last one may still be arriving.
    return data[:data.rfind(b"\n") + 1].decode(errors="replace")


def panicked(log):
    """Linux has panicked (the last line of its panic report is out): nothing more will
    come from it, so the run can end."""
    return any("---[ end Kernel panic" in t for _, t in log.guest("linux"))


def make_image(build, tmp_path, cfg_text):
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(cfg_text)
    iso = str(tmp_path / "linux.iso")
    test_guests.make_iso(build, str(cfg), iso)
    return iso


def after(log, vm, pattern, index):
    """Lines vm printed after log line index that match pattern."""
    rx = re.compile(pattern)
    return [i for i, t in log.guest(vm) if i > index and rx.search(t)]


def thinned(text):
    """The log without most of counter's round lines (thousands of them under TCG)."""
    out, rounds = [], 0
    for line in text.splitlines():
        if "[counter] INFO counter: round " in line:
            rounds += 1
            if rounds % 50 != 1:
                continue
        out.append(line)
    return "\n".join(out)


def verdict(problems, text):
    if problems:
        pytest.fail("\n".join(problems) + "\n\n---- serial log (counter rounds thinned to one in 50) ----\n"
                    + thinned(text), pytrace=False)


def check_plinth(status, log, problems, backend, vms):
    if status == PANIC:
        problems.append("plinth panicked")
    elif status not in (STOPPED_BY_TEST, POWEROFF):
        problems.append(f"the run ended in {STATUS_NAMES.get(status, status)} before the test saw what it "
                        "needed")
    for _, m in log.plinth(r"(error: .*|PANIC.*)$"):
        problems.append(f"plinth: {m.group(1)}")
    started = sorted(m.group(1) for _, m in log.plinth(r"vm (\S+): started \("))
    if started != sorted(vms):
        problems.append(f"plinth started {started}, expected {sorted(vms)}")
    if backend == "svm" and not log.plinth(r"svm: backend svm in use"):
        problems.append("plinth did not run its SVM backend (no 'svm: backend svm in use' line)")


def check_boots(log, vcpus, mem_mib, boots, problems):
    """Linux's own lines: `boots` markers with the configured CPUs and memory, each
    followed by "selfcheck ok"; nothing on its console that a sound platform never
    causes.  Returns the log line indexes of the markers."""
    lines = log.guest("linux")
    if not lines:
        problems.append("linux printed nothing on its console")
    markers = []
    for i, t in lines:
        m = MARKER_RE.match(t)
        if not m:
            continue
        markers.append(i)
        cpus, memtotal, _, date = m.groups()
        if int(cpus) != vcpus:
            problems.append(f"linux: {cpus} CPUs online, expected {vcpus}: {t}")
        if int(memtotal) > mem_mib:
            problems.append(f"linux: MemTotal {memtotal} MiB exceeds the VM's {mem_mib} MiB: {t}")
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", date):
            problems.append(f"linux: no RTC date in its marker: {t}")
    if len(markers) < boots:
        problems.append(f"linux printed its marker {len(markers)} times, expected {boots}")
    for i, t in lines:
        m = MEMORY_RE.match(t)
        if m and not mem_mib - MEM_SLACK <= int(m.group(1)) <= mem_mib:
            problems.append(f"linux: its memory map holds {m.group(1)} MiB of RAM, expected {mem_mib} MiB "
                            f"(less at most {MEM_SLACK} MiB of holes): {t}")
    if sum(1 for _, t in lines if MEMORY_RE.match(t)) < boots:
        problems.append("linux printed no 'linux-guest: memory:' line for each boot")
    ok = [i for i, t in lines if t == "linux-guest: selfcheck ok"]
    for i, t in lines:
        if t.startswith("linux-guest: selfcheck FAILED") or t.startswith("linux-guest: dmesg:"):
            problems.append(f"linux: {t}")
        elif BAD_RE.search(t):
            problems.append(f"linux console: {t}")
    for b, at in enumerate(markers[:boots]):
        end = markers[b + 1] if b + 1 < len(markers) else len(log.lines)
        if not any(at < i < end for i in ok):
            problems.append(f"linux: boot {b + 1} printed no 'linux-guest: selfcheck ok' after its marker")
    return markers


def poweroff_run(build, tmp_path, name, emulator, timeout, backend):
    """Linux boots, checks itself and powers off: plinth stops that VM alone, and
    counter (on a CPU of its own) prints rounds after it.  Without counter in the
    config, plinth must then power off (on_idle)."""
    text = config(name)
    smp = machine_cpus(text)
    vcpus = int(configured(text, "linux", "vcpus"))
    mem_mib = int(configured(text, "linux", "memory").rstrip("M"))
    witness = "[vm counter]" in text
    iso = make_image(build, tmp_path, text)

    def enough(t):
        log = test_guests.Log(t)
        if panicked(log) or log.plinth(r"vm counter: stopped \("):
            return True
        stops = log.plinth(r"vm linux: stopped \(")
        if not stops or not witness:
            return False
        return len(after(log, "counter", ROUND_RE.pattern, stops[0][0])) >= 2

    status, out = boot_until(emulator, iso, smp, timeout, enough)
    log, problems = test_guests.Log(out), []
    check_plinth(status, log, problems, backend, ["counter", "linux"] if witness else ["linux"])
    check_boots(log, vcpus, mem_mib, 1, problems)
    if not witness and status != POWEROFF:
        problems.append("plinth did not power off after linux, its only VM, stopped (on_idle = poweroff)")
    for _, t in log.guest("counter"):
        if t.startswith("FAIL"):
            problems.append(f"counter: {t}")
    if log.plinth(r"vm counter: stopped \("):
        problems.append("counter was stopped: it has rounds to run long after Linux")
    stops = log.plinth(r"vm linux: stopped \((.*)\)$")
    asked = [i for i, t in log.guest("linux") if t == "linux-guest: poweroff"]
    if len(stops) != 1:
        problems.append(f"plinth logged {len(stops)} 'vm linux: stopped' lines, expected 1 after Linux's poweroff")
    elif not asked or stops[0][0] < asked[0]:
        problems.append(f"linux was stopped ({stops[0][1].group(1)}) before it asked to power off")
    else:
        if log.plinth(r"vm linux: .*restarting"):
            problems.append("plinth restarted linux: its poweroff must stop the VM")
        if witness and len(after(log, "counter", ROUND_RE.pattern, stops[0][0])) < 2:
            problems.append("counter printed fewer than 2 rounds after linux stopped: poweroff must stop "
                            "that VM only")
    verdict(problems, out)


# ---- Bochs: VT-x, PVH entry ----------------------------------------------------

def test_linux_pvh_1vcpu_bochs(linux_build, tmp_path):
    poweroff_run(linux_build, tmp_path, "linux-pvh", "bochs", TIMEOUT_BOCHS, "vmx")


def test_linux_pvh_2vcpu_bochs(linux_build, tmp_path):
    poweroff_run(linux_build, tmp_path, "linux-pvh-smp2", "bochs", TIMEOUT_BOCHS, "vmx")


# ---- QEMU TCG: AMD-V, bzImage through the boot protocol ---------------------------

def test_linux_bzimage_1vcpu_svm(linux_build, tmp_path):
    poweroff_run(linux_build, tmp_path, "linux-bzimage", "qemu", TIMEOUT_QEMU, "svm")


def test_linux_bzimage_2vcpu_svm(linux_build, tmp_path):
    poweroff_run(linux_build, tmp_path, "linux-bzimage-smp2", "qemu", TIMEOUT_QEMU, "svm")


def test_linux_reboot_svm(linux_build, tmp_path):
    """With linux-guest.reboot the guest ends every boot with `reboot -f`: plinth
    restarts that VM (never stops it), Linux reaches its marker and passes its
    self-check again, and counter runs throughout.  Two boots: through PVH, a quarter
    of the bzImage's instructions."""
    text = config("linux-pvh", "linux-guest.reboot")
    iso = make_image(linux_build, tmp_path, text)

    def enough(t):
        log = test_guests.Log(t)
        if panicked(log) or log.plinth(r"vm (linux|counter): stopped \("):
            return True
        done = [i for i, s in log.guest("linux") if s.startswith("linux-guest: selfcheck")]
        return len(done) >= 2 and len(after(log, "counter", ROUND_RE.pattern, done[1])) >= 1

    status, out = boot_until("qemu", iso, machine_cpus(text), TIMEOUT_QEMU, enough)
    log, problems = test_guests.Log(out), []
    check_plinth(status, log, problems, "svm", ["counter", "linux"])
    markers = check_boots(log, 1, int(configured(text, "linux", "memory").rstrip("M")), 2, problems)
    for _, t in log.guest("counter"):
        if t.startswith("FAIL"):
            problems.append(f"counter: {t}")
    for _, m in log.plinth(r"vm (linux|counter): stopped \((.*)\)$"):
        problems.append(f"{m.group(1)} was stopped ({m.group(2)}); a reboot must restart linux, and counter "
                        "runs on")
    restarts = log.plinth(r"vm linux: .*; restarting \(restart (\d+)(?:, in \d+ ms)?\)$")
    asked = [i for i, t in log.guest("linux") if t == "linux-guest: reboot (linux-guest.reboot)"]
    if len(markers) >= 2:
        if not any(markers[0] < i < markers[1] for i in asked):
            problems.append("linux did not announce its reboot between its first and second marker")
        if not any(markers[0] < i < markers[1] for i, _ in restarts):
            problems.append("plinth logged no 'vm linux: ...; restarting' between linux's first and second "
                            "marker")
        if not after(log, "counter", ROUND_RE.pattern, markers[1]):
            problems.append("counter printed no round after linux's second boot reached its marker")
    verdict(problems, out)


# ---- the recipe itself, without plinth ---------------------------------------------

def read_newc(path):
    """{name: (mode, rdevmajor, rdevminor, data)} of a gzip-compressed newc cpio archive;
    fails the test on a malformed one."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    entries, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"{path}: no newc header at offset {pos}"
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, rmajor, rminor, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name_at = pos + 110
        name = data[name_at:name_at + namesize - 1].decode()
        body_at = (name_at + namesize + 3) & ~3
        body = data[body_at:body_at + filesize]
        assert len(body) == filesize, f"{path}: {name} is truncated"
        pos = (body_at + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, rmajor, rminor, body)


def test_linux_recipe_outputs(linux_build):
    """What `make` built: the pinned package versions recorded, a vmlinux that is an
    x86-64 executable with the PVH entry note, an initramfs holding /init, busybox and
    the /dev/console node."""
    d = os.path.join(linux_build, "guests", "linux")
    problems = []
    with open(os.path.join(d, "packages")) as f:
        pinned = dict(line.split() for line in f if line.strip())
    if not any(re.fullmatch(r"linux-image-\d+\.\d+\.\d+-\d+-amd64", p) for p in pinned) or \
            "busybox-static" not in pinned:
        problems.append(f"packages records {pinned}; expected linux-image-<abi>-amd64 and busybox-static")
    proc = subprocess.run(["readelf", "-h", "-n", os.path.join(d, "vmlinux")], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    text = proc.stdout.decode(errors="replace")
    if "EXEC (Executable file)" not in text or "Advanced Micro Devices X86-64" not in text:
        problems.append("vmlinux is not an x86-64 executable:\n" + text[:2000])
    if not re.search(r"^\s*Xen\s+0x[0-9a-f]+\s+Unknown note type: \(0x00000012\)", text, re.MULTILINE):
        problems.append("vmlinux has no Xen note of type 0x12 (XEN_ELFNOTE_PHYS32_ENTRY)")
    entries = read_newc(os.path.join(d, "initramfs.cpio.gz"))
    want = {"init": stat.S_IFREG, "bin/busybox": stat.S_IFREG, "bin/sh": stat.S_IFLNK,
            "dev/console": stat.S_IFCHR, "proc": stat.S_IFDIR, "sys": stat.S_IFDIR, "dev": stat.S_IFDIR}
    for name, kind in want.items():
        if name not in entries or stat.S_IFMT(entries[name][0]) != kind:
            problems.append(f"initramfs: no {name} of type {kind:o}")
    if "dev/console" in entries and entries["dev/console"][1:3] != (5, 1):
        problems.append(f"initramfs: dev/console is {entries['dev/console'][1:3]}, expected char 5:1")
    if "init" in entries and (not entries["init"][3].startswith(b"#!/bin/sh\n") or not entries["init"][0] & 0o100):
        problems.append("initramfs: init is not an executable #!/bin/sh script")
    if "bin/sh" in entries and entries["bin/sh"][3] != b"busybox":
        problems.append(f"initramfs: bin/sh points to {entries['bin/sh'][3]!r}, expected busybox")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_linux_direct_qemu(linux_build):
    """The same kernel and initramfs booted straight by QEMU (guests/linux/qemu-direct,
    the bench's baseline): the recipe works on a known platform, marker and self-check
    included, and powers off."""
    env = dict(os.environ, PLINTH_BUILD=linux_build)
    proc = subprocess.run([os.path.join(plinthboot.ROOT, "guests", "linux", "qemu-direct"), "--smp", "1",
                           "--timeout", str(TIMEOUT_QEMU)], cwd=plinthboot.ROOT, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=TIMEOUT_QEMU + 60)
    # The guest's tty ends its lines with CR LF.
    out = "\n".join(proc.stdout.decode(errors="replace").splitlines())
    if proc.returncode != 0 or not re.search(r"^qemu-direct: marker [\d.]+ s, selfcheck ok, end [\d.]+ s$",
                                             out, re.MULTILINE):
        pytest.fail(f"qemu-direct failed (status {proc.returncode}):\n{out[-6000:]}", pytrace=False)
    if not re.search(r"^linux-guest: up cpus=1 mem=\d+ clocksource=\S+ date=\d{4}-\d\d-\d\d$", out,
                     re.MULTILINE):
        pytest.fail(f"no well-formed marker line:\n{out[-6000:]}", pytrace=False)
