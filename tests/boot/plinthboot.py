"""Boot helpers shared by the boot tests: run a plinth image under an emulator
through tools/run and hand back how the run ended and the serial log.

    status, log = boot("qemu", "uefi", smp=2)

status is tools/run's exit status (POWEROFF, OTHER, PANIC, TIMEOUT below); log is
the serial output as text.  tools/run's own messages (which accelerator, why it
gave up) go to stderr, which pytest shows next to a failing test.
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "tools", "run")

POWEROFF, OTHER, PANIC, TIMEOUT = 0, 1, 2, 3
STATUS_NAMES = {POWEROFF: "clean poweroff", OTHER: "emulator ended without poweroff",
                PANIC: "panic", TIMEOUT: "timeout"}


def build_dir():
    """The build directory the tests boot from: $PLINTH_BUILD, else build/."""
    path = os.environ.get("PLINTH_BUILD") or "build"
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def default_image(firmware):
    """The banner image (guests/configs/banner.cfg: two quick test guests), which the
    Makefile builds beside the default config's images."""
    name = "plinth-usb.img" if firmware == "uefi" else "plinth.iso"
    return os.path.join(build_dir(), "test", name)


def boot(emulator, firmware, smp=1, image=None, timeout=120, memory=None, extra=()):
    """Boots image (default: the build's USB image for uefi, its ISO for bios) and
    returns (status, log)."""
    image = image or default_image(firmware)
    with tempfile.TemporaryDirectory(prefix="plinth-boot-") as tmp:
        log_path = os.path.join(tmp, "serial.log")
        cmd = [sys.executable, RUN, emulator, "--firmware", firmware, "--image", image,
               "--smp", str(smp), "--timeout", str(timeout), "--log", log_path]
        if memory:
            cmd += ["--memory", str(memory)]
        if extra:
            cmd += ["--extra", *extra]
        # tools/run bounds the run itself; the margin here only catches a hung tools/run.
        proc = subprocess.run(cmd, cwd=ROOT, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=timeout + 60 if timeout else None)
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        with open(log_path, "rb") as f:
            log = f.read().decode(errors="replace")
    return proc.returncode, log


def find(pattern, log):
    """The first match of pattern in the log, searched line by line (log lines start
    with a "[    0.123456] " timestamp, so patterns are not anchored)."""
    return re.search(pattern, log, re.MULTILINE)


def line_index(pattern, log):
    """Index of the first log line that pattern matches, or None."""
    rx = re.compile(pattern)
    for i, line in enumerate(log.splitlines()):
        if rx.search(line):
            return i
    return None
