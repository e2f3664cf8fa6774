"""virtio-net with plinth's own switch, and virtio-console, as Debian 12's own kernel
drives them.  `net = lan0` gives a VM a virtio-net function on its PCI bus (vmm/nic.c)
and a port of the core's learning switch for lan0 (kernel/netsvc.c,
kernel/netswitch.c); Linux binds it with its stock virtio_net module.  Two VMs on lan0
ping each other and move a stream over TCP with busybox nc, each printing the
stream's sha256 (guests/linux/init: linux-guest.net, .ping, .nc-serve, .nc-send); a
third VM alone on lan1 must not reach them (linux-guest.noreach):

    linux-guest: net eth0 up ADDR/24 mac=MAC pci=ADDRESS irq=msix
    linux-guest: ping IP ok
    linux-guest: nc sending N bytes sha256 HEX      linux-guest: nc received N bytes sha256 HEX
    linux-guest: noreach IP ok

`console = virtio` gives a VM hvc0 (vmm/vconsole.c) beside the UART; with the
kernel's console on hvc0 alone, whatever /init prints after its modules are in, and
the 200 numbered lines of linux-guest.hvc, came through the virtio console.

Backends: QEMU TCG (AMD-V) with the bzImage and all three VMs, Bochs (VT-x) through
PVH with serve and send on one CPU (its run is the costly one).
"""
import re

import test_guests
import test_linux
from test_linux import BAD_RE, boot_until, check_plinth, machine_cpus, make_image, verdict

linux_build = test_linux.linux_build
guest_build = test_linux.guest_build

NET_RE = re.compile(r"^linux-guest: net eth0 up (\S+) mac=(\S+) pci=(\S+) irq=(\S+)$")
SUM_RE = re.compile(r"^linux-guest: nc (sending|received) (\d+) bytes sha256 ([0-9a-f]{64})$")
HVC_LINE = "hvc line {:03d} " + "0123456789abcdef" * 4
ADDRS = {"serve": "10.0.0.1", "send": "10.0.0.2", "apart": "10.0.0.3"}
# Emulator memory (MiB): plinth, the boot modules (the 66 MB vmlinux once per VM)
# and the three VMs' 512 MiB.
NET_MEMORY = 1024


def net_config(name, nbytes):
    with open(f"{test_linux.CONFIGS}/{name}.cfg") as f:
        text = f.read()
    text, n = re.subn(r"(?:(?<=nc-serve=)|(?<=:))BYTES\b", str(nbytes), text)
    assert n == 2, f"{name}.cfg should give nc-serve= and nc-send= BYTES"
    return text


def failures(log, vm):
    """Lines of vm that say something failed."""
    return [t for _, t in log.guest(vm)
            if (t.startswith("linux-guest:") and ("FAILED" in t or " failed" in t)) or BAD_RE.search(t)]


def net_run(build, tmp_path, name, emulator, backend, nbytes, timeout):
    text = net_config(name, nbytes)
    vms = {vm: addr for vm, addr in ADDRS.items() if f"[vm {vm}]" in text}
    iso = make_image(build, tmp_path, text)

    def enough(t):
        log = test_guests.Log(t)
        if log.plinth(r"error: |PANIC") or any(failures(log, vm) for vm in vms):
            return True
        return all(log.plinth(rf"vm {vm}: stopped \(") for vm in vms)

    status, out = boot_until(emulator, iso, machine_cpus(text), timeout, enough, memory=NET_MEMORY)
    log, problems = test_guests.Log(out), []
    check_plinth(status, log, problems, backend, list(vms))
    for vm, addr in vms.items():
        problems += [f"{vm}: {t}" for t in failures(log, vm)]
        up = [NET_RE.match(t) for _, t in log.guest(vm) if NET_RE.match(t)]
        if not up:
            problems.append(f"{vm}: no 'linux-guest: net eth0 up' line: its NIC was not found or not set up")
            continue
        m = up[0]
        if m.group(1) != addr + "/24":
            problems.append(f"{vm}: eth0 has {m.group(1)}, expected {addr}/24")
        if not re.fullmatch(r"0000:00:[01][0-9a-f]\.0", m.group(3)):
            problems.append(f"{vm}: eth0's device at {m.group(3)}, expected on bus 0 of segment 0")
        if m.group(4) != "msix":
            problems.append(f"{vm}: eth0's interrupts are {m.group(4)}, expected MSI-X")
        net = "lan1" if vm == "apart" else "lan0"
        attached = log.plinth(rf"vm {vm}: eth0 ([0-9a-f:]{{17}}) on net {net} \(mtu 1500\) at PCI 00:\d\d\.0$")
        if not attached:
            problems.append(f"plinth did not log 'vm {vm}: eth0 MAC on net {net} (mtu 1500) at PCI ...'")
        elif attached[0][1].group(1) != m.group(2):
            problems.append(f"{vm}: Linux sees MAC {m.group(2)}, plinth gave {attached[0][1].group(1)}")
    for vm, peer in (("serve", "send"), ("send", "serve")):
        if not any(t == f"linux-guest: ping {ADDRS[peer]} ok" for _, t in log.guest(vm)):
            problems.append(f"{vm}: no 'ping {ADDRS[peer]} ok': {vm} and {peer} on lan0 do not reach each other")
    if "apart" in vms and not any(t == f"linux-guest: noreach {ADDRS['serve']} ok" for _, t in log.guest("apart")):
        problems.append("apart (on lan1) printed no 'noreach 10.0.0.1 ok': the networks are not apart")
    sums = {}
    for vm in ("serve", "send"):
        for _, t in log.guest(vm):
            m = SUM_RE.match(t)
            if m:
                sums[vm] = (int(m.group(2)), m.group(3))
    if set(sums) != {"serve", "send"}:
        problems.append(f"the TCP stream's sums: only {sorted(sums)} printed one (nc did not finish)")
    elif sums["serve"] != sums["send"] or sums["send"][0] != nbytes:
        problems.append(f"the TCP stream arrived changed: sent {sums['send']}, received {sums['serve']}")
    for vm in vms:
        if not any(t == "linux-guest: selfcheck ok" for _, t in log.guest(vm)):
            problems.append(f"{vm}: no 'linux-guest: selfcheck ok'")
        # A VM of the config may have its console on hvc0 too (Bochs: one boot fewer).
        if re.search(rf"^\[vm {vm}\]\n(?:(?!^\[).*\n)*?console = virtio$", text, re.MULTILINE):
            check_hvc(log, vm, problems)
    verdict(problems, out)


