"""Boot tests: build the real images, boot them under QEMU (UEFI and BIOS) and Bochs,
and check plinth's boot banner on the serial log and a clean ACPI poweroff.

The banner plinth prints (each line after a "[    0.123456] " timestamp):
    plinth <version>
    boot: uefi ...  |  boot: multiboot2 via GRUB ...
    cpu: <vendor> <model>
    virt: vmx ept vpid ug ...  |  virt: svm npt ...
    smp: <N> CPUs online
    mem: <total> MiB total, <free> MiB free
    power: off                              (then the ACPI poweroff)

The last tests check tools/run itself (exit status, streaming, killing) against a
fake emulator, so that a boot test's verdict can be trusted.
"""
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import plinthboot
from plinthboot import OTHER, PANIC, POWEROFF, STATUS_NAMES, TIMEOUT


def plinth_version():
    with open(os.path.join(plinthboot.ROOT, "Makefile")) as f:
        return re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.MULTILINE).group(1)


class Case:
    def __init__(self, emulator, firmware, smp, memory, timeout):
        self.emulator, self.firmware, self.smp = emulator, firmware, smp
        self.memory, self.timeout = memory, timeout
        self.id = f"{emulator}-{firmware}-smp{smp}"


# Timeouts: generous next to what a boot to poweroff takes on a 2-core machine (QEMU
# TCG: UEFI ~10 s, BIOS ~1 s; Bochs ~3 s, but ~30 M instructions/s once guests run),
# yet small enough that a run where every boot hangs stays within CI's 20 minutes.
# Few Bochs boots, mostly with one CPU.
CASES = [
    Case("qemu", "uefi", 1, 512, 60),
    Case("qemu", "uefi", 2, 512, 60),
    Case("qemu", "uefi", 4, 512, 90),
    Case("qemu", "bios", 2, 512, 60),
    Case("bochs", "bios", 1, 256, 150),
    Case("bochs", "bios", 2, 256, 200),
]


def expected_virt(case):
    """(backend, required features) the virt: line must show for this emulator."""
    if case.emulator == "bochs":
        # The Haswell model: VT-x with EPT and unrestricted guest (DESIGN.md, Testbeds).
        return {"vmx": {"ept", "ug"}}
    return {"svm": {"npt"}}  # TCG -cpu max offers AMD SVM with nested paging


# The guests the default plinth.cfg starts, and the line each prints last.
DEFAULT_GUESTS = {"cpuid": "DONE cpuid", "counter": "DONE counter"}


def check_default_guests(log):
    """The default image's guests ran on whichever backend this emulator offers (VT-x
    under Bochs, AMD-V under QEMU TCG), passed their checks and were stopped cleanly."""
    for vm, last in DEFAULT_GUESTS.items():
        assert plinthboot.find(rf"vm {vm}: started \(", log), f"guest {vm} was not started"
        assert plinthboot.find(rf"^\[{vm}\] {last}\r?$", log), f"guest {vm} did not reach '{last}'"
        fail = plinthboot.find(rf"^\[{vm}\] FAIL .*$", log)
        assert fail is None, f"guest {vm} failed a check: {fail.group(0)}"
        assert plinthboot.find(rf"vm {vm}: stopped \(halted with interrupts disabled", log), \
            f"guest {vm} was not stopped the way a finished test guest is"


def check_banner(case, status, log):
    """Every assertion a good boot must pass; the log is printed by the caller."""
    assert status == POWEROFF, (f"expected a clean poweroff, got {STATUS_NAMES.get(status, status)} "
                                f"(tools/run status {status})")
    panic = plinthboot.find(r"^.*PANIC.*$", log)
    assert panic is None, f"plinth panicked: {panic.group(0)}"

    version = plinth_version()
    assert plinthboot.find(rf"plinth {re.escape(version)}\b", log), f"no 'plinth {version}' line"

    if case.firmware == "uefi":
        assert plinthboot.find(r"boot: uefi\b", log), "no 'boot: uefi' line"
    else:
        assert plinthboot.find(r"boot: multiboot2 via GRUB\b", log), \
            "no 'boot: multiboot2 via GRUB' line"

    cpu = plinthboot.find(r"cpu: (\S+) (\S.*)$", log)
    assert cpu, "no 'cpu: <vendor> <model>' line"

    virt = plinthboot.find(r"virt: (\S+)(.*)$", log)
    assert virt, "no 'virt: ...' line"
    backend, words = virt.group(1), set(virt.group(2).split())
    wanted = expected_virt(case)
    assert backend in wanted, f"virt backend {backend!r}, expected one of {sorted(wanted)}: {virt.group(0)}"
    missing = wanted[backend] - words
    assert not missing, f"virt line lacks {sorted(missing)}: {virt.group(0)}"

    smp = plinthboot.find(r"smp: (\d+) CPUs? online", log)
    assert smp, "no 'smp: <N> CPUs online' line"
    assert int(smp.group(1)) == case.smp, \
        f"{smp.group(1)} CPUs online, the emulator has {case.smp}: {smp.group(0)}"

    mem = plinthboot.find(r"mem: (\d+) MiB total, (\d+) MiB free", log)
    assert mem, "no 'mem: <total> MiB total, <free> MiB free' line"
    total, free = int(mem.group(1)), int(mem.group(2))
    assert 0 < free <= total, f"free {free} MiB must be in (0, total {total} MiB]: {mem.group(0)}"
    assert case.memory // 2 <= total <= case.memory, \
        f"total {total} MiB is implausible for a {case.memory} MiB machine: {mem.group(0)}"

    check_default_guests(log)

    order = ["plinth ", "boot: ", "cpu: ", "virt: ", "smp: ", "mem: "]
    at = {p: plinthboot.line_index(re.escape(p), log) for p in order}
    off = plinthboot.line_index(r"power: off", log)
    assert off is not None, "no 'power: off' line"
    for p in order:
        assert at[p] < off, f"'{p.strip()}' printed after 'power: off'"
        assert at["plinth "] <= at[p], f"'{p.strip()}' printed before the 'plinth' line"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_boot(case, plinth_build):
    t0 = time.monotonic()
    status, log = plinthboot.boot(case.emulator, case.firmware, smp=case.smp,
                                  memory=case.memory, timeout=case.timeout)
    # pytest shows captured output only when the test fails: the whole serial log.
    print(f"==== serial log of {case.id} ({time.monotonic() - t0:.1f} s, "
          f"status {status}: {STATUS_NAMES.get(status, '?')}) ====")
    print(log)
    check_banner(case, status, log)


