"""Specs of the hostile-reliability scenario (test_hostile.py), and the check of the
crash loops' back-off (extra_checks)."""
import re

from test_guests import HALTED

CRASHED_5 = r"triple fault at rip 0x[0-9a-f]+; crashed 5 times in a row, not restarting again"

ATTACKS = {
    "rel_crashloop": dict(passes=["rel-crashloop-ram-cleared"], done=False, boots=5, stop=CRASHED_5,
                          boot_line="INFO rel_crashloop: boot", log_max=5),
    "rel_slowcrash": dict(passes=[], done=False, boots=5, stop=CRASHED_5, boot_line="INFO rel_slowcrash: boot",
                          log_max=5),
    "rel_flood": dict(passes=["rel-flood-paced"], done=True, stop=HALTED),
    "rel_wbinvd": dict(passes=["rel-wbinvd-survived"], done=True, stop=HALTED, exits=[r"\bwbinvd 2000\b"]),
}


def extra_checks(log, problems, emulator):
    """Each restart of a crash loop waits at least the back-off its log line names,
    and the back-off doubles from one restart to the next."""
    for vm in ("rel_crashloop", "rel_slowcrash"):
        events = [(float(m.group(1)), int(m.group(2)) if m.group(2) else 0) for _, m in
                  log.plinth(rf"^\s*\[\s*(\d+\.\d+)\].*vm {vm}: triple fault .*restarting \(on_crash = "
                             r"restart, restart \d+(?:, in (\d+) ms)?\)")]
        delays = [d for _, d in events]
        if delays != [50, 100, 200, 400]:
            problems.append(f"{vm}: restart back-offs {delays} ms, expected [50, 100, 200, 400]")
        # The next crash comes no earlier than the back-off after the restart line.
        ends = [float(m.group(1)) for _, m in
                log.plinth(rf"^\s*\[\s*(\d+\.\d+)\].*vm {vm}: (?:triple fault|stopped)")]
        for (t, d), nxt in zip(events, [e for e in ends if e > events[0][0]] if events else []):
            if nxt - t < d / 1000:
                problems.append(f"{vm}: crashed again {nxt - t:.3f} s after a restart with a {d} ms back-off")
