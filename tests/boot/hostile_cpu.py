"""Specs of the hostile-cpu scenario's attacks (test_hostile.py), and the check that
plinth's warnings about MSRs it does not virtualize stay within their documented
bound (extra_checks)."""
import re

from test_guests import HALTED

# vmm/msr.c (README "CPU model"): one line per MSR for the first 32 MSRs a VM touches
# (VMM_MSR_WARN_MAX), then one saying further ones are counted, not logged.
MSR_WARN_MAX = 32

QEMU_CR0 = ("QEMU 7.2's TCG performs a guest's MOV to CR0 itself (AMD-V does not intercept CR0 writes) and takes "
            "%s instead of raising #GP; without plinth (-kernel) the same write does the same")

ATTACKS = {
    "cpu_msr_sweep": dict(passes=["cpu-msr-sweep-gp-only", "cpu-msr-sweep-counted", "cpu-msr-sweep-restored",
                                  "cpu-msr-sweep-state-intact"], done=True, stop=HALTED,
                          exits=[r"\brdmsr 29435\b"], log_max=MSR_WARN_MAX + 1),
    "cpu_cr_reserved": dict(
        passes=["cpu-cr0-pg-without-pe-gp", "cpu-cr0-nw-without-cd-gp", "cpu-cr0-storm-gp", "cpu-cr4-bit15-gp",
                "cpu-cr4-bit31-gp", "cpu-cr4-all-ones-gp", "cpu-cr4-vmxe-gp", "cpu-cr4-smxe-gp", "cpu-cr4-pcide-gp",
                "cpu-efer-bit1-gp", "cpu-efer-svme-gp", "cpu-efer-bit63-gp", "cpu-efer-all-ones-gp",
                "cpu-cr-unchanged"], done=True, stop=HALTED,
        svm={"skips": {"cpu-cr0-pg-without-pe-gp": QEMU_CR0 % "PG without PE (and drops to real mode)",
                       "cpu-cr0-storm-gp": QEMU_CR0 % "PG without PE (and drops to real mode)",
                       "cpu-cr0-nw-without-cd-gp": QEMU_CR0 % "NW without CD"}}),
    "cpu_xsetbv": dict(
        passes=["cpu-xsetbv-without-osxsave-ud", "cpu-xsetbv-xcr1-gp", "cpu-xsetbv-xcr-ffffffff-gp",
                "cpu-xsetbv-x87-clear-gp", "cpu-xsetbv-zero-gp", "cpu-xsetbv-avx-without-sse-gp",
                "cpu-xsetbv-bit63-gp", "cpu-xsetbv-all-ones-gp", "cpu-xsetbv-unoffered-gp", "cpu-xsetbv-random",
                "cpu-xsetbv-valid-takes"], done=True, stop=HALTED, exits=[r"\bxsetbv 409\b"],
        svm={"exits": [], "skips": {"cpu-xsetbv-random": "QEMU 7.2's TCG ignores the XSETBV intercept (plinth warns "
                                    "of it) and its own XSETBV takes XCR0 bits plinth's CPUID view does not offer "
                                    "(MPX's 0x18); without plinth its XSETBV is also wrong for 4 of the 400 values"}}),
    "cpu_cpuid_range": dict(passes=["cpu-cpuid-out-of-range-leaves", "cpu-cpuid-random-leaves",
                                    "cpu-cpuid-leaf-b-huge-subleaf", "cpu-cpuid-huge-subleaves-zero",
                                    "cpu-cpuid-intact"], done=True, stop=HALTED),
    "cpu_hypercall": dict(passes=["cpu-vmcall-ud-600", "cpu-vmmcall-ud-600"], done=True, stop=HALTED,
                          exits=[r"\bhypercall 600\b"]),
    "cpu_virt_insns": dict(passes=["cpu-virt-hidden", "cpu-virt-insns-ud"], done=True, stop=HALTED,
                           # VT-x: the 11 VMX instructions but VMFUNC exit; AMD-V: the 7 SVM ones.
                           exits=[r"\bvirt-insn 264\b"], svm={"exits": [r"\bvirt-insn 168\b"]}),
    "cpu_feature_insns": dict(
        passes=["cpu-invpcid-as-cpuid-says", "cpu-rdpid-as-cpuid-says", "cpu-rdtscp-as-cpuid-says",
                "cpu-monitor-as-cpuid-says", "cpu-mwait-as-cpuid-says", "cpu-monitorx-as-cpuid-says",
                "cpu-mwaitx-as-cpuid-says", "cpu-xsaves-as-cpuid-says", "cpu-rdpmc-counters"],
        done=True, stop=HALTED, exits=[r"\brdpmc 11\b"],
        # AMD-V has no control that hides XSAVES: the guest reports what it saw.
        svm={"passes": ["cpu-invpcid-as-cpuid-says", "cpu-rdpid-as-cpuid-says", "cpu-rdtscp-as-cpuid-says",
                        "cpu-monitor-as-cpuid-says", "cpu-mwait-as-cpuid-says", "cpu-monitorx-as-cpuid-says",
                        "cpu-mwaitx-as-cpuid-says", "cpu-rdpmc-counters"]}),
    "cpu_taskgate": dict(
        passes=[], done=False, rip_from=r"task gate to TSS 0x20 at rip (0x[0-9a-f]+)",
        stop=r"hardware task switch to TSS selector 0x20 by an IDT task gate at rip {rip}: plinth does not "
             r"emulate task switches on VT-x",
        svm={"passes": ["cpu-taskgate-int-round-trips", "cpu-taskgate-call-round-trips",
                        "cpu-taskgate-back-in-task1"], "done": True, "stop": HALTED}),
    "cpu_intdeliver": dict(
        passes=["cpu-int3-once-each", "cpu-into-once-each", "cpu-intn-once-each", "cpu-int-gate-not-present-np",
                "cpu-int-past-idt-limit-gp", "cpu-int-faulted-handler-not-run"],
        done=False, rip_from=r"MOV faulting at rip (0x[0-9a-f]+)",
        stop=r"the delivery of vector 14 at rip {rip} made a write of device memory 0xfee00ffc \(an IDT, GDT, "
             r"TSS or stack there\): plinth does not emulate event delivery",
        # The MOV was never emulated against the APIC.
        exits=[r"emulated instructions: 0$"]),
}


def extra_checks(log, problems, emulator):
    """The sweep touched thousands of MSRs plinth does not virtualize: plinth named at
    most MSR_WARN_MAX of them, then said once that it counts the rest."""
    named = log.plinth(r"vm cpu_msr_sweep: (?:read|write) of MSR 0x[0-9a-f]+, which plinth does not virtualize")
    summary = [i for i, _ in named if "further ones are counted, not logged" in log.lines[i]]
    if len(named) > MSR_WARN_MAX + 1 or len(summary) != 1:
        problems.append(f"cpu_msr_sweep: plinth logged {len(named)} unknown-MSR warnings ({len(summary)} saying the "
                        f"rest are counted); at most {MSR_WARN_MAX} and then one such line expected")
