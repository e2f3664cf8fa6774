"""The hostile-guest suite (guests/hostile/): each scenario config
guests/configs/hostile-GROUP.cfg runs one group of attacks, one attack per VM, beside
the well-behaved neighbour (guests/hostile/neighbour.c), on Bochs (VT-x) and on
QEMU's TCG (AMD-V), one CPU.

Each attack is checked on both sides:
- the attacker got the documented outcome: the PASS lines its spec names (what real
  hardware would give: a fault, all-ones, a dropped write), no FAIL, and plinth
  stopped it as the spec says (its stop reason);
- plinth logged the misbehaviour once, not per attempt: at most `log_max` of plinth's
  own lines name the VM (besides its started/stopped/exits lines);
- the neighbour was not disturbed: it ran rounds after every attacker had finished,
  and its memory checksum never changed (its own PASS lines).

The specs live beside the configs, in tests/boot/hostile_GROUP.py (ATTACKS: {vm:
spec}), in test_guests.check_vm's format (passes, done, stop, exits, skips, rip_from,
done_name, boots, boot_line) plus log_max and "svm" (what differs on AMD-V, merged
over the spec); a group's extra_checks(log, problems, emulator), if it has one, adds
checks of its own.
"""
import importlib
import os
import re

import pytest

import plinthboot
import test_guests
from test_guests import HALTED, Log, check_run, check_vm, verdict  # noqa: F401

CONFIGS = test_guests.CONFIGS
GROUPS = sorted(f[len("hostile-"):-len(".cfg")] for f in os.listdir(CONFIGS)
                if f.startswith("hostile-") and f.endswith(".cfg"))
EMULATORS = ("bochs", "qemu")
TIMEOUT = {"bochs": 420, "qemu": 240}
# Plinth's own lines about a VM that every VM gets, whatever it does.
ROUTINE = re.compile(r"vm \S+: (started \(|stopped \(|exits: |restarting|console: )")
LOG_MAX = 3
guest_build = test_guests.guest_build


def attacks(group):
    return importlib.import_module(f"hostile_{group}").ATTACKS


def spec_for(spec, emulator):
    spec = dict(spec)
    if emulator == "qemu":
        spec.update(spec.pop("svm", {}))
    else:
        spec.pop("svm", None)
    return spec


def neighbour_rounds(cfg_text, emulator):
    """The config's neighbour cmdline, with rounds=/spin= for this emulator when the
    config gives qemu_rounds=/qemu_spin= (TCG's TSC runs at wall-clock speed, Bochs'
    counts instructions)."""
    if emulator != "qemu":
        return cfg_text
    out = []
    for line in cfg_text.splitlines():
        if line.strip().startswith("cmdline") and "qemu_" in line:
            words = line.split("=", 1)[1].split()
            q = {w.split("=")[0][5:]: w.split("=")[1] for w in words if w.startswith("qemu_")}
            words = [w for w in words if not w.startswith("qemu_") and w.split("=")[0] not in q]
            words += [f"{k}={v}" for k, v in q.items()]
            line = "cmdline = " + " ".join(words)
        out.append(line)
    return "\n".join(out) + "\n"


def with_skips(cfg_text, specs):
    """Adds skip=CHECKS to each VM's command line whose spec lists skips."""
    out, vm = [], None
    for line in cfg_text.splitlines():
        m = re.match(r"\s*\[\s*vm\s+(\S+)\s*\]", line)
        if m:
            vm = m.group(1)
        elif vm in specs and specs[vm].get("skips") and line.strip().startswith("cmdline"):
            line += " skip=" + ",".join(specs[vm]["skips"])
        out.append(line)
    return "\n".join(out) + "\n"


def boot(build, tmp_path, emulator, cfg_text):
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(cfg_text)
    iso = str(tmp_path / "hostile.iso")
    test_guests.make_iso(build, str(cfg), iso)
    return plinthboot.boot(emulator, "bios", smp=1, image=iso, timeout=TIMEOUT[emulator])


def finished_at(log, vm):
    """Log line index at which vm ended: its stop line, else its DONE line."""
    stops = log.plinth(rf"vm {re.escape(vm)}: stopped \(")
    if stops:
        return stops[-1][0]
    done = log.first(vm, r"^DONE ")
    return done


@pytest.mark.parametrize("emulator", EMULATORS)
@pytest.mark.parametrize("group", GROUPS)
def test_hostile(guest_build, tmp_path, group, emulator):
    """Every attack of the group gets what hardware would give it (or its VM is
    stopped, with the reason named once), and the neighbour runs on undisturbed."""
    specs = {vm: spec_for(s, emulator) for vm, s in attacks(group).items()}
    with open(os.path.join(CONFIGS, f"hostile-{group}.cfg")) as f:
        text = f.read()
    vms = list(test_guests.config_sections(os.path.join(CONFIGS, f"hostile-{group}.cfg")))
    missing = [vm for vm in vms if vm != "neighbour" and vm not in specs]
    assert not missing, f"hostile-{group}.cfg runs VMs no spec in hostile_{group}.py describes: {missing}"
    status, out = boot(guest_build, tmp_path, emulator, with_skips(neighbour_rounds(text, emulator), specs))
    log, problems = Log(out), []
    check_run(status, log, vms, problems)
    check_vm(log, "neighbour", problems, spec=dict(passes=["neighbour-memory-intact", "neighbour-ran-to-the-end"],
                                                   done=True, stop=HALTED))
    # Every one of the neighbour's numbered lines arrived, once, in order.
    rounds = [int(m.group(1)) for _, t in log.guest("neighbour")
              for m in [re.match(r"INFO neighbour: round (\d+) of", t)] if m]
    if rounds != list(range(1, len(rounds) + 1)):
        problems.append(f"the neighbour's round lines are not 1..{len(rounds)} in order: {rounds}")
    last_round = max((i for i, t in log.guest("neighbour") if t.startswith("INFO neighbour: round")), default=None)
    for vm in vms:
        if vm == "neighbour":
            continue
        spec = specs[vm]
        check_vm(log, vm, problems, spec=spec)
        extra = [log.lines[i] for i, _ in log.plinth(rf"vm {re.escape(vm)}\b")
                 if not ROUTINE.search(log.lines[i])]
        if len(extra) > spec.get("log_max", LOG_MAX):
            problems.append(f"{vm}: plinth logged {len(extra)} lines about it, at most {spec.get('log_max', LOG_MAX)} "
                            f"expected (misbehaviour is logged once): {extra[:6]}")
        end = finished_at(log, vm)
        if end is not None and last_round is not None and last_round < end:
            problems.append(f"the neighbour's last round came before {vm} finished: the run shows nothing "
                            f"about {vm} leaving it undisturbed; give the neighbour more rounds")
    checks = getattr(importlib.import_module(f"hostile_{group}"), "extra_checks", None)
    if checks:
        checks(log, problems, emulator)
    verdict(problems, log)
