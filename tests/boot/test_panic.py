"""Exception and panic reports, proven by the boot self-tests.

For each plinth.selftest=<name>, an ISO with that command line is built (tools/mkiso)
from the plinth.elf already in $PLINTH_BUILD (default build/) and booted.  The
serial log must hold the PANIC line naming the exception, the register dump, a stack
trace whose frames name the self-test's function, and the final "PANIC: system
halted"; and the machine must stay halted: the emulator still running (a triple
fault would end it, -no-reboot), every CPU halted (QEMU's monitor), no second
boot banner.  With two CPUs: a panic stops the other CPU through its NMI handler, and
two CPUs faulting together give one whole report.

    make BUILD=build build/plinth.elf
    PLINTH_BUILD=build /usr/bin/python3 -m pytest -v tests/boot/test_panic.py
"""
import os
import re
import socket
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


def monitor_command(path, command):
    """Sends one command to QEMU's human monitor on a unix socket; returns its output."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        out = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if b"\nCPU#" in out or b"HLT=" in out:
                    break
                continue
            if not data:
                break
            out += data
        return out.decode(errors="replace")


def boot(argv, log_path, timeout, done, monitor=None, ready=None, command=None):
    """Runs argv until the serial log contains done (then SETTLE_SECONDS more) or the
    timeout passes; when ready shows up in the log first, sends command to the
    monitor.  Returns (log, exit status or None when it was still running, the
    monitor's "info registers -a" taken then, or "")."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=str(log_path.parent))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if ready and ready in read_log(log_path):
                monitor_command(monitor, command)
                ready = None
            if done in read_log(log_path):
                time.sleep(SETTLE_SECONDS)
                break
            time.sleep(0.2)
        regs = ""
        if monitor and proc.poll() is None:
            regs = monitor_command(monitor, "info registers -a")
        return read_log(log_path), proc.poll(), regs
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def boot_qemu(tmp_path, cmdline, done=HALTED, timeout=90, smp=1, ready=None, command=None):
    """Boots under QEMU; returns (log, status, registers of every CPU at the end)."""
    iso = make_iso(tmp_path, cmdline)
    log_path = tmp_path / "serial.log"
    monitor = tmp_path / "monitor.sock"
    return boot(["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "256",
                 "-smp", str(smp), "-cdrom", str(iso), "-serial", f"file:{log_path}",
                 "-display", "none", "-nic", "none", "-no-reboot",
                 "-monitor", f"unix:{monitor},server,nowait"], log_path, timeout, done, monitor,
                ready, command)


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
    log, status, _ = boot(["bochs", "-q", "-f", str(cfg), "-rc", str(rc)], log_path, timeout, done)
    return log, status


# name -> (the PANIC line's pattern, function the trace must name)
FATAL = {
    "pagefault":      (r"PANIC: Page Fault \(#PF\) on cpu 0", "selftest_pagefault"),
    "ud":             (r"PANIC: Invalid Opcode \(#UD\) on cpu 0", "selftest_ud"),
    "divide":         (r"PANIC: Divide Error \(#DE\) on cpu 0", "selftest_divide"),
    "stack-overflow": (r"PANIC: Double Fault \(#DF\) on cpu 0", "selftest_recurse"),
    "panic":          (r"PANIC: selftest: deliberate panic", "selftest_panic"),
}
FRAME = r"^  #\d+ 0x[0-9a-f]{16} %s[.\w]*\+0x[0-9a-f]+$"


def check_report(name, log, status, header=None, function=None):
    header = header or FATAL[name][0]
    function = function or FATAL[name][1]
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
    if name != "smp-fault":
        # Self-tests run on the boot CPU's guard-paged stack, entered from bsp_main.
        assert re.search(FRAME % "bsp_main", report, re.MULTILINE), "the trace does not reach bsp_main"
    if name not in ("panic", "nmi"):
        assert re.search(r"^  rip 0x[0-9a-f]{16} selftest_\w", report, re.MULTILINE), \
            "the faulting rip is not named"
    if name != "panic":
        for reg in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8 ", "r9 ",
                    "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags",
                    "cr0", "cr2", "cr3", "cr4"):
            assert re.search(r"\b%s=[0-9a-f]{16}\b" % re.escape(reg), report), \
                f"register dump lacks {reg.strip()}"
        assert re.search(r"\bcs=0008 ss=0010 error code=0x[0-9a-f]+|\bcs=0008 ss=0010 error code=0\b",
                         report), "register dump lacks cs/ss/error code"
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


