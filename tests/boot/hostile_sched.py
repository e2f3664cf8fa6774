"""Specs of the hostile-sched scenario's attacks (test_hostile.py): guests that try to
keep the CPU from the neighbour sharing it; extra_checks proves the neighbour ran
while each of them was at it."""
import re

from test_guests import HALTED

ALL_HALTED = r"every vCPU halted with interrupts disabled \(the last: vCPU \d at rip 0x[0-9a-f]+\)"

ATTACKS = {
    "sched_spin": dict(passes=["sched-spin-survived"], done=True, stop=HALTED),
    "sched_exits": dict(passes=["sched-exits-survived"], done=True, stop=HALTED),
    "sched_vcpus": dict(passes=["sched-vcpus-all-up", "sched-vcpus-halted-in-order", "sched-vcpus-odd-released"],
                        done=True, stop=ALL_HALTED),
}

# (attacker, its line when it starts, its line when it ends)
HOGS = [("sched_spin", r"INFO sched_spin: spinning", r"INFO sched_spin: spun"),
        ("sched_exits", r"INFO sched_exits: exiting", r"INFO sched_exits: \d+ port writes")]


def extra_checks(log, problems, emulator):
    """The neighbour printed at least two rounds while each hog was at it."""
    rounds = [i for i, t in log.guest("neighbour") if t.startswith("INFO neighbour: round")]
    for vm, start, end in HOGS:
        lines = log.guest(vm)
        a = next((i for i, t in lines if re.match(start, t)), None)
        b = next((i for i, t in lines if re.match(end, t)), None)
        if a is None or b is None:
            problems.append(f"{vm}: no start or end line")
            continue
        during = sum(1 for i in rounds if a < i < b)
        if during < 2:
            problems.append(f"{vm}: the neighbour printed {during} rounds while it ran (want 2 or more): "
                            "plinth let it keep the CPU")