def hvc_run(build, tmp_path, name, emulator, backend, timeout):
    with open(f"{test_linux.CONFIGS}/{name}.cfg") as f:
        text = f.read()
    iso = make_image(build, tmp_path, text)

    def enough(t):
        log = test_guests.Log(t)
        return bool(log.plinth(r"error: |PANIC|vm linux: stopped \(") or failures(log, "linux"))

    status, out = boot_until(emulator, iso, machine_cpus(text), timeout, enough)
    log, problems = test_guests.Log(out), []
    check_plinth(status, log, problems, backend, ["linux"])
    problems += [f"linux: {t}" for t in failures(log, "linux")]
    check_hvc(log, "linux", problems)
    verdict(problems, out)


def check_hvc(log, vm, problems):
    """vm's console is hvc0 alone and it ran linux-guest.hvc."""
    if not log.plinth(rf"vm {vm}: hvc0 is a virtio console at PCI 00:\d\d\.0$"):
        problems.append(f"plinth did not log 'vm {vm}: hvc0 is a virtio console at PCI ...'")
    lines = [t for _, t in log.guest(vm)]
    block = [t for t in lines if t.startswith("hvc line ")]
    expect = [HVC_LINE.format(i) for i in range(1, 201)]
    if block != expect:
        wrong = next((f"line {i + 1}: {a!r}, expected {b!r}" for i, (a, b) in enumerate(zip(block, expect))
                      if a != b), f"{len(block)} lines, expected 200")
        problems.append(f"{vm}: the 200 lines written to hvc0 did not arrive whole and in order: {wrong}")
    for want in ("hvc done", "linux-guest: hvc0 wrote 200 lines", "linux-guest: selfcheck ok"):
        if want not in lines:
            problems.append(f"{vm}: no {want!r} (through hvc0, the kernel's only console)")
    if not any(test_linux.MARKER_RE.match(t) for t in lines):
        problems.append(f"{vm}: no marker line through hvc0")


# ---- QEMU TCG: AMD-V, bzImage ----------------------------------------------------

def test_virtio_net_ping_tcp_and_isolation_svm(linux_build, tmp_path):
    """serve and send on lan0 ping each other and move 32 MiB over TCP, sums equal;
    apart on lan1 cannot reach serve."""
    net_run(linux_build, tmp_path, "linux-net-bzimage", "qemu", "svm", 32 << 20, test_linux.TIMEOUT_QEMU * 2)


def test_virtio_console_hvc0_svm(linux_build, tmp_path):
    """Linux's console on hvc0 alone: its lines and 200 numbered ones arrive whole."""
    hvc_run(linux_build, tmp_path, "linux-hvc-bzimage", "qemu", "svm", test_linux.TIMEOUT_QEMU)


# ---- Bochs: VT-x, PVH ----------------------------------------------------------------

def test_virtio_net_ping_tcp_and_hvc0_bochs(linux_build, tmp_path):
    """serve and send on VT-x, both on one CPU (the isolation of lan1 is the
    switch's, which the QEMU run shows), serve's console on hvc0 alone (its lines and
    the 200 numbered ones must arrive whole), with a 4 MiB stream: Bochs runs
    about 30 M instructions a second, and each guest's TCP stack spends some 50 of
    them per byte (with segments of one MSS: Linux sizes its TSO frames to what it
    can send in a millisecond, which under emulation is about one)."""
    net_run(linux_build, tmp_path, "linux-net-pvh", "bochs", "vmx", 4 << 20, test_linux.TIMEOUT_BOCHS * 2)
