"""Exception and panic reports, proven by the boot self-tests.

For each plinth.selftest=<name>, an ISO with that command line is built (tools/mkiso)
from the plinth.elf already in $PLINTH_BUILD (default build/) and booted.  The
serial log must hold the PANIC line naming the exception, the register dump, a stack
trace whose frames name the self-test's function, and the final "PANIC: system
halted"; and the machine must stay halted: the emulator still running (a triple
fault would end it, -no-reboot) and no second boot banner.

    make BUILD=build build/plinth.elf
    PLINTH_BUILD=build /usr/bin/python3 -m pytest -v tests/boot/test_panic.py
"""
import os
import re
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HALTED = "PANIC: system halted"
BANNER = re.compile(r"\] plinth \d+\.\d+\.\d+\s*$", re.MULTILINE)
# After the halt line: long enough for a reboot to print a new banner through GRUB.
SETTLE_SECONDS = 3


def plinth_elf():
    build = os.environ.get("PLINTH_BUILD", "build")
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    elf = os.path.join(build, "plinth.elf")
    if not os.path.exists(elf):
        pytest.fail(f"{elf} does not exist: build it first (make BUILD={build} {elf}) "
                    f"or point PLINTH_BUILD at a build directory", pytrace=False)
    return elf


def make_iso(tmp_path, cmdline):
    iso = tmp_path / "plinth.iso"
    proc = subprocess.run([os.path.join(ROOT, "tools", "mkiso"), plinth_elf(),
                           os.path.join(ROOT, "plinth.cfg"), str(iso), cmdline],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        pytest.fail(f"tools/mkiso failed (status {proc.returncode}):\n"
                    f"{proc.stdout.decode(errors='replace')[-4000:]}", pytrace=False)
    return iso


def read_log(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace").replace("\r\n", "\n")
    except FileNotFoundError:
        return ""


def boot(argv, log_path, timeout, done):
    """Runs argv until the serial log contains done (then SETTLE_SECONDS more) or the
    timeout passes.  Returns (log, exit status or None when it was still running)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=str(log_path.parent))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if done in read_log(log_path):
                time.sleep(SETTLE_SECONDS)
                break
            time.sleep(0.2)
        return read_log(log_path), proc.poll()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def boot_qemu(tmp_path, cmdline, done=HALTED, timeout=90):
    iso = make_iso(tmp_path, cmdline)
    log_path = tmp_path / "serial.log"
    return boot(["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "256",
                 "-cdrom", str(iso), "-serial", f"file:{log_path}", "-display", "none",
                 "-nic", "none", "-no-reboot"], log_path, timeout, done)


def boot_bochs(tmp_path, cmdline, done=HALTED, timeout=240):
    iso = make_iso(tmp_path, cmdline)
    log_path = tmp_path / "serial.log"
    rc = tmp_path / "bochs.rc"
    rc.write_text("c\n")
    cfg = tmp_path / "bochsrc"
    cfg.write_text(f"""cpu: model=corei7_haswell_4770, count=1
memory: guest=256, host=256
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
ata0-master: type=cdrom, path={iso}, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev={log_path}
display_library: term
log: /dev/null
""")
    return boot(["bochs", "-q", "-f", str(cfg), "-rc", str(rc)], log_path, timeout, done)


# name -> (the PANIC line's pattern, function the trace must name)
FATAL = {
    "pagefault":      (r"PANIC: Page Fault \(#PF\) on cpu 0", "selftest_pagefault"),
    "ud":             (r"PANIC: Invalid Opcode \(#UD\) on cpu 0", "selftest_ud"),
    "divide":         (r"PANIC: Divide Error \(#DE\) on cpu 0", "selftest_divide"),
    "stack-overflow": (r"PANIC: Double Fault \(#DF\) on cpu 0", "selftest_recurse"),
    "panic":          (r"PANIC: selftest: deliberate panic", "selftest_panic"),
}
FRAME = r"^  #\d+ 0x[0-9a-f]{16} %s[.\w]*\+0x[0-9a-f]+$"


def check_report(name, log, status):
    header, function = FATAL[name]
    assert re.search(header, log), f"no line matching {header!r}"
    assert HALTED in log, f"no {HALTED!r} line"
    assert status is None, (f"the emulator exited (status {status}) instead of staying "
                            "halted: a triple fault or a reboot")
    banners = BANNER.findall(log)
    assert len(banners) == 1, f"{len(banners)} boot banners: the machine rebooted"
    report = log[re.search(header, log).start():]
    assert re.search(r"^  stack trace:$", report, re.MULTILINE), "no stack trace"
    assert re.search(FRAME % re.escape(function), report, re.MULTILINE), \
        f"no stack trace frame naming {function}"
    assert re.search(FRAME % "kmain", report, re.MULTILINE), "the trace does not reach kmain"
    if name != "panic":
        for reg in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8 ", "r9 ",
                    "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags",
                    "cr0", "cr2", "cr3", "cr4"):
            assert re.search(r"\b%s=[0-9a-f]{16}\b" % re.escape(reg), report), \
                f"register dump lacks {reg.strip()}"
        assert re.search(r"\bcs=0008 ss=0010 error code=0x[0-9a-f]+|\bcs=0008 ss=0010 error code=0\b",
                         report), "register dump lacks cs/ss/error code"
        assert re.search(r"^  rip 0x[0-9a-f]{16} selftest_\w", report, re.MULTILINE), \
            "the faulting rip is not named"
    if name == "pagefault":
        m = re.search(r"reading (0x[0-9a-f]+), in a stack's guard page", log)
        assert m, "the self-test did not say which address it reads"
        assert f"read of {m.group(1)}: page not present" in report
        assert f"cr2={int(m.group(1), 16):016x}" in report
    if name == "stack-overflow":
        # The #PF on the full stack could not be delivered on it; #DF must have come
        # on its own stack, and the trace must show the recursion and what began it.
        assert "reported on the IST1 stack" in report
        assert re.search(r"^  \.\.\. the frame above repeats \d+ more times$", report, re.MULTILINE)
        assert re.search(FRAME % "selftest_stack_overflow", report, re.MULTILINE)


def show(log):
    print("---- serial log ----")
    print(log)


@pytest.mark.parametrize("name", sorted(FATAL))
def test_selftest_qemu(tmp_path, name):
    log, status = boot_qemu(tmp_path, f"plinth.selftest={name}")
    show(log)
    check_report(name, log, status)


def test_selftest_stack_overflow_bochs(tmp_path):
    log, status = boot_bochs(tmp_path, "plinth.selftest=stack-overflow")
    show(log)
    check_report("stack-overflow", log, status)


def test_selftest_irq_qemu(tmp_path):
    """Vectors 32..255: a registered one reaches its handler, an unregistered one is
    logged once and ignored, and boot goes on."""
    log, status = boot_qemu(tmp_path, "plinth.selftest=irq", done="boot: done")
    show(log)
    assert "selftest: irq: PASS: vector 0x81 reached its handler once" in log
    unhandled = re.findall(r"trap: vector 0x82 fired on cpu 0 with no handler", log)
    assert len(unhandled) == 1, f"vector 0x82 logged {len(unhandled)} times, expected once"
    assert "boot: done" in log
    assert "PANIC" not in log


def test_selftest_unknown_name_qemu(tmp_path):
    log, status = boot_qemu(tmp_path, "plinth.selftest=no-such-test", done="boot: done")
    show(log)
    assert "selftest: unknown self-test 'no-such-test'" in log
    assert "boot: done" in log
    assert "PANIC" not in log