def make_iso(plinth_build, tmp_path, config, cmdline=""):
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(config)
    iso = tmp_path / "plinth-test.iso"
    mk = subprocess.run([os.path.join(plinthboot.ROOT, "tools", "mkiso"),
                         os.path.join(plinth_build, "plinth.elf"), str(cfg), str(iso), cmdline],
                        cwd=plinthboot.ROOT, stdin=subprocess.DEVNULL, capture_output=True)
    assert mk.returncode == 0, "tools/mkiso failed:\n" + mk.stderr.decode(errors="replace")
    return str(iso)


def test_default_config_runs_linux_beside_a_test_guest(plinth_build, tmp_path):
    """The default plinth.cfg (what `make run` boots): Debian's kernel on two vCPUs
    reaches its userspace and passes its self-check while the counter test guest runs
    beside it.  The config is used as shipped but for `linux-guest.stay` (an
    interactive shell), so that Linux powers off and plinth after it."""
    with open(os.path.join(plinthboot.ROOT, "plinth.cfg")) as f:
        config = f.read()
    assert " linux-guest.stay" in config, "plinth.cfg no longer gives a shell: update this test"
    iso = make_iso(plinth_build, tmp_path, config.replace(" linux-guest.stay", ""))
    status, log = plinthboot.boot("qemu", "bios", smp=2, image=iso, timeout=300)
    print(log)
    assert status == POWEROFF, f"expected a clean poweroff, got {STATUS_NAMES.get(status, status)}"
    up = plinthboot.find(r"^\[linux\] linux-guest: up cpus=(\d+) mem=\d+ clocksource=(\S+) date=\S+", log)
    assert up, "Linux did not reach its marker line"
    assert up.group(1) == "2" and up.group(2) == "tsc", f"unexpected marker: {up.group(0)}"
    assert plinthboot.find(r"^\[linux\] linux-guest: selfcheck ok", log), "Linux's self-check did not pass"
    assert plinthboot.find(r"^\[counter\] DONE counter", log), "the test guest beside Linux did not finish"
    assert plinthboot.find(r"vm linux: stopped \(the guest powered off", log), \
        "Linux's poweroff did not stop its VM"
    assert not plinthboot.find(r"^\[counter\] FAIL", log), "the test guest failed a check"


