"""A hostile virtio-blk driver (guests/virtioblk.c) against plinth's virtio-blk
device (vmm/disk.c on the modern PCI transport and the virtqueue engine), beside
the hostile suite's neighbour (guests/hostile/neighbour.c), on Bochs (VT-x) and on
QEMU's TCG (AMD-V), one CPU: guests/configs/virtio-hostile.cfg.

The guest finds the function on bus 0, then for each hostile case resets and
initialises the device, breaks its request queue one way (a looping chain, next or
head past the table, buffers outside RAM, in BAR 0 and wrapping past 2^64, a
chain of more than 2^32 - 1 bytes, avail->idx too far ahead, bad indirect
descriptors, rings outside RAM or in BAR 0), notifies, and checks that
DEVICE_NEEDS_RESET is set, used->idx did not move, nothing in its memory was
written, and that after a reset a valid read of sector 0 returns the image's bytes.
Two more cases are bad requests that must not break the queue (IOERR, the device
goes on): reads past the end, writes to the read-only disk.  It prints one line per
case ("virtioblk: case NAME: ok (...)" or "... FAILED <why>") and "virtioblk: all N
cases ok".

The test checks, besides the guest's lines:
- plinth logged exactly one "the driver broke its request queue (<reason>)" warning
  per hostile case, with the reason that case provokes, while that case ran (none
  for the bad requests), and nothing else about the VM but its routine lines;
- no plinth error or panic, and the run powered off cleanly;
- the VM was never stopped by plinth: it ran to its own DONE and halted itself;
- the neighbour's memory stayed intact and it printed rounds after the last case.
"""
import os
import re

import pytest

import plinthboot
import test_guests
from test_guests import HALTED, Log, check_run, check_vm, verdict
from test_hostile import ROUTINE, neighbour_rounds

CONFIG = os.path.join(test_guests.CONFIGS, "virtio-hostile.cfg")
VMS = ["neighbour", "virtioblk"]
# Bochs runs the whole scenario in about 10 s of emulated time, TCG in 2 s.
TIMEOUT = {"bochs": 240, "qemu": 120}
BACKEND = {"bochs": r"virt: vmx ept", "qemu": r"svm: backend svm in use: NPT"}

# Each hostile case, in the guest's order, and the reason plinth's warning must give
# (vq_error_name() of the error the case provokes, vmm/virtio/virtqueue.c).
HOSTILE = {
    "loop": "descriptor chain loops",
    "next-range": "next descriptor outside its table",
    "buf-outside-ram": "buffer outside guest RAM",
    "buf-in-bar": "buffer outside guest RAM",
    "len-wrap": "buffer outside guest RAM",
    "chain-bytes": "chain longer than the length limit",
    "avail-idx": "more chains available than the queue holds",
    "head-range": "chain head outside the descriptor table",
    "indirect-len": "indirect table length bad",
    "indirect-next": "indirect descriptor with NEXT",
    "indirect-unnegotiated": "indirect descriptor without VIRTIO_F_INDIRECT_DESC",
    "ring-outside-ram": "ring outside guest RAM",
    "ring-in-bar": "ring outside guest RAM",
}
# Bad requests: IOERR, the queue keeps working, nothing logged.
REQUESTS = ["past-end", "ro-write"]
CASES = list(HOSTILE) + REQUESTS

CASE_RE = re.compile(r"^virtioblk: case (\S+): (ok \(.*\)|FAILED .*)$")
BROKE_RE = r"warning: vm virtioblk: vda: the driver broke its request queue \((.*)\); the device needs a reset$"
ATTACHED_RE = r"vm virtioblk: vda is guests/virtioblk\.img \(64 KiB, ro\) at PCI 00:\d\d\.0$"
# The disk's counters, logged when the VM stops.
COUNTERS_RE = r"vm virtioblk: vda: \d+ requests \(.*, needs reset$|vm virtioblk: vda: \d+ requests \(.*interrupts$"

guest_build = test_guests.guest_build


