"""Specs of the hostile-memory scenario's attacks (test_hostile.py): every class of
guest-physical address outside RAM, string instructions between RAM and device
memory, page tables that loop back on themselves, and instructions that straddle
pages, run long or carry every prefix, on plinth's emulated accesses."""
from test_guests import HALTED


def outside(what, gpa):
    return dict(passes=[], done=False, rip_from=r"at rip (0x[0-9a-f]+)",
                stop=rf"{what} of guest-physical {gpa} outside its memory at rip {{rip}}")


ATTACKS = {
    "mem_top4g_read": outside("read", "0xfffffffc"),
    "mem_above_ram_write": outside("write", "0x400000"),
    "mem_hole_read": outside("read", "0xe8000000"),
    "mem_high_gpa64": outside("read", "0x[0-9a-f]{6,}000"),
    # Executing the APIC page, or running into it from a RAM page.
    "mem_fetch_apic": dict(passes=[], done=False,
                           stop=r"instruction fetch of guest-physical 0xfee00030 outside its memory at rip 0xfee00030"),
    "mem_straddle_insn": dict(passes=[], done=False, rip_from=r"the MOV at rip (0x[0-9a-f]+)",
                              stop=r"instruction fetch of guest-physical 0xfee00000 outside its memory at rip {rip}"),
    "mem_movs_mmio_mmio": dict(passes=[], done=False, rip_from=r"at rip (0x[0-9a-f]+)",
                               stop=r"cannot emulate the read of device memory 0xfee00030 at rip {rip} \(bytes a5[0-9a-f ]*; "
                                    r"fetch: ok\): guest memory or device access failed"),
    "mem_stos_apic": dict(passes=["mem-stos-apic-completes", "mem-stos-apic-version-kept", "mem-stos-apic-disabled",
                                  "mem-stos-apic-nothing-arrived", "mem-stos-apic-reenabled"], done=True, stop=HALTED),
    "mem_movs_straddle": dict(passes=["mem-movs-straddle-lands", "mem-movs-straddle-faults",
                                      "mem-movs-straddle-nothing-written"], done=True, stop=HALTED),
    "mem_selfref_pt": dict(passes=["mem-selfref-ioapic-read", "mem-selfref-movs-into-directory"], done=True,
                           stop=HALTED),
    "mem_long_insn": dict(passes=["mem-long-insn-15-emulated", "mem-long-insn-16-gp"], done=True, stop=HALTED),
    "mem_prefixes": dict(passes=["mem-prefixes-all-combinations", "mem-prefixes-lock-ud"], done=True, stop=HALTED),
}