def test_images_follow_the_config_asked_for(plinth_build):
    """`make image CONFIG=other.cfg` and then `make run` boots plinth.cfg again: the
    images record the config they were made from and are made again when another is
    asked for, though no file changed."""
    def make(*args):
        proc = subprocess.run(["make", "-C", plinthboot.ROOT, f"BUILD={plinth_build}", *args],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = proc.stdout.decode(errors="replace")
        assert proc.returncode == 0, f"make {' '.join(args)} failed:\n{out[-4000:]}"
        return out

    other = "guests/configs/banner.cfg"
    try:
        make("image", f"CONFIG={other}")
        with open(os.path.join(plinth_build, "config.used")) as f:
            assert f.read().strip() == os.path.join(plinthboot.ROOT, other)
        again = make("-n", "image", f"CONFIG={other}")
        assert "tools/mkiso" not in again, f"the images of {other} were made again for nothing:\n{again}"
        plan = make("-n", "image")
        for tool in ("tools/mkiso", "tools/mkusb"):
            lines = [l for l in plan.splitlines() if tool in l and "/test/" not in l]
            assert lines and all(l.split()[-2] == "plinth.cfg" for l in lines), \
                f"after CONFIG={other}, `make image` does not make the images from plinth.cfg:\n{plan}"
    finally:
        make("image")
    with open(os.path.join(plinth_build, "config.used")) as f:
        assert f.read().strip() == os.path.join(plinthboot.ROOT, "plinth.cfg")


def test_panic_is_reported(plinth_build, tmp_path):
    """A real panic (the core's deliberate-panic self-test): tools/run says so at once,
    with the report that follows the PANIC line in the log."""
    iso = make_iso(plinth_build, tmp_path, "[plinth]\non_idle = poweroff\n",
                   "plinth.selftest=panic")
    t0 = time.monotonic()
    status, log = plinthboot.boot("qemu", "bios", smp=1, image=iso, timeout=60)
    elapsed = time.monotonic() - t0
    print(log)
    assert status == PANIC, f"expected a panic, got {STATUS_NAMES.get(status, status)}"
    assert plinthboot.find(r"PANIC: selftest: deliberate panic", log), "no PANIC line"
    assert plinthboot.find(r"stack trace:", log), "the report after the PANIC line was cut off"
    assert elapsed < 30, f"the panic was not acted on at once ({elapsed:.1f} s)"


def test_on_idle_stay(plinth_build, tmp_path):
    """With on_idle = stay plinth keeps running after the banner: no poweroff, no panic,
    so tools/run ends on its timeout."""
    iso = make_iso(plinth_build, tmp_path, "[plinth]\non_idle = stay\n")
    status, log = plinthboot.boot("qemu", "bios", smp=1, image=iso, timeout=20)
    print(log)
    assert status == TIMEOUT, f"expected plinth to stay up, got {STATUS_NAMES.get(status, status)}"
    assert plinthboot.find(r"mem: \d+ MiB total", log), "the banner did not get to the 'mem:' line"
    assert not plinthboot.find(r"power: off", log), "plinth powered off despite on_idle = stay"
    assert not plinthboot.find(r"PANIC", log), "plinth panicked"


# ---- tools/run against a fake emulator --------------------------------------------

FAKE_EMULATOR = textwrap.dedent("""\
    #!/usr/bin/env python3
    # Stands in for qemu-system-x86_64 / bochs-bin: writes a scripted serial log.
    import os, re, signal, sys, time
    args = sys.argv[1:]
    if "-serial" in args:
        log = args[args.index("-serial") + 1].split("file:", 1)[1]
    else:
        rc = open(args[args.index("-f") + 1]).read()
        log = re.search(r'com1:.*dev="([^"]+)"', rc).group(1)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as Bochs does
    script = os.environ["FAKE_PLINTH"]
    out = open(log, "ab", buffering=0)
    def say(s, delay=0.2):
        out.write(s.encode())
        time.sleep(delay)
    say("[    0.000001] plinth 0.1.0\\n")
    say("[    0.000002] boot: multiboot2 via GRUB test\\n")
    if script == "poweroff":
        say("[    0.000003] power: off\\n")
        sys.exit(1 if "-f" in args else 0)  # Bochs exits 1 even when clean
    if script == "poweroff-no-newline":
        say("[    0.000003] power: off", 0)
        sys.exit(0)
    if script == "panic":
        say("PANIC: on purpose\\n")
        say("  trace: fake_function+0x10\\n")
        time.sleep(120)
    if script == "hang":
        time.sleep(120)
    if script == "die":
        sys.exit(1)
""")


@pytest.fixture
def fake_emulator(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("qemu-system-x86_64", "bochs-bin"):
        exe = bindir / name
        exe.write_text(FAKE_EMULATOR)
        exe.chmod(0o755)
    image = tmp_path / "fake.iso"
    image.write_bytes(b"\0" * 4096)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")

    def run(emulator, script, timeout=30):
        env = dict(os.environ, FAKE_PLINTH=script)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, plinthboot.RUN, emulator, "--firmware", "bios",
                               "--image", str(image), "--timeout", str(timeout)],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
        print(proc.stderr.decode(errors="replace"))
        return proc.returncode, proc.stdout.decode(errors="replace"), time.monotonic() - t0
    return run


@pytest.mark.parametrize("script,expected", [
    pytest.param(script, expected, id=script) for script, expected in [
        ("poweroff", POWEROFF), ("poweroff-no-newline", POWEROFF), ("panic", PANIC),
        ("hang", TIMEOUT), ("die", OTHER)]])
@pytest.mark.parametrize("emulator", ["qemu", "bochs"])
def test_run_tool_status(fake_emulator, emulator, script, expected):
    status, out, elapsed = fake_emulator(emulator, script, timeout=5)
    assert status == expected, f"tools/run said {status}, expected {expected}; output:\n{out}"
    # The serial log streams to stdout.
    assert "plinth 0.1.0" in out and "boot: multiboot2 via GRUB test" in out
    if script == "panic":
        assert "trace: fake_function" in out, "the lines after the panic line were cut off"
        assert elapsed < 5, f"the emulator was not stopped at once after the panic ({elapsed:.1f} s)"
    if script == "hang":
        assert 5 <= elapsed < 15, f"timeout of 5 s took {elapsed:.1f} s"
