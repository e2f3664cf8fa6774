"""A hostile virtio-net driver (guests/virtionet.c) against plinth's virtio-net device
(vmm/nic.c, vmm/virtio/net.c on the modern PCI transport) and its switch
(kernel/netswitch.c), beside the hostile suite's neighbour (guests/hostile/neighbour.c),
on Bochs (VT-x) and on QEMU's TCG (AMD-V), one CPU.

guests/configs/virtio-net-hostile.cfg: bad and peer on lan0.  bad breaks its
transmitq every way the virtqueue engine checks (DEVICE_NEEDS_RESET, nothing written,
broken until a reset), sends frames the device or the switch must drop (completed with
length 0, the device going on), valid frames of odd shapes (delivered whole), and
bad receive buffers (completed unused, left alone, or breaking the receiveq).  After
each case a DATA frame goes to peer, whose ACK says whether everything it got since
the last was in order and none of it a frame to drop; so each case's line
("virtionet: case NAME: ok (...)" or "... FAILED <why>") includes what peer saw, and
peer's own verdict counts every DATA frame.

guests/configs/virtio-net-flood.cfg: flood, steady and sink on lan1.  flood sends
1514-byte frames as fast as it can, steady 50 numbered frames 5 ms apart, sink drains
all the while, checking every frame, slower than flood fills: steady's frames must
all arrive, in order, while flood, over its share of sink's queue in the switch,
loses frames.

Each run also checks:
- plinth logged exactly one "the driver broke its transmit/receive queue (<reason>)"
  or "set up its transmit queue wrongly (<reason>)" warning per case that breaks a
  queue, with that case's reason, while it ran, and none for the others;
- the NICs' attach lines: the MAC the config gives, or the one derived from the VM's
  name, and each guest reads the same MAC from its device;
- no plinth error, warning (but those) or panic; the run powered off cleanly;
- no VM was stopped by plinth: each ran to its own DONE and halted itself;
- the neighbour's memory stayed intact and it printed rounds after the last case.
"""
import os
import re

import pytest

import plinthboot
import test_guests
from test_guests import HALTED, Log, check_run, check_vm, verdict
from test_hostile import ROUTINE, neighbour_rounds

HOSTILE_CONFIG = os.path.join(test_guests.CONFIGS, "virtio-net-hostile.cfg")
FLOOD_CONFIG = os.path.join(test_guests.CONFIGS, "virtio-net-flood.cfg")
# Bochs runs the hostile scenario in about 16 s of emulated time (20 s of wall time
# here), the flood one in 4 s; TCG each in 5 s.
TIMEOUT = {"bochs": 180, "qemu": 120}
BACKEND = {"bochs": r"virt: vmx ept", "qemu": r"svm: backend svm in use: NPT"}

BROKE = "broke its {} queue"
SETUP = "set up its transmit queue wrongly"
# Each case of role=bad, in the guest's order: the warning plinth must log while it
# runs (the message's verb phrase and vq_error_name() of the error it provokes,
# vmm/virtio/virtqueue.c), or None for a case that breaks nothing.
CASES = {
    # FEATURES_OK refused (a feature not offered, no VERSION_1).
    "features-refused": None,
    # Valid frames of odd shapes: delivered whole.
    "mtu-max": None,
    "vlan-max": None,
    "split": None,
    "hdr-split": None,
    "indirect": None,
    "csum-fill": None,
    # The transmitq broken at a notification, or refused at queue_enable.
    "loop": (BROKE.format("transmit"), "descriptor chain loops"),
    "next-range": (BROKE.format("transmit"), "next descriptor outside its table"),
    "head-range": (BROKE.format("transmit"), "chain head outside the descriptor table"),
    "buf-outside-ram": (BROKE.format("transmit"), "buffer outside guest RAM"),
    "buf-in-bar": (BROKE.format("transmit"), "buffer outside guest RAM"),
    "len-wrap": (BROKE.format("transmit"), "buffer outside guest RAM"),
    "chain-bytes": (BROKE.format("transmit"), "chain longer than the length limit"),
    "order": (BROKE.format("transmit"), "device-readable buffer after a device-writable one"),
    "avail-idx": (BROKE.format("transmit"), "more chains available than the queue holds"),
    "indirect-len": (BROKE.format("transmit"), "indirect table length bad"),
    "indirect-next": (BROKE.format("transmit"), "indirect descriptor with NEXT"),
    "indirect-nested": (BROKE.format("transmit"), "indirect descriptor inside an indirect table"),
    "indirect-range": (BROKE.format("transmit"), "indirect table outside guest RAM"),
    "indirect-unnegotiated": (BROKE.format("transmit"), "indirect descriptor without VIRTIO_F_INDIRECT_DESC"),
    "ring-outside-ram": (SETUP, "ring outside guest RAM"),
    "ring-in-bar": (SETUP, "ring outside guest RAM"),
    "ring-misaligned": (SETUP, "ring misaligned (desc 16, avail 2, used 4)"),
    "ring-overlap": (SETUP, "rings overlap"),
    # Frames to drop (by the device, the switch, or the receiving device).
    "runt": None,
    "short": None,
    "mtu": None,
    "vlan-mtu": None,
    "oversize": None,
    "data-valid": None,
    "csum-unnegotiated": None,
    "csum-range": None,
    "gso-unnegotiated": None,
    "gso-udp": None,
    "gso-ecn": None,
    "gso-no-csum": None,
    "gso-size-zero": None,
    "gso-size-mtu": None,
    "gso-hdr-len": None,
    "tso-without-csum": None,
    "gso-to-plain": None,
    "writable": None,
    "spoof-source": None,
    "group-source": None,
    "to-self": None,
    # Receive buffers.
    "rx-readable": None,
    "rx-hdr-split": None,
    "rx-too-small": None,
    "rx-loop": (BROKE.format("receive"), "descriptor chain loops"),
    "rx-buf-outside-ram": (BROKE.format("receive"), "buffer outside guest RAM"),
    "rx-buf-in-bar": (BROKE.format("receive"), "buffer outside guest RAM"),
}

