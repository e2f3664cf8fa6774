"""Guest boot tests: plinth runs the test guests of guests/ under Bochs (VT-x with EPT
and unrestricted guest) and the tests judge each guest's PASS/FAIL lines and plinth's
own log.

Each guest prints, tagged by plinth with its VM's name ("[cpuid] PASS ..."):
    PASS <check>            FAIL <check>: <detail>      INFO <guest>: <fact>
    DONE <guest>            then cli; hlt, and plinth logs
    vm <name>: stopped (<reason>)  and  vm <name>: exits: <counts>

Runs: every guest alone (one VM, one CPU), then the scenarios of guests/configs/:
basic (ten well-behaved guests on one CPU, every loader and entry mode among them),
faults (guests that write to unmapped MMIO, read and jump past their RAM, triple
fault with on_crash stop and restart, next to two counters that must keep running),
state (vector and debug registers stay each VM's own), multi (three guests on a
2-CPU machine: an isolation pair and a counter) and cpu (the CPU model's corners:
debug exceptions across exits, RF, PMU MSRs, MISC_ENABLE, TSC_AUX, hypercalls, XSAVES,
string I/O, page faults on emulated MOVS, NMI blocking, CR8, a kernel linked below
1 MiB).  A check a guest names SKIP must be one the spec lists in "skips" for that
emulator (an emulator's own fault, with the reason there).  An ISO
per run is built with tools/mkiso from the build directory ($PLINTH_BUILD, default
build/).  A failure prints the whole log.
"""
import os
import re
import subprocess
import warnings

import pytest

import plinthboot
from plinthboot import POWEROFF, STATUS_NAMES

CONFIGS = os.path.join(plinthboot.ROOT, "guests", "configs")

# Bochs runs ~30 M instructions/s, slower with two CPUs and when other emulators share
# the machine; a whole scenario takes 5-10 s when nothing else runs.
TIMEOUT_SOLO = 150
TIMEOUT_SCENARIO = 240

HALTED = r"halted with interrupts disabled at rip 0x[0-9a-f]+"

TF_PASSES = ["tf-ram-clear-at-boot", "tf-xcr0-reset-at-boot", "tf-vector-registers-clear-at-boot"]

