"""Specs of the hostile-irq scenario's attacks (test_hostile.py): interrupt storms a
guest aims at itself.  Each is bounded by the guest (a number of interrupts or TSC
ticks), then reports what arrived; the neighbour's rounds show it was not starved."""
from test_guests import HALTED

# A multi-vCPU attacker ends with every vCPU halted with interrupts off (or, for
# irq_init_storm, its AP back in wait-for-SIPI).
ALL_HALTED = r"every vCPU halted with interrupts disabled \(the last: vCPU \d at rip 0x[0-9a-f]+\)"

INIT_ENDED = (r"every vCPU halted with interrupts disabled \(the last: vCPU 1, sent to wait for a SIPI by "
              r"INIT\)")

ATTACKS = {
    "irq_apic_timer": dict(passes=["irq-apic-timer-fastest-delivered", "irq-apic-timer-no-backlog",
                                   "irq-apic-timer-oneshot-once"], done=True, stop=HALTED),
    "irq_tsc_deadline": dict(passes=["irq-tsc-deadline-past-fires-once-each", "irq-tsc-deadline-cleared",
                                     "irq-tsc-deadline-zero-disarms", "irq-tsc-deadline-merged"],
                             done=True, stop=HALTED),
    "irq_self_ipi": dict(passes=["irq-self-ipi-each-taken", "irq-self-ipi-merged"], done=True, stop=HALTED),
    "irq_nmi_flood": dict(passes=["irq-nmi-latched-once", "irq-nmi-flood-each-taken"], done=True, stop=HALTED),
    "irq_ipi_storm": dict(passes=["irq-ipi-storm-delivered", "irq-ipi-storm-ap-answers"], done=True,
                          stop=ALL_HALTED),
    # Its last act is an INIT to the AP, then its BSP halts: the VM ends at whichever
    # of the two plinth sees last.
    "irq_init_storm": dict(passes=["irq-init-storm-sipi-ignored", "irq-init-storm-one-start",
                                   "irq-init-storm-cycles"], done=True, stop=ALL_HALTED + "|" + INIT_ENDED),
    "irq_pit": dict(passes=["irq-pit-mode2-count2-delivered", "irq-pit-mode2-count2-no-backlog",
                            "irq-pit-mode3-count2-delivered", "irq-pit-mode3-count2-no-backlog",
                            "irq-pit-count1-silent", "irq-pit-mode0-count1-once"], done=True, stop=HALTED),
    "irq_rtc": dict(passes=["irq-rtc-fastest-delivered", "irq-rtc-no-backlog", "irq-rtc-unacked-once"],
                    done=True, stop=HALTED),
    "irq_window": dict(passes=["irq-window-halted-ap-sleeps", "irq-window-opened-late-delivers-once",
                               "irq-window-nmi-wakes-halted-ap", "irq-window-fixed-stays-pending"], done=True,
                       stop=ALL_HALTED),
}