CASE_RE = re.compile(r"^virtionet: case (\S+): (ok \(.*\)|FAILED .*)$")
WARN_RE = (r"warning: vm (\S+): eth0: the driver (broke its (?:transmit|receive) queue|set up its "
           r"(?:transmit|receive) queue wrongly) \((.*)\); the device needs a reset$")
ATTACHED_RE = r"vm {}: eth0 ([0-9a-f:]{{17}}) on net {} \(mtu 1500\) at PCI 00:[0-9a-f]{{2}}\.0$"
MAC_RE = re.compile(r"^INFO virtionet: eth0 MAC ([0-9a-f:]{17})$")
# The counters plinth logs when a VM with a NIC stops (vmm_nic_stats, core_net_stats).
NIC_STATS_RE = (r"vm {}: eth0 [0-9a-f:]{{17}} on \S+: (?P<out>\d+) frames out \(\d+ KiB\), (?P<in>\d+) in "
                r"\(\d+ KiB\), dropped (?P<drop_out>\d+) out \((?P<mtu>\d+) over the MTU, (?P<runt>\d+) runt, "
                r"(?P<offload>\d+) bad offload\) and (?P<drop_in>\d+) in, \d+ notifications, \d+ interrupts, "
                r"\d+ wake-ups(?P<needs_reset>, needs reset)?$")
SWITCH_STATS_RE = (r"vm {}: switch \S+: (?P<sent>\d+) frames sent \(\d+ KiB\), (?P<received>\d+) received "
                   r"\(\d+ KiB\), queued \d+ \(\d+ KiB of \d+\), dropped: (?P<share>\d+) over its share, "
                   r"(?P<runt>\d+) runt, (?P<too_big>\d+) too big, (?P<bad_source>\d+) bad source, "
                   r"(?P<to_self>\d+) to itself, (?P<reshared>\d+) reshared; \d+ MACs learned$")

guest_build = test_guests.guest_build


def default_mac(name):
    """The MAC vmm_nic_default_mac derives from a VM's name (vmm/nic.c): 02:70:6c and
    24 bits of its FNV-1a hash."""
    h = 2166136261
    for c in name.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    octets = [0x02, 0x70, 0x6c, ((h >> 16) ^ (h >> 24)) & 0xff, (h >> 8) & 0xff, h & 0xff]
    return ":".join(f"{o:02x}" for o in octets)


def boot(build, tmp_path, emulator, config):
    with open(config) as f:
        text = neighbour_rounds(f.read(), emulator)
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text(text)
    iso = str(tmp_path / "virtio-net.iso")
    test_guests.make_iso(build, str(cfg), iso)
    status, out = plinthboot.boot(emulator, "bios", smp=1, image=iso, timeout=TIMEOUT[emulator])
    log, problems = Log(out), []
    if not plinthboot.find(BACKEND[emulator], out):
        problems.append(f"no '{BACKEND[emulator]}' line: plinth did not run the backend this run is for")
    return status, log, problems