# What each guest must print (every check named here, and no FAIL), whether it ends
# with DONE, and how plinth must stop it (a regex; {rip} is replaced by the address
# the guest announced on its INFO line, see RIP_FROM).
GUESTS = {
    "realmode": dict(passes=["rm-cs-ip", "rm-cr0-pe-clear", "rm-segment-addressing", "rm-32bit-operands",
                             "rm-idtr-ivt", "rm-software-int"], done=True, stop=HALTED),
    "protmode": dict(passes=["mb1-magic", "cr0-protected-no-paging", "mb1-meminfo", "mb1-mmap",
                             "ram-readwrite", "a20", "eflags-not-v86"], done=True, stop=HALTED),
    "longmode": dict(passes=["lm-entry-protected-mode", "lm-64bit-mode", "lm-own-page-tables",
                             "lm-exception-64bit-idt"], done=True, stop=HALTED),
    "elf64": dict(passes=["elf64-long-mode-paging", "elf64-identity-map-4g", "elf64-ram-readwrite"],
                  done=True, stop=HALTED),
    "flat32": dict(passes=["flat-protected-no-paging", "flat-entry-eip", "flat-segments"], done=True,
                   stop=HALTED),
    "cpuid": dict(passes=["cpuid-basic-leaves", "cpuid-hypervisor-bit", "cpuid-vmx-hidden",
                          "cpuid-monitor-hidden", "cpuid-apic-id", "cpuid-svm-hidden", "cpuid-hv-signature",
                          "cpuid-hv-max-leaf", "cpuid-invariant-tsc", "cpuid-tsc-frequency",
                          "cpuid-osxsave-clear", "cpuid-osxsave-follows-cr4",
                          "xsetbv-avx-without-sse-gp", "xsetbv-no-x87-gp", "xsetbv-xcr1-gp", "xsetbv-x87-sse"],
              done=True, stop=HALTED, exits=[r"\bxsetbv 4\b"]),
    "msr": dict(passes=["msr-read-unknown-gp", "msr-read-unknown-low-gp", "msr-write-unknown-gp", "msr-efer",
                        "msr-apic-base", "msr-tsc", "msr-pat-roundtrip", "msr-pat-reserved-gp"],
                done=True, stop=HALTED),
    "io": dict(passes=["io-unclaimed-inb", "io-unclaimed-inw", "io-unclaimed-inl", "io-unclaimed-write-ignored",
                       "io-unclaimed-after-uart", "io-uart-scratch", "io-uart-lcr", "io-split-across-devices"],
               done=True, stop=HALTED),
    # Twelve VMX instructions exit unconditionally in VMX non-root operation (SDM Vol.
    # 3C §26.1.2) and MONITOR/MWAIT exit as plinth asks: all must reach plinth and come
    # back as #UD.  VMFUNC, with VM functions off, faults without an exit.
    "vmx": dict(passes=["vmx-vmxon-ud", "vmx-vmcall-ud", "vmx-vmclear-ud", "vmx-vmptrld-ud", "vmx-vmptrst-ud",
                        "vmx-vmread-ud", "vmx-vmwrite-ud", "vmx-vmlaunch-ud", "vmx-vmresume-ud", "vmx-invept-ud",
                        "vmx-invvpid-ud", "vmx-vmxoff-ud", "vmx-vmfunc-ud", "vmx-monitor-ud", "vmx-mwait-ud",
                        "vmx-cr4-vmxe-gp", "vmx-cr4-vmxe-clear", "vmx-survived"],
                done=True, stop=HALTED, exits=[r"\bvirt-insn 11\b", r"\bhypercall 1\b", r"\bmwait 2\b"]),
    # The local APIC model: MMIO (emulated device memory) and x2APIC MSRs, its timer's
    # interrupts in periodic, one-shot (waking HLT) and TSC-deadline mode.
    "lapictimer": dict(passes=["lapic-cpuid-apic", "lapic-cpuid-x2apic", "lapic-cpuid-tsc-deadline",
                               "lapic-version", "lapic-timer-icr", "lapic-timer-periodic", "lapic-timer-stopped",
                               "lapic-timer-oneshot-wakes-hlt", "lapic-x2apic-enabled", "lapic-x2apic-id",
                               "lapic-tsc-deadline", "lapic-tsc-deadline-clears"], done=True, stop=HALTED,
                       exits=[r"; emulated instructions: [1-9]\d*"]),
    "hlt": dict(passes=["hlt-if-clear"], done=True,
                stop=r"halted with interrupts disabled at rip {rip}"),
    # Bochs' Haswell has AVX: the ymm check must run, not be skipped.
    "counter": dict(passes=["counter-registers", "counter-arithmetic", "counter-tsc-monotonic",
                            "counter-sse-registers", "counter-avx-registers"], done=True, stop=HALTED),
    "vecregs": dict(passes=["vecregs-clear-at-start", "vecregs-stay-clear"], done=True, stop=HALTED),
    "debugregs": dict(passes=["debugregs-reset-at-start", "debugregs-kept", "cr2-zero-at-start", "cr2-kept"],
                      done=True, stop=HALTED),
    "msrstate": dict(passes=["msrstate-zero-at-start", "msrstate-writable", "msrstate-kept"], done=True,
                     stop=HALTED),
    "mmio": dict(passes=[], done=False,
                 stop=r"write of guest-physical 0xfebf0000 outside its memory at rip {rip}"),
    "pastram": dict(passes=["pastram-last-word"], done=False,
                    stop=r"read of guest-physical 0x4000000 outside its memory at rip {rip}"),
    "fetch": dict(passes=[], done=False,
                  stop=r"instruction fetch of guest-physical 0x4000000 outside its memory at rip 0x4000000"),
    # A restarted VM starts as after a reset: RAM, vector registers and XCR0 included.
    "tf-stop": dict(passes=TF_PASSES, done=False, stop=r"triple fault at rip {rip}"),
    "tf-restart": dict(passes=TF_PASSES, done=False, boots=5,
                       stop=r"triple fault at rip {rip}; crashed 5 times in a row, not restarting again"),
    "filler": dict(passes=["filler-marker-written"], done=False,
                   stop=r"write of guest-physical 0x1000000 outside its memory at rip {rip}"),
    "checker": dict(passes=["isolation-no-foreign-marker"], done=True, stop=HALTED),
    # The "cpu" scenario: what the CPU model does that no OS plinth boots had shown.
    "debugtrap": dict(passes=["rf-injected-gp-rdmsr", "rf-injected-gp-cr4", "step-cpuid", "step-in", "step-out",
                              "step-rdmsr", "step-wrmsr", "step-mmio-read", "step-mmio-write", "step-hlt",
                              "step-hlt-timer-delivered", "step-movss-cpuid", "dbp-mmio-write", "dbp-mmio-read",
                              "dbp-movs-ram", "dbp-movs-ram-value", "gd-mov-dr-faults"], done=True, stop=HALTED),
    # Bochs' CPU is an Intel: no PMU, MISC_ENABLE there.
    "pmu": dict(passes=["pmu-intel-no-counters", "pmu-intel-rdpmc-gp", "pmu-intel-rdpmc-fixed-gp"], done=True,
                stop=HALTED, exits=[r"\brdpmc 2\b"]),
    "miscenable": dict(passes=["miscenable-read", "miscenable-write-back", "miscenable-rw-bits-kept",
                               "miscenable-all-rw-bits", "miscenable-ro-bit-unchanged", "miscenable-reserved-gp"],
                       done=True, stop=HALTED),
    "tscaux": dict(passes=["tscaux-cpuid-rdtscp", "tscaux-zero-at-start", "tscaux-rdtscp-zero-at-start",
                           "tscaux-writable", "tscaux-reserved-gp", "tscaux-kept"], done=True, stop=HALTED),
    "hypercall": dict(passes=["hypercall-vmcall-ud", "hypercall-vmmcall-ud", "hypercall-monitor-hidden",
                              "hypercall-monitorx-hidden", "hypercall-monitor-ud", "hypercall-mwait-ud",
                              "hypercall-monitorx-ud", "hypercall-mwaitx-ud"], done=True, stop=HALTED),
    # Neither emulator's CPU has XSAVES: the hidden case (XSS #GP, XSAVES #UD on Intel).
    "xsaves": dict(passes=["xsaves-no-supervisor-components", "xsaves-hidden-xss-gp", "xsaves-hidden-ud"],
                   done=True, stop=HALTED),
    "strio": dict(passes=["strio-rep-outsb-uart", "strio-rep-insl-pci", "strio-insw", "strio-outsw-fs",
                          "strio-rep-insb-backwards-page-crossing", "strio-rep-outsb-long", "strio-rep-count-zero"],
                  lines=["strio-outs-line"], done=True, stop=HALTED),
    "movspf": dict(passes=["movspf-paging-on", "native-pf-not-present", "native-pf-rsvd-maxphyaddr",
                           "native-pf-rsvd-xd-without-nxe", "movs-pf-write-not-present", "movs-pf-registers-unchanged",
                           "movs-pf-read-not-present", "rep-movs-pf-after-two", "rep-movs-pf-progress",
                           "movs-pf-rsvd-maxphyaddr", "movs-pf-rsvd-xd-without-nxe"], done=True, stop=HALTED),
    "nmiiret": dict(passes=["nmiiret-iret-faulted", "nmiiret-second-nmi-delivered", "nmiiret-held-until-iret"],
                    done=True, stop=HALTED),
    "cr8": dict(passes=["cr8-zero-at-start", "cr8-write-shows-in-tpr", "cr8-reads-tpr", "cr8-tpr-subclass-ignored",
                        "cr8-masks-lower-classes", "cr8-reserved-gp"], done=True, stop=HALTED),
    # VT-x exits on every hardware task switch; plinth does not emulate them: the VM
    # stops, naming the switch.  (AMD-V performs them: test_guests_svm.py.)
    "taskswitch": dict(passes=[], done=False,
                       stop=r"hardware task switch to TSS selector 0x20 by a JMP at rip 0x[0-9a-f]+: plinth does "
                            r"not emulate task switches on VT-x"),
    "lowload": dict(passes=["lowload-linked-low", "lowload-magic", "lowload-image-intact", "lowload-info-outside-image",
                            "lowload-cmdline", "lowload-mmap"], done=True, stop=HALTED),
}