def check_cases(log, problems):
    """Every case's line, in order and ok, and plinth's one warning per hostile case
    between the line before it and its own."""
    lines = log.guest("virtioblk")
    start = log.first("virtioblk", r"^INFO virtioblk: \d+ hostile cases")
    if start is None:
        problems.append("virtioblk: no 'INFO virtioblk: N hostile cases' line: it never reached the cases")
        return None
    results = [(i, m.group(1), m.group(2)) for i, t in lines for m in [CASE_RE.match(t)] if m]
    names = [n for _, n, _ in results]
    if names != CASES:
        problems.append(f"virtioblk: case lines {names}, expected {CASES}")
    for _, name, what in results:
        if not what.startswith("ok"):
            problems.append(f"virtioblk: case {name}: {what}")
        elif name in HOSTILE and what != "ok (needs reset)":
            problems.append(f"virtioblk: case {name}: '{what}', expected 'ok (needs reset)'")
    if f"virtioblk: all {len(CASES)} cases ok" not in [t for _, t in lines]:
        problems.append(f"virtioblk: no 'virtioblk: all {len(CASES)} cases ok' line")

    warnings = log.plinth(BROKE_RE)
    prev = start
    for at, name, _ in results:
        during = [m.group(1) for i, m in warnings if prev < i < at]
        want = [HOSTILE[name]] if name in HOSTILE else []
        if during != want:
            problems.append(f"virtioblk: case {name}: plinth logged {during or 'no'} 'the driver broke its request "
                            f"queue' warning(s) while it ran, expected {want or 'none'}")
        prev = at
    stray = [m.group(1) for i, m in warnings if i < start or i > prev]
    if stray:
        problems.append(f"virtioblk: queue warnings outside the cases: {stray}")
    if len(warnings) != len(HOSTILE):
        problems.append(f"plinth logged {len(warnings)} 'the driver broke its request queue' warnings, "
                        f"expected {len(HOSTILE)} (one per hostile case)")
    return results[-1][0] if results else None


def check_plinth_lines(log, problems):
    """About each VM plinth says only its routine lines, vda's attach line and the
    queue warnings."""
    if not log.plinth(ATTACHED_RE):
        problems.append("plinth did not log 'vm virtioblk: vda is guests/virtioblk.img (64 KiB, ro) at PCI ...'")
    for vm in VMS:
        extra = [log.lines[i] for i, _ in log.plinth(rf"vm {re.escape(vm)}\b")
                 if not ROUTINE.search(log.lines[i]) and not re.search(BROKE_RE, log.lines[i])
                 and not re.search(ATTACHED_RE, log.lines[i]) and not re.search(COUNTERS_RE, log.lines[i])]
        if extra:
            problems.append(f"{vm}: plinth logged more about it than expected: {extra[:6]}")


@pytest.mark.parametrize("emulator", ["bochs", "qemu"])
def test_virtio_hostile(guest_build, tmp_path, emulator):
    """Every way of breaking the request queue sets DEVICE_NEEDS_RESET, is logged
    once and writes nothing; a reset brings the device back; bad requests get IOERR;
    the VM and its neighbour run to their end."""
    with open(CONFIG) as f:
        text = neighbour_rounds(f.read(), emulator)
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(text)
    iso = str(tmp_path / "virtio-hostile.iso")
    test_guests.make_iso(guest_build, str(cfg), iso)
    status, out = plinthboot.boot(emulator, "bios", smp=1, image=iso, timeout=TIMEOUT[emulator])
    log, problems = Log(out), []
    if not plinthboot.find(BACKEND[emulator], out):
        problems.append(f"no '{BACKEND[emulator]}' line: plinth did not run the backend this run is for")
    check_run(status, log, VMS, problems)
    # The guest ran to its own end: DONE, then its cli; hlt, which is the only stop.
    check_vm(log, "virtioblk", problems, spec=dict(passes=["virtioblk-cases"], done=True, stop=HALTED))
    check_vm(log, "neighbour", problems, spec=dict(passes=["neighbour-memory-intact", "neighbour-ran-to-the-end"],
                                                   done=True, stop=HALTED))
    last_case = check_cases(log, problems)
    check_plinth_lines(log, problems)
    rounds = [i for i, t in log.guest("neighbour") if t.startswith("INFO neighbour: round")]
    if last_case is not None and not any(i > last_case for i in rounds):
        problems.append("the neighbour printed no round after virtioblk's last case: the run shows nothing about "
                        "the attacks leaving it running; give it more rounds")
    verdict(problems, log)
