"""Specs of the hostile-devices scenario's attacks (test_hostile.py), and the log checks
that no guest line shows: the resets' restarts, the UART flood's lines and the
neighbour's beside them, loopback output kept off the console."""
import re

from test_guests import HALTED

DEV_UART = ["dev-uart-scratch", "dev-uart-word-write-msr-scr", "dev-uart-word-write-past-end",
            "dev-uart-dword-read-past-end", "dev-uart-word-read-lcr-mcr", "dev-uart-ier-mask",
            "dev-uart-divisor-latch", "dev-uart-dlab-off-ier", "dev-uart-mcr-mask", "dev-uart-loop-msr-inputs",
            "dev-uart-loop-msr-deltas", "dev-uart-msr-deltas-clear", "dev-uart-loop-lsr-dr", "dev-uart-loop-byte",
            "dev-uart-nofifo-overrun", "dev-uart-lsr-read-clears-oe", "dev-uart-nofifo-last-byte",
            "dev-uart-rx-empty", "dev-uart-iir-fifo", "dev-uart-fifo-16-no-oe", "dev-uart-fifo-17-oe",
            "dev-uart-fifo-oe-once", "dev-uart-fifo-order", "dev-uart-fifo-drained", "dev-uart-iir-below-trigger",
            "dev-uart-iir-rda", "dev-uart-iir-rls", "dev-uart-iir-rls-cleared", "dev-uart-iir-drained",
            "dev-uart-iir-thre", "dev-uart-iir-thre-acked", "dev-uart-rep-outsb-loop-oe", "dev-uart-rep-insb-loop"]

ATTACKS = {
    "dev_portsweep": dict(passes=["dev-ports-unclaimed-read-ones", "dev-ports-decoded-answer",
                                  "dev-ports-wide-reads-ones", "dev-ports-writes-dropped", "dev-ports-rep-insb-64k",
                                  "dev-ports-rep-insl-64k", "dev-ports-rep-outsb-64k"],
                          done=True, stop=HALTED),
    "dev_pcisweep": dict(passes=["dev-pci-sweep", "dev-pci-absent-all-ones", "dev-pci-bridge-read-only",
                                 "dev-pci-data-lanes", "dev-pci-straddle-ones", "dev-pci-address-register",
                                 "dev-pci-string-io"],
                         done=True, stop=HALTED),
    # A dword read across the IOAPIC page's end: plinth's emulator takes no access
    # that spills into a page whose translation the exit did not give, and stops the
    # VM naming it (the exit may name the device page or the one after it).
    "dev_ioapic": dict(passes=["dev-ioapic-every-index", "dev-ioapic-regsel-8-bits", "dev-ioapic-readonly-writes",
                               "dev-ioapic-redir-bits", "dev-ioapic-narrow-unaligned", "dev-ioapic-rest-of-page"],
                       done=False, rip_from=r"straddling read at rip (0x[0-9a-f]+)",
                       stop=r"(cannot emulate the read of device memory 0xfec00ff[ef] at rip {rip} \(bytes [0-9a-f ]+; "
                            r"fetch: ok\): operand address does not match the faulting access|read of guest-physical "
                            r"0xfec01000 outside its memory at rip {rip})"),
    "dev_lapic": dict(passes=["dev-lapic-every-dword", "dev-lapic-narrow-reads", "dev-lapic-narrow-writes",
                              "dev-lapic-reserved-write-esr", "dev-lapic-random-writes"],
                      done=True, stop=HALTED),
    "dev_uart": dict(passes=DEV_UART, done=True, stop=HALTED),
    "dev_legacy": dict(passes=["dev-pic-registers", "dev-pic-elcr-reserved", "dev-pit-latch", "dev-cmos-ram",
                               "dev-rtc-cd-read-only", "dev-kbc-porta", "dev-pm-block", "dev-pm-sleep-wakes"],
                       done=True, stop=HALTED),
    # Four resets (one restart line each), then S5.
    "dev_reset": dict(passes=["dev-reset-cf9", "dev-reset-port92-rep-outsb", "dev-reset-kbc-pulse",
                              "dev-reset-kbc-output-port"],
                      done=False, stop=r"the guest powered off \(ACPI S5\)", log_max=4),
    "dev_uart_flood": dict(passes=["dev-uart-flood-paced"], done=True, stop=HALTED),
}


def extra_checks(log, problems, emulator):
    # dev_reset: restarted by each of its four resets, in order, and booted five times.
    restarts = [int(m.group(1)) for _, m in
                log.plinth(r"vm dev_reset: the guest reset its machine; restarting \(restart (\d+)(?:, in \d+ ms)?\)$")]
    if restarts != [1, 2, 3, 4]:
        problems.append(f"dev_reset: restarts logged {restarts}, expected [1, 2, 3, 4]")
    steps = [int(m.group(1)) for _, t in log.guest("dev_reset")
             for m in [re.match(r"INFO dev_reset: boot \(step (\d+)\)$", t)] if m]
    if steps != [0, 1, 2, 3, 4]:
        problems.append(f"dev_reset: boot steps {steps}, expected [0, 1, 2, 3, 4]")

    # dev_uart: nothing it wrote in loopback reached the console.
    leaked = [log.lines[i] for i, _ in log.guest("dev_uart") if "LEAK" in log.lines[i]]
    if leaked:
        problems.append(f"dev_uart: loopback output reached the console: {leaked[:3]}")

    # dev_uart_flood: every line it wrote arrived, once, in order (plinth holds a
    # flooding VM back, it drops nothing), and the neighbour's lines kept arriving
    # between the flood's first and last line.
    flood = [(i, int(m.group(1))) for i, t in log.guest("dev_uart_flood") for m in [re.match(r"F (\d{6})", t)] if m]
    told = [int(m.group(1)) for _, t in log.guest("dev_uart_flood")
            for m in [re.match(r"INFO dev_uart_flood: sent \d+ bytes \((\d+) lines\)", t)] if m]
    numbers = [n for _, n in flood]
    if not told or numbers != list(range(told[0])):
        missing = sorted(set(range(told[0] if told else 0)) - set(numbers))
        problems.append(f"dev_uart_flood: {len(numbers)} flood lines arrived, expected 0..{told[0] - 1 if told else '?'} "
                        f"in order; missing {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    if flood:
        first, last = flood[0][0], flood[-1][0]
        during = [i for i, t in log.guest("neighbour") if first < i < last and t.startswith("INFO neighbour: round")]
        if len(during) < 2:
            problems.append(f"dev_uart_flood: only {len(during)} of the neighbour's round lines arrived during the flood "
                            f"(log lines {first}..{last}): the flood held the neighbour's output back")