# The INFO line on which a guest announces the rip plinth will name when it stops it.
RIP_FROM = {
    "hlt": r"next rip (0x[0-9a-f]+)",
    "mmio": r"at rip (0x[0-9a-f]+)",
    "pastram": r"at rip (0x[0-9a-f]+)",
    "tf-stop": r"executing UD2 at rip (0x[0-9a-f]+)",
    "tf-restart": r"executing UD2 at rip (0x[0-9a-f]+)",
    "filler": r"past its RAM at 0x[0-9a-f]+, rip (0x[0-9a-f]+)",
}

# VMs that run another VM's guest with other parameters: they are checked as that one.
SPEC_OF = {"counter2": "counter", "debugregs2": "debugregs", "msrstate2": "msrstate", "tscaux2": "tscaux"}
# The guest name a VM's DONE line carries (tf-stop and tf-restart run the same tf.elf).
DONE_NAME = {"tf-stop": "tf", "tf-restart": "tf", "counter2": "counter", "debugregs2": "debugregs",
             "msrstate2": "msrstate", "tscaux2": "tscaux"}


def config_sections(path):
    """{vm name: its [vm NAME] section's text} of a scenario config, in order."""
    sections, name, lines = {}, None, []
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*\[\s*(\S+)(?:\s+(\S+))?\s*\]", line)
            if m:
                if name:
                    sections[name] = "".join(lines)
                name = m.group(2) if m.group(1) == "vm" else None
                lines = [line]
            elif name:
                lines.append(line)
    if name:
        sections[name] = "".join(lines)
    return sections


