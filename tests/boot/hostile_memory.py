"""Specs of the hostile-memory scenario's attacks (test_hostile.py)."""
ATTACKS = {
    "mem_top4g_read": dict(passes=[], done=False, rip_from=r"at rip (0x[0-9a-f]+)",
                       stop=r"read of guest-physical 0xfffffffc outside its memory at rip {rip}"),
}