def symbols():
    out = subprocess.run(["nm", "-n", plinth_elf()], check=True, capture_output=True,
                         text=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    return syms


def symbol_at(syms, addr):
    best = None
    for a, name in syms:
        if a <= addr:
            best = name
        else:
            break
    return best


def cpu_states(regs):
    """{cpu index: (rip, halted)} from the monitor's "info registers -a"."""
    states = {}
    for m in re.finditer(r"CPU#(\d+)\s.*?RIP=([0-9a-f]{16}) .*?HLT=(\d)", regs, re.DOTALL):
        states[int(m.group(1))] = (int(m.group(2), 16), m.group(3) == "1")
    return states


def check_halted_cpus(regs, cpus, where):
    """Every CPU halted, each in a function of where (the NMI stop in trap_dispatch, or
    panic_begin for a CPU that lost the race to panic)."""
    print("---- registers ----")
    print(regs)
    states = cpu_states(regs)
    assert sorted(states) == list(range(cpus)), f"monitor showed CPUs {sorted(states)}"
    syms = symbols()
    for cpu, (rip, halted) in states.items():
        assert halted, f"cpu {cpu} is running (rip {rip:#x}), not halted"
    for cpu, (rip, _) in states.items():
        if cpu in where:
            name = symbol_at(syms, rip)
            assert name in where[cpu], f"cpu {cpu} halted in {name}, expected one of {where[cpu]}"


@pytest.mark.parametrize("name", sorted(FATAL))
def test_selftest_qemu(tmp_path, name):
    log, status, regs = boot_qemu(tmp_path, f"plinth.selftest={name}")
    show(log)
    check_report(name, log, status)
    check_halted_cpus(regs, 1, {})


def test_panic_stops_other_cpus_qemu(tmp_path):
    """panic() on the boot CPU: the other CPU, idle until then, is stopped by the NMI
    (smp_stop_other_cpus) and halts in the NMI path of trap_dispatch."""
    log, status, regs = boot_qemu(tmp_path, "plinth.selftest=panic", smp=2)
    show(log)
    check_report("panic", log, status)
    check_halted_cpus(regs, 2, {1: {"trap_dispatch"}})


def test_two_cpus_fault_at_once_qemu(tmp_path):
    """Both CPUs execute ud2 together: one whole report, from one CPU, then both halt."""
    log, status, regs = boot_qemu(tmp_path, "plinth.selftest=smp-fault", smp=2)
    show(log)
    headers = re.findall(r"^PANIC: .*$", log, re.MULTILINE)
    assert len(headers) == 2 and headers[1] == HALTED, f"PANIC lines: {headers}"
    cpu = re.fullmatch(r"PANIC: Invalid Opcode \(#UD\) on cpu ([01])", headers[0])
    assert cpu, f"unexpected report header {headers[0]!r}"
    check_report("smp-fault", log, status, header=re.escape(headers[0]),
                 function="selftest_smp_fault")
    report = log[log.index(headers[0]):log.index(HALTED)].splitlines()[1:]
    stray = [line for line in report if not line.startswith("  ")]
    assert not stray, f"lines inside the report that are not part of it: {stray}"
    loser = 1 - int(cpu.group(1))
    check_halted_cpus(regs, 2, {loser: {"trap_dispatch", "panic_begin"}})


def test_selftest_stack_overflow_bochs(tmp_path):
    log, status = boot_bochs(tmp_path, "plinth.selftest=stack-overflow")
    show(log)
    check_report("stack-overflow", log, status)


def test_nmi_qemu(tmp_path):
    """An NMI from the platform with no panic in progress is fatal, and is reported on
    the NMI's own IST stack."""
    log, status, regs = boot_qemu(tmp_path, "plinth.selftest=nmi",
                                  ready="selftest: nmi: waiting for an NMI", command="nmi")
    show(log)
    header = r"PANIC: Non-Maskable Interrupt \(NMI\) on cpu 0"
    check_report("nmi", log, status, header=header, function="selftest_nmi")
    assert "reported on the IST2 stack" in log
    check_halted_cpus(regs, 1, {})


def test_trace_through_unmapped_frame_qemu(tmp_path):
    """A frame pointer into a guard page: the trace notes where it ends instead of
    faulting, and the report still finishes."""
    log, status, regs = boot_qemu(tmp_path, "plinth.selftest=bad-frame")
    show(log)
    m = re.search(r"ud2 with rbp = (0x[0-9a-f]+), in a guard page", log)
    assert m, "the self-test did not say which rbp it sets"
    assert re.search(r"^PANIC: Invalid Opcode \(#UD\) on cpu 0$", log, re.MULTILINE)
    assert re.search(FRAME % "selftest_bad_frame", log, re.MULTILINE)
    assert f"  (trace ends: frame at {m.group(1)} is not mapped)" in log
    assert log.count("PANIC") == 2 and HALTED in log, "a second fault while reporting"
    assert status is None
    check_halted_cpus(regs, 1, {})


def test_selftest_irq_qemu(tmp_path):
    """Vectors 32..255: a registered one reaches its handler, an unregistered one is
    logged once and ignored, and boot goes on."""
    log, status, _ = boot_qemu(tmp_path, "plinth.selftest=irq", done="boot: done")
    show(log)
    assert "selftest: irq: PASS: vector 0x81 reached its handler once" in log
    unhandled = re.findall(r"trap: vector 0x82 fired on cpu 0 with no handler", log)
    assert len(unhandled) == 1, f"vector 0x82 logged {len(unhandled)} times, expected once"
    assert "boot: done" in log
    assert "PANIC" not in log


def test_selftest_unknown_name_qemu(tmp_path):
    log, status, _ = boot_qemu(tmp_path, "plinth.selftest=no-such-test", done="boot: done")
    show(log)
    assert "selftest: unknown self-test 'no-such-test'" in log
    assert "boot: done" in log
    assert "PANIC" not in log