SCENARIOS = {name: config_sections(os.path.join(CONFIGS, name + ".cfg"))
             for name in ("basic", "faults", "state", "multi", "cpu")}
# Alone: each VM of the scenarios, once, from the first scenario that has it.
SOLO = {}
for _scenario in SCENARIOS.values():
    for _vm, _text in _scenario.items():
        if _vm not in SPEC_OF:
            SOLO.setdefault(_vm, _text)


@pytest.fixture(scope="session")
def guest_build(plinth_build):
    """The build directory, with plinth.elf and the guests built (conftest's `make all`)."""
    missing = [g for g in ("plinth.elf", "guests/protmode.elf", "guests/realmode.bin")
               if not os.path.isfile(os.path.join(plinth_build, g))]
    if missing:
        pytest.fail(f"`make all` left no {', '.join(missing)} in {plinth_build}", pytrace=False)
    return plinth_build


def make_iso(build, cfg, out, cmdline=None):
    env = dict(os.environ, PLINTH_BUILD=build)
    proc = subprocess.run([os.path.join(plinthboot.ROOT, "tools", "mkiso"), os.path.join(build, "plinth.elf"),
                           cfg, out] + ([cmdline] if cmdline else []), cwd=plinthboot.ROOT, env=env,
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        pytest.fail(f"tools/mkiso {cfg} failed (status {proc.returncode}):\n"
                    f"{proc.stdout.decode(errors='replace')[-4000:]}", pytrace=False)


def run(build, tmp_path, cfg_text, smp, timeout, cmdline=None):
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(cfg_text)
    iso = str(tmp_path / "guests.iso")
    make_iso(build, str(cfg), iso, cmdline)
    return plinthboot.boot("bochs", "bios", smp=smp, image=iso, timeout=timeout)


class Log:
    """The serial log, split into guest lines ("[vm] text") and plinth's own lines."""

    def __init__(self, text):
        self.text = text
        self.lines = text.splitlines()

    def guest(self, vm):
        """(line index, text) of every line the guest in VM vm printed."""
        tag = f"[{vm}] "
        return [(i, l[l.index(tag) + len(tag):]) for i, l in enumerate(self.lines) if tag in l
                and not re.match(r"\s*\[\s*\d+\.\d+\]", l)]

    def plinth(self, pattern):
        """(line index, match) of plinth's log lines matching pattern."""
        rx = re.compile(pattern)
        out = []
        for i, l in enumerate(self.lines):
            if re.match(r"\s*\[\s*\d+\.\d+\]", l):
                m = rx.search(l)
                if m:
                    out.append((i, m))
        return out

    def first(self, vm, pattern):
        rx = re.compile(pattern)
        for i, t in self.guest(vm):
            if rx.search(t):
                return i
        return None


def check_vm(log, vm, problems, image=None, spec=None):
    """Checks one VM against spec (default GUESTS[image or vm]); appends what is wrong
    to problems."""
    spec = spec or GUESTS[image or SPEC_OF.get(vm, vm)]
    lines = [t for _, t in log.guest(vm)]
    if not lines:
        problems.append(f"{vm}: printed nothing")
    for t in lines:
        if t.startswith("FAIL"):
            problems.append(f"{vm}: {t}")
    passed = [t.split()[1] for t in lines if t.startswith("PASS ")]
    skips = spec.get("skips", {})
    for t in lines:
        if t.startswith("SKIP "):
            name = t.split()[1].rstrip(":")
            if name in skips:
                warnings.warn(f"{vm}: {name} skipped: {skips[name]}")
                passed.append(name)
            else:
                problems.append(f"{vm}: {t}, which this emulator's spec does not list as skipped")
    boots = spec.get("boots", 1)
    for c in spec["passes"]:
        if passed.count(c) != boots:
            problems.append(f"{vm}: PASS {c} printed {passed.count(c)} times, expected {boots}")
    for want in spec.get("lines", []):
        if want not in lines:
            problems.append(f"{vm}: no line '{want}'")
    done = f"DONE {spec.get('done_name') or DONE_NAME.get(vm, vm)}"
    if spec["done"] and done not in lines:
        problems.append(f"{vm}: no '{done}' line")
    if not spec["done"] and any(t.startswith("DONE") for t in lines):
        problems.append(f"{vm}: went on to DONE although plinth should have stopped it before")
    stop = spec["stop"]
    if "{rip}" in stop:
        rips = {m.group(1) for t in lines for m in [re.search(spec.get("rip_from") or RIP_FROM[vm], t)] if m}
        if len(rips) != 1:
            problems.append(f"{vm}: expected one announced rip, found {sorted(rips) or 'none'}")
            return
        stop = stop.replace("{rip}", rips.pop())
    stops = log.plinth(rf"vm {re.escape(vm)}: stopped \((.*)\)$")
    if len(stops) != 1:
        problems.append(f"{vm}: plinth logged {len(stops)} 'vm {vm}: stopped' lines, expected 1")
    elif not re.fullmatch(stop, stops[0][1].group(1)):
        problems.append(f"{vm}: stopped ({stops[0][1].group(1)}), expected a reason matching '{stop}'")
    exits = log.plinth(rf"vm {re.escape(vm)}: exits: (.*)$")
    if len(exits) != 1:
        problems.append(f"{vm}: plinth logged {len(exits)} 'vm {vm}: exits' lines, expected 1")
    else:
        for want in spec.get("exits", []):
            if not re.search(want, exits[0][1].group(1)):
                problems.append(f"{vm}: exit counts '{exits[0][1].group(1)}' lack '{want}'")
    if boots > 1:
        restarts = [int(m.group(1)) for _, m in
                    log.plinth(rf"warning: vm {re.escape(vm)}: triple fault at rip 0x[0-9a-f]+; restarting "
                               r"\(on_crash = restart, restart (\d+)(?:, in \d+ ms)?\)")]
        if restarts != list(range(1, boots)):
            problems.append(f"{vm}: restarts logged {restarts}, expected {list(range(1, boots))}")
        n_boot = sum(1 for t in lines if t == spec.get("boot_line", "INFO tf: boot"))
        if n_boot != boots:
            problems.append(f"{vm}: booted {n_boot} times, expected {boots}")


def check_run(status, log, vms, problems):
    if status != POWEROFF:
        problems.append(f"run ended in {STATUS_NAMES.get(status, status)}, not a clean 'power: off' "
                        "after every guest stopped")
    for i, m in log.plinth(r"(error: .*|PANIC.*)$"):
        problems.append(f"plinth: {m.group(1)}")
    started = [m.group(1) for _, m in log.plinth(r"vm (\S+): started \(")]
    if sorted(started) != sorted(vms):
        problems.append(f"plinth started {started}, expected {vms}")


def verdict(problems, log):
    if problems:
        pytest.fail("\n".join(problems) + "\n\n---- serial log ----\n" + log.text, pytrace=False)


@pytest.mark.parametrize("vm", list(SOLO), ids=[f"solo-{v}" for v in SOLO])
def test_guest_alone(guest_build, tmp_path, vm):
    """One guest alone on a one-CPU machine: its checks pass and plinth stops it as
    GUESTS says, then powers off."""
    status, text = run(guest_build, tmp_path, "[plinth]\non_idle = poweroff\n\n" + SOLO[vm], 1, TIMEOUT_SOLO)
    log, problems = Log(text), []
    check_run(status, log, [vm], problems)
    check_vm(log, vm, problems, image=vm)
    verdict(problems, log)


def scenario(guest_build, tmp_path, name, smp, edits=()):
    """Boots scenario NAME; EDITS are (old, new) replacements in its config text, each of
    which must apply (a backend's timing may need a guest to run longer)."""
    with open(os.path.join(CONFIGS, name + ".cfg")) as f:
        cfg = f.read()
    for old, new in edits:
        assert old in cfg, f"scenario {name}: '{old}' is not in its config"
        cfg = cfg.replace(old, new)
    status, text = run(guest_build, tmp_path, cfg, smp, TIMEOUT_SCENARIO)
    log, problems = Log(text), []
    vms = list(SCENARIOS[name])
    check_run(status, log, vms, problems)
    for vm in vms:
        check_vm(log, vm, problems)
    return log, problems


def stop_line(log, vm):
    found = log.plinth(rf"vm {re.escape(vm)}: stopped \(")
    return found[0][0] if found else None


def test_scenario_basic(guest_build, tmp_path):
    """The ten well-behaved guests time-sharing one CPU."""
    log, problems = scenario(guest_build, tmp_path, "basic", 1)
    verdict(problems, log)


def test_scenario_faults(guest_build, tmp_path):
    """MMIO to an unmapped address, a read past RAM and triple faults (stop; restart
    until plinth gives up) each stop only their own VM: counter and counter2, sharing
    the CPU with all of them (and with each other, SSE/AVX state included), work on and
    finish after every one of them has stopped."""
    log, problems = scenario(guest_build, tmp_path, "faults", 1)
    for counter in ("counter", "counter2"):
        done = log.first(counter, r"^DONE counter$")
        for vm in ("mmio", "pastram", "fetch", "tf-stop", "tf-restart"):
            at = stop_line(log, vm)
            if at is not None and done is not None and done < at:
                problems.append(f"{counter} finished before {vm} was stopped: the test shows nothing about "
                                f"{vm}'s stop leaving it running; give it more rounds")
    # The two counters must have taken turns on the CPU, or their register checks
    # say nothing about plinth switching SSE/AVX state between vCPUs.
    first, done = log.first("counter", r"^INFO counter: round 1 "), log.first("counter", r"^DONE counter$")
    if first is not None and done is not None:
        if not any(first < i < done for i, t in log.guest("counter2") if t.startswith("INFO counter: round")):
            problems.append("counter2 ran no round while counter was between its first round and DONE: "
                            "the two never shared the CPU")
    verdict(problems, log)


def test_scenario_state(guest_build, tmp_path):
    """Vector registers (SSE, AVX upper halves), debug registers DR0-DR3 and the
    SYSCALL/SYSENTER/SWAPGS MSRs belong to each VM: none sees another's, each keeps
    its own while the others run on its CPU."""
    log, problems = scenario(guest_build, tmp_path, "state", 1)
    # The VMs must have taken turns on the CPU while they looked.
    for a, b in (("vecregs", "counter2"), ("debugregs", "debugregs2"), ("msrstate", "msrstate2")):
        first, last = log.first(a, r"^INFO \S+: round 1 "), log.first(a, r"^DONE ")
        if first is not None and last is not None and \
                not any(first < i < last for i, t in log.guest(b) if t.startswith("INFO ")):
            problems.append(f"{b} printed nothing while {a} ran its rounds: they never shared the CPU")
    verdict(problems, log)


def test_scenario_cpu(guest_build, tmp_path):
    """The CPU model's corners, all on one CPU; tscaux and tscaux2 keep their own
    IA32_TSC_AUX while the other runs."""
    log, problems = scenario(guest_build, tmp_path, "cpu", 1)
    first, last = log.first("tscaux", r"^INFO tscaux: round 1 "), log.first("tscaux", r"^DONE ")
    if first is not None and last is not None and \
            not any(first < i < last for i, t in log.guest("tscaux2") if t.startswith("INFO tscaux: round")):
        problems.append("tscaux2 ran no round while tscaux ran its rounds: they never shared the CPU")
    verdict(problems, log)


def test_scenario_multi_2cpu(guest_build, tmp_path, edits=()):
    """Three guests on two CPUs: filler fills its RAM with a marker and then writes past
    it (stopped); checker, scanning its own RAM meanwhile, never sees the marker; counter
    keeps running after filler's stop."""
    log, problems = scenario(guest_build, tmp_path, "multi", 2, edits)
    if not log.plinth(r"smp: 2 CPUs online"):
        problems.append("plinth did not bring up 2 CPUs")
    cpus = {m.group(1) for _, m in log.plinth(r"vm \S+: started \(.*on CPU (\d+)\)")}
    if cpus != {"0", "1"}:
        problems.append(f"the three VMs started on CPUs {sorted(cpus)}; with cpus = 0-1 on two CPUs "
                        "plinth should use both")
    filler_stop = stop_line(log, "filler")
    filler_first = log.first("filler", r"^INFO filler: pass 1 ")
    if None in (filler_stop, filler_first):
        problems.append("filler printed no first pass or was not stopped: the isolation check saw nothing")
    # checker must have finished a whole scan while filler was writing its marker:
    # after filler's first pass and before filler was stopped.
    elif not any(filler_first < i < filler_stop for i, t in log.guest("checker")
                 if t.startswith("INFO checker: pass ")):
        problems.append("checker completed no scan while filler was running: the isolation check "
                        "saw nothing; give filler more passes")
    if filler_stop is not None:
        after = [i for i, t in log.guest("counter") if i > filler_stop and t.startswith("INFO counter: round")]
        if not after:
            problems.append("counter printed no round after filler was stopped")
    verdict(problems, log)



def test_broken_config_starts_no_guest(guest_build, tmp_path):
    """A config error names the line and the fix, and no guest of that config starts
    (plinth never guesses); with nothing running, on_idle powers off."""
    cfg = ("[plinth]\non_idle = poweroff\n\n"
           "[vm good]\nloader = multiboot\nkernel = guests/protmode.elf\nmemory = 16M\n\n"
           "[vm bad]\nloader = multiboot\nkernel = guests/protmode.elf\nmemory = 64X\n")
    status, text = run(guest_build, tmp_path, cfg, 1, TIMEOUT_SOLO)
    log, problems = Log(text), []
    if status != POWEROFF:
        problems.append(f"run ended with {STATUS_NAMES.get(status, status)}, expected a clean poweroff")
    if not log.plinth(r"config: plinth\.cfg:12: memory '64X' is not a size; write e\.g\. 64M or 1G"):
        problems.append("no config error naming line 12 and the fix")
    if not log.plinth(r"config: no guest started"):
        problems.append("plinth did not say that no guest started")
    if log.guest("good") or log.plinth(r"vm good: started"):
        problems.append("a guest of the broken config started")
    verdict(problems, log)


def test_unstartable_vm_is_skipped(guest_build, tmp_path):
    """A VM that cannot start (an image that is no Multiboot kernel; more vCPUs than
    a VM can have) is reported with the cause and skipped; the others run."""
    cfg = ("[plinth]\non_idle = poweroff\n\n"
           "[vm notakernel]\nloader = multiboot\nkernel = guests/configs/basic.cfg\nmemory = 16M\n\n"
           "[vm ninecpus]\nloader = multiboot\nkernel = guests/protmode.elf\nmemory = 16M\nvcpus = 9\n\n"
           "[vm protmode]\nloader = multiboot\nkernel = guests/protmode.elf\nmemory = 16M\n")
    status, text = run(guest_build, tmp_path, cfg, 1, TIMEOUT_SOLO)
    log, problems = Log(text), []
    if status != POWEROFF:
        problems.append(f"run ended with {STATUS_NAMES.get(status, status)}, expected a clean poweroff")
    started = [m.group(1) for _, m in log.plinth(r"vm (\S+): started \(")]
    if started != ["protmode"]:
        problems.append(f"plinth started {started}, expected only protmode")
    check_vm(log, "protmode", problems)
    if not log.plinth(r"error: vm notakernel: guests/configs/basic\.cfg: no Multiboot header"):
        problems.append("no error naming the image that is not a Multiboot kernel")
    if not log.plinth(r"error: vm ninecpus: vcpus = 9, but a VM has 1 to 8 vCPUs"):
        problems.append("no error for the VM asking for nine vCPUs")
    for vm in ("notakernel", "ninecpus"):
        if not log.plinth(rf"error: vm {vm}: not started"):
            problems.append(f"plinth did not say {vm} was not started")
        if log.plinth(rf"vm {vm}: started"):
            problems.append(f"{vm} started")
    verdict(problems, log)
