"""Spec of the hostile-random scenario (test_hostile.py): rnd_ops runs its whole
stream with every outcome one the CPU allows, its memory intact, and plinth never
stopping it; rnd_insn's random byte sequences in ring 3 each end by an exception user
code can raise (or its timer); plinth logs at most the documented unknown-MSR warnings about it."""
from test_guests import HALTED

# vmm/msr.c: one line per MSR for the first 32 unknown MSRs, then one summary line.
MSR_WARN_MAX = 32

ATTACKS = {
    "rnd_ops": dict(passes=["rnd-ops-outcomes", "rnd-ops-memory-intact"], done=True, stop=HALTED,
                    log_max=MSR_WARN_MAX + 8),
    "rnd_insn": dict(passes=["rnd-insn-outcomes", "rnd-insn-memory-intact"], done=True, stop=HALTED),
}