def check_nics(log, problems, nics):
    """Each NIC's attach line with the MAC it must have, and the guest reading that
    MAC from its device.  nics: {vm: (net, mac)}."""
    for vm, (net, mac) in nics.items():
        attached = log.plinth(ATTACHED_RE.format(re.escape(vm), net))
        if len(attached) != 1:
            problems.append(f"plinth logged {len(attached)} 'vm {vm}: eth0 MAC on net {net} (mtu 1500) at PCI ...' "
                            "lines, expected 1")
            continue
        if attached[0][1].group(1) != mac:
            problems.append(f"{vm}: plinth gave eth0 {attached[0][1].group(1)}, expected {mac}")
        seen = [m.group(1) for _, t in log.guest(vm) for m in [MAC_RE.match(t)] if m]
        if seen != [mac]:
            problems.append(f"{vm}: the guest read MAC {seen or 'nothing'} from its device, plinth gave {mac}")


def nic_stats(log, problems, vm):
    """The counters of vm's NIC and of its switch port, as plinth logs them when it
    stops: ({name: int} of each, with needs_reset a bool), or None."""
    nic = log.plinth(NIC_STATS_RE.format(re.escape(vm)))
    port = log.plinth(SWITCH_STATS_RE.format(re.escape(vm)))
    if len(nic) != 1 or len(port) != 1:
        problems.append(f"{vm}: plinth logged {len(nic)} 'eth0 ... frames out' and {len(port)} 'switch ... frames "
                        "sent' lines when it stopped, expected 1 each")
        return None, None
    counts = {k: int(v) for k, v in nic[0][1].groupdict().items() if k != "needs_reset"}
    counts["needs_reset"] = bool(nic[0][1].group("needs_reset"))
    return counts, {k: int(v) for k, v in port[0][1].groupdict().items()}


def expect_counts(problems, what, got, want):
    """Each counter of want as got has it."""
    if got is None:
        return
    wrong = {k: got[k] for k, v in want.items() if got[k] != v}
    if wrong:
        problems.append(f"{what}: counters {wrong}, expected {dict((k, want[k]) for k in wrong)}")


def check_plinth_lines(log, problems, vms):
    """About each VM plinth says only its routine lines, its NIC's attach line, its
    counters when it stops and the queue warnings; and nothing anywhere of an error,
    and no warning but those."""
    for vm in vms:
        v = re.escape(vm)
        extra = [log.lines[i] for i, _ in log.plinth(rf"vm {v}\b")
                 if not ROUTINE.search(log.lines[i]) and not re.search(WARN_RE, log.lines[i])
                 and not re.search(rf"vm {v}: eth0 [0-9a-f:]{{17}} on net ", log.lines[i])
                 and not re.search(NIC_STATS_RE.format(v), log.lines[i])
                 and not re.search(SWITCH_STATS_RE.format(v), log.lines[i])]
        if extra:
            problems.append(f"{vm}: plinth logged more about it than expected: {extra[:6]}")
    errors = [log.lines[i] for i, _ in log.plinth(r"(?i)error")]
    if errors:
        problems.append(f"plinth logged errors: {errors[:6]}")
    warnings = [log.lines[i] for i, _ in log.plinth(r"warning: ") if not re.search(WARN_RE, log.lines[i])]
    if warnings:
        problems.append(f"plinth logged other warnings: {warnings[:6]}")


def check_neighbour(log, problems, last_case):
    check_vm(log, "neighbour", problems, spec=dict(passes=["neighbour-memory-intact", "neighbour-ran-to-the-end"],
                                                   done=True, stop=HALTED))
    rounds = [i for i, t in log.guest("neighbour") if t.startswith("INFO neighbour: round")]
    if last_case is not None and not any(i > last_case for i in rounds):
        problems.append("the neighbour printed no round after the last case: the run shows nothing about the "
                        "attacks leaving it running; give it more rounds")


def check_role(log, problems, vm, role):
    """The guest ran to its own end: its PASS line, DONE, then its cli; hlt, which is
    the only stop."""
    check_vm(log, vm, problems, spec=dict(passes=[f"virtionet-{role}"], done=True, done_name=f"virtionet-{role}",
                                          stop=HALTED))


def check_cases(log, problems):
    """Every case's line, in order and ok, and plinth's one warning per breaking case
    between the line before it and its own.  Returns the last case line's index."""
    lines = log.guest("bad")
    start = log.first("bad", r"^INFO virtionet: \d+ cases$")
    if start is None:
        problems.append("bad: no 'INFO virtionet: N cases' line: it never reached the cases")
        return None
    results = [(i, m.group(1), m.group(2)) for i, t in lines for m in [CASE_RE.match(t)] if m]
    names = [n for _, n, _ in results]
    if names != list(CASES):
        problems.append(f"bad: case lines {names}, expected {list(CASES)}")
    for _, name, what in results:
        if not what.startswith("ok"):
            problems.append(f"bad: case {name}: {what}")
        elif CASES.get(name) and what != "ok (needs reset)":
            problems.append(f"bad: case {name}: '{what}', expected 'ok (needs reset)'")
    if f"virtionet: all {len(CASES)} cases ok" not in [t for _, t in lines]:
        problems.append(f"bad: no 'virtionet: all {len(CASES)} cases ok' line")

    warnings = log.plinth(WARN_RE)
    others = [m.group(0) for _, m in warnings if m.group(1) != "bad"]
    if others:
        problems.append(f"queue warnings about other VMs than bad: {others}")
    warnings = [(i, m) for i, m in warnings if m.group(1) == "bad"]
    prev = start
    for at, name, _ in results:
        during = [(m.group(2), m.group(3)) for i, m in warnings if prev < i < at]
        want = [CASES[name]] if CASES.get(name) else []
        if during != want:
            problems.append(f"bad: case {name}: plinth logged {during or 'no'} queue warning(s) while it ran, "
                            f"expected {want or 'none'}")
        prev = at
    stray = [m.group(0) for i, m in warnings if i < start or i > prev]
    if stray:
        problems.append(f"bad: queue warnings outside the cases: {stray}")
    breaking = sum(1 for w in CASES.values() if w)
    if len(warnings) != breaking:
        problems.append(f"plinth logged {len(warnings)} queue warnings about bad, expected {breaking} (one per case "
                        "that breaks a queue)")
    return results[-1][0] if results else None


@pytest.mark.parametrize("emulator", ["bochs", "qemu"])
def test_virtio_net_hostile(guest_build, tmp_path, emulator):
    """Every way of breaking a queue sets DEVICE_NEEDS_RESET, is logged once and writes
    nothing; a reset brings the device back; frames to drop never reach the peer and
    leave the device working; odd but valid frames arrive whole; the VMs and the
    neighbour run to their end."""
    status, log, problems = boot(guest_build, tmp_path, emulator, HOSTILE_CONFIG)
    vms = ["neighbour", "bad", "peer"]
    check_run(status, log, vms, problems)
    check_role(log, problems, "bad", "bad")
    check_role(log, problems, "peer", "peer")
    check_nics(log, problems, {"bad": ("lan0", default_mac("bad")), "peer": ("lan0", "52:54:00:12:34:56")})
    last_case = check_cases(log, problems)
    # The peer counted every DATA frame bad sent, in order, and no frame to drop.
    verdict_re = re.compile(r"^virtionet: peer: (\d+) frames in order, none of the bad ones$")
    peer = [int(m.group(1)) for _, t in log.guest("peer") for m in [verdict_re.match(t)] if m]
    count_re = re.compile(r"^INFO virtionet: the peer got (\d+) of (\d+) DATA frames, (\d+) problems$")
    counts = [m.groups() for _, t in log.guest("bad") for m in [count_re.match(t)] if m]
    if len(peer) != 1:
        problems.append("peer: no 'virtionet: peer: N frames in order, none of the bad ones' line")
    elif len(counts) != 1 or counts[0] != (str(peer[0]), str(peer[0]), "0"):
        problems.append(f"bad's END_ACK {counts}: the peer's count {peer[0]} is not what bad sent")
    failures = [t for _, t in log.guest("peer") if "FAILED" in t]
    if failures:
        problems.append(f"peer: {failures[:6]}")
    # Where each frame to drop was dropped, by plinth's own counters: bad's device
    # dropped 17 (mtu, vlan-mtu over the MTU; runt; eleven bad offloads: data-valid,
    # csum-unnegotiated, csum-range, gso-unnegotiated, gso-udp, gso-ecn, gso-no-csum,
    # gso-size-zero, gso-size-mtu, gso-hdr-len, tso-without-csum; short, oversize,
    # writable) and one
    # frame it received (rx-too-small's); the switch the two bad sources and the
    # frame to itself; the peer's device the GSO frame it did not negotiate.
    nic, port = nic_stats(log, problems, "bad")
    expect_counts(problems, "bad's eth0", nic, dict(drop_out=17, mtu=2, runt=1, offload=11, drop_in=1,
                                                    needs_reset=False))
    expect_counts(problems, "bad's switch port", port, dict(share=0, runt=0, too_big=0, bad_source=2, to_self=1,
                                                            reshared=0))
    if nic and port and port["sent"] != nic["out"] - 3:
        problems.append(f"bad's device sent {nic['out']} frames and the switch took {port['sent']}: expected all but "
                        "the three it refuses")
    nic, port = nic_stats(log, problems, "peer")
    expect_counts(problems, "peer's eth0", nic, dict(drop_out=0, drop_in=1, needs_reset=False))
    expect_counts(problems, "peer's switch port", port, dict(share=0, runt=0, too_big=0, bad_source=0, to_self=0,
                                                             reshared=0))
    check_plinth_lines(log, problems, vms)
    check_neighbour(log, problems, last_case)
    verdict(problems, log)


@pytest.mark.parametrize("emulator", ["bochs", "qemu"])
def test_virtio_net_flood(guest_build, tmp_path, emulator):
    """A VM flooding another loses its own frames over its share of the receiver's
    queue, and only its own: every frame of a steady sender to the same receiver
    arrives, in order."""
    status, log, problems = boot(guest_build, tmp_path, emulator, FLOOD_CONFIG)
    vms = ["neighbour", "sink", "flood", "steady"]
    check_run(status, log, vms, problems)
    for vm in ("sink", "flood", "steady"):
        check_role(log, problems, vm, vm)
        failures = [t for _, t in log.guest(vm) if "FAILED" in t]
        if failures:
            problems.append(f"{vm}: {failures[:6]}")
    check_nics(log, problems, {vm: ("lan1", default_mac(vm)) for vm in ("sink", "flood", "steady")})

    sink = {m.group(1): (i, m.group(2)) for i, t in log.guest("sink")
            for m in [re.match(r"^virtionet: case (steady|flood): (.*)$", t)] if m}
    last_case = max((i for i, _ in sink.values()), default=None)
    steady = sink.get("steady", (None, "no line"))[1]
    if steady != "ok (50 of 50 frames, in order)":
        problems.append(f"sink: case steady: {steady}, expected 'ok (50 of 50 frames, in order)': the flood cost "
                        "the steady sender frames")
    if "virtionet: steady: sent 50 frames, the sink got 50, in order" not in [t for _, t in log.guest("steady")]:
        problems.append("steady: no 'virtionet: steady: sent 50 frames, the sink got 50, in order' line")
    flood = re.match(r"^ok \((\d+) of (\d+) frames arrived, (\d+) dropped\)$", sink.get("flood", (0, ""))[1])
    sent = [m.groups() for _, t in log.guest("flood")
            for m in [re.match(r"^virtionet: flood: sent (\d+) frames in (\d+) rounds, the sink got (\d+) "
                               r"\((\d+) dropped\)$", t)] if m]
    if not flood:
        problems.append(f"sink: case flood: {sink.get('flood', (0, 'no line'))[1]}")
    elif len(sent) != 1 or (sent[0][0], sent[0][2]) != (flood.group(2), flood.group(1)):
        problems.append(f"flood's count {sent} and the sink's ({flood.group(1)} of {flood.group(2)}) differ")
    elif int(flood.group(3)) == 0:
        problems.append("flood lost no frame: it never went over its share of the sink's queue, so the run shows "
                        "nothing about fairness; make it send more, or the sink check more")
    # flood went on until the sink, having had all of steady's frames, said STOP.
    if not log.first("flood", r"^INFO virtionet: flood: STOP after \d+ rounds$"):
        problems.append("flood: no 'STOP after N rounds': it stopped flooding before steady had ended")
    # By plinth's counters: the drops are flood's, counted against it at the switch
    # (its share of the sink's queue); nobody's device dropped anything, and no other
    # port lost a frame.
    stats = {vm: nic_stats(log, problems, vm) for vm in ("sink", "flood", "steady")}
    for vm, (nic, port) in stats.items():
        expect_counts(problems, f"{vm}'s eth0", nic, dict(drop_out=0, drop_in=0, needs_reset=False))
        others = dict(runt=0, too_big=0, bad_source=0, to_self=0, reshared=0)
        expect_counts(problems, f"{vm}'s switch port", port, dict(others, share=0) if vm != "flood" else others)
    port = stats["flood"][1]
    if port and flood and port["share"] < int(flood.group(3)):
        problems.append(f"the switch counted {port['share']} of flood's frames over its share, the sink missed "
                        f"{flood.group(3)}")
    check_plinth_lines(log, problems, vms)
    check_neighbour(log, problems, last_case)
    verdict(problems, log)
