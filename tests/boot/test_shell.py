"""plinth's console and shell, driven by typing at the serial line (tests/boot/
serialsession.py) on QEMU TCG (AMD-V, two CPUs) and Bochs (VT-x, one CPU).  The
image is guests/configs/shell.cfg: two guests/console.c guests, alpha and beta,
that echo the lines typed for them and tick on their PIT, with the console starting
in the shell."""
import os
import re

import pytest

import test_guests
from serialsession import Session

guest_build = test_guests.guest_build
CTRL_A = "\x01"
SMP = {"qemu": 2, "bochs": 1}


@pytest.fixture
def session(guest_build, tmp_path, request):
    emulator = request.param
    iso = str(tmp_path / "shell.iso")
    test_guests.make_iso(guest_build, os.path.join(test_guests.plinthboot.ROOT, "guests", "configs", "shell.cfg"),
                         iso)
    with Session(emulator, iso, tmp_path, smp=SMP[emulator], timeout=900) as s:
        s.expect(r"^plinth: console -> shell$", 180)
        s.expect(r"\[alpha\] console: ready", 180)
        s.expect(r"\[beta\] console: ready", 180)
        yield s


def list_row(s, name):
    """The `list` row of VM name, as a dict."""
    m = s.command("list", rf"^ ?\d+  {name} .*$")
    cols = re.match(r"\s*(\d+)\s+(\S+)\s+(\d+) \(([\d,-]+)\)\s+(\d+)M\s+(\S+)\s+(\S+)\s+(\d+)\s+(.*?)\s*$",
                    m.group(0))
    assert cols, f"cannot read the list row {m.group(0)!r}"
    keys = ("number", "name", "vcpus", "cpus", "memory", "uptime", "cpu", "exits", "state")
    return dict(zip(keys, cols.groups()))


@pytest.mark.parametrize("session", ["qemu", "bochs"], indirect=True)
def test_focus_switching_input_and_replay(session):
    s = session
    s.command("help", r"poweroff, reboot\s+the whole machine")
    row = list_row(s, "alpha")
    assert row["number"] == "1" and row["vcpus"] == "1" and row["memory"] == "16", row
    assert row["state"] in ("running", "halted"), row
    # attach: the focus line, then alpha's latest lines replayed.
    at = s.mark()
    s.send("attach alpha\r")
    s.expect(r"plinth: console -> alpha \(1/2\); its last \d+ lines?:\n\[alpha\] console: boot", since=at)
    at = s.mark()
    s.send("hello there\r")
    s.expect(r"^\[alpha\] console: echo hello there$", since=at)
    # Ctrl-A n: the next VM gets what is typed, and only it.
    at = s.mark()
    s.send(CTRL_A + "n")
    s.expect(r"plinth: console -> beta \(2/2\)", since=at)
    s.send("for beta\r")
    s.expect(r"^\[beta\] console: echo for beta$", since=at)
    assert "[alpha] console: echo for beta" not in s.text[at:]
    # Ctrl-A 1 and Ctrl-A p, Ctrl-A ?, keys that mean nothing.
    at = s.mark()
    s.send(CTRL_A + "1")
    s.expect(r"plinth: console -> alpha \(1/2\)", since=at)
    s.send(CTRL_A + "p")
    s.expect(r"plinth: console -> beta \(2/2\)", since=at)
    s.send(CTRL_A + "?")
    s.expect(r"plinth: Ctrl-A then: n next VM, p previous", since=at)
    s.send(CTRL_A + "9")
    s.expect(r"plinth: there is no VM 9 \(2 running\)", since=at)
    s.send(CTRL_A + "x")
    s.expect(r"plinth: Ctrl-A 0x78 means nothing", since=at)
    # Still beta's: the hotkey's misses moved nothing.
    s.send("still beta\r")
    s.expect(r"^\[beta\] console: echo still beta$", since=at)
    # Ctrl-A s: back to the shell, a fresh prompt.
    at = s.mark()
    s.send(CTRL_A + "s")
    s.expect(r"plinth: console -> shell\n", since=at)
    # Something typed now is the shell's, not a guest's.
    s.command("hello", r"unknown command 'hello'")
    assert "console: echo hello\n" not in s.text[at:]
    s.command("stats alpha", r"I/O port exits, top 10 \(port count\): 0x3f[8d] \d+")
    s.expect(r"exits by reason \(since its vCPUs were made\): .*io \d+", since=at)
    s.expect(r"injected interrupts and NMIs: [1-9]\d*", since=at)
    s.command("stats 2", r"vm beta \(2/2\)")
    s.expect(r"CPU shares: cpu_weight 100, cpu_cap none, priority normal", since=at)
    s.command("poweroff", r"power: off \(poweroff typed at the shell\)")
    assert s.wait_exit() == 0


@pytest.mark.parametrize("session", ["qemu", "bochs"], indirect=True)
def test_pause_stop_start_restart(session):
    s = session
    # pause: beta's vCPU is not run, so it ticks no more, while alpha ticks on.
    s.command("pause beta", r"pause: vm beta paused")
    assert list_row(s, "beta")["state"] == "paused"
    at = s.mark()
    s.expect(r"\[alpha\] console: tick \d+", 120, since=at)
    s.expect(r"\[alpha\] console: tick \d+", 120, since=s.expect(r"\[alpha\] console: tick \d+", 120, since=at).end())
    paused = s.text[at:]
    assert "[beta] console: tick" not in paused, "beta ticked while paused"
    s.command("pause beta", r"pause: vm beta is paused already")
    at = s.mark()
    s.command("resume beta", r"resume: vm beta running again")
    s.expect(r"\[beta\] console: tick \d+", 120, since=at)
    # restart from a clean image: the guest overwrites its marker and RAM first.
    s.command("attach alpha", r"console -> alpha")
    s.send("smash\r")
    s.expect(r"\[alpha\] console: smashed marker=SMASHED")
    s.send(CTRL_A + "s")
    at = s.mark()
    s.send("restart alpha\r")
    s.expect(r"vm alpha: restarting \(from the shell, restart 1\)", since=at)
    s.expect(r"^\[alpha\] console: boot marker=ORIGINAL ram=clean$", 120, since=at)
    # stop both: the machine stays up though on_idle = poweroff (a person stopped them).
    s.command("stop beta", r"stop: vm beta: stopped; its memory is kept")
    s.command("stop beta", r"stop: vm beta is stopped already \(stopped from the shell\)")
    s.command("stop alpha", r"stop: vm alpha: stopped")
    assert list_row(s, "beta")["state"] == "stopped (stopped from the shell)"
    s.command("resume alpha", r"resume: vm alpha is stopped; `start alpha` boots it")
    s.command("start", r"start: give one VM")
    at = s.mark()
    s.command("start beta", r"start: vm beta: booting from a clean image")
    s.expect(r"^\[beta\] console: boot marker=ORIGINAL ram=clean$", 120, since=at)
    s.expect(r"^\[beta\] console: ready$", 120, since=at)
    s.command("start beta", r"start: vm beta is running; `restart beta`")
    # A stopped VM restarts too; and its console still works after.
    at = s.mark()
    s.command("restart alpha", r"restart: vm alpha: restarting from a clean image")
    s.expect(r"^\[alpha\] console: ready$", 120, since=at)
    s.command("attach 1", r"console -> alpha")
    s.send("after restart\r")
    s.expect(r"^\[alpha\] console: echo after restart$", since=at)
    s.send(CTRL_A + "s")
    assert list_row(s, "alpha")["state"] in ("running", "halted")
    s.command("log 3", r"vm alpha: starting again \(from the shell\)")
    assert "power: off" not in s.text
    s.command("poweroff", r"power: off")
    assert s.wait_exit() == 0


GARBAGE = [
    "", "   ", "listx", "list extra", "stats", "stats nosuch", "stats alpha beta", "attach 0", "attach 3",
    "attach 99999999999999999999", "log 0", "log 1001", "log -1", "log x", "log 1 2", "pause", "stop nosuch",
    "poweroff now", "reboot please", "a b c d e f g", "\x00\x01\x02\x03", "\x1b[1;5A\x1b[200~\x1bO", "\x7f" * 10,
    "x" * 500, "help " + "y" * 200, "\x15stop alpha\x15", "restart alpha\x03", "%s%n%x%p", "\xff\xfe\x80",
]


@pytest.mark.parametrize("session", ["qemu", "bochs"], indirect=True)
def test_garbage_at_the_shell(session):
    s = session
    for line in GARBAGE:
        s.send(line + "\r")
    # Every line got its answer (or none for an empty one), and the shell still
    # answers: list shows both VMs, neither stopped by the garbage.
    s.expect(r"that line is longer than 127 characters; nothing was run")
    s.expect(r"stats: no VM 'nosuch'; the VMs are: alpha, beta")
    s.expect(r"unknown command 'listx'")
    s.expect(r"log: '1001' is not a number of lines from 1 to 1000")
    s.expect(r"poweroff takes nothing after it")
    s.expect(r"too many words")
    for name in ("alpha", "beta"):
        assert list_row(s, name)["state"] in ("running", "halted")
    assert "vm alpha: stopped" not in s.text and "restarting" not in s.text
    if s.emulator == "qemu":
        # reboot resets the machine: QEMU runs with -no-reboot, so it ends there
        # (tools/run: the emulator ended without a poweroff).
        s.command("reboot", r"power: reboot \(typed at the shell\)")
        assert s.wait_exit() == 1
    else:
        s.command("poweroff", r"power: off")
        assert s.wait_exit() == 0


LINUX_CFG = """[plinth]
on_idle = poweroff
console = linux

[vm linux]
loader = linux
kernel = guests/linux/vmlinux
initrd = guests/linux/initramfs.cpio.gz
cmdline = console=ttyS0 quiet linux-guest.cpus={vcpus} linux-guest.mem=128 linux-guest.clocksource=tsc linux-guest.stay
memory = 128M
vcpus = {vcpus}
cpus = 0-{last}

[vm alpha]
loader = multiboot
kernel = guests/console.elf
cmdline = tick=20
memory = 16M
cpus = {last}
"""
# QEMU: two vCPUs on a 2-CPU machine; Bochs: one, on one CPU (a PVH boot there is
# about 1.5 G instructions).
LINUX_VCPUS = {"qemu": 2, "bochs": 1}


@pytest.mark.parametrize("emulator", ["qemu", "bochs"])
def test_linux_console_and_restart(guest_build, tmp_path, emulator):
    """Debian's kernel (PVH entry; QEMU TCG with two vCPUs, Bochs with one) with the console at boot
    (console = linux): its shell reads what is typed through its 8250 driver's
    receive interrupt; the shell restarts it from a clean image and it boots, passes
    its self-check and takes input again, while alpha ticks throughout."""
    import test_linux
    missing = [f for f in test_linux.LINUX_FILES if not os.path.isfile(os.path.join(guest_build, f))]
    if missing:
        pytest.fail(f"`make all` left no {', '.join(missing)}", pytrace=False)
    cfg = tmp_path / "plinth.cfg"
    vcpus = LINUX_VCPUS[emulator]
    cfg.write_text(LINUX_CFG.format(vcpus=vcpus, last=vcpus - 1))
    iso = str(tmp_path / "linux.iso")
    test_guests.make_iso(guest_build, str(cfg), iso)
    with Session(emulator, iso, tmp_path, smp=vcpus, timeout=900) as s:
        s.expect(r"^\[linux\] linux-guest: selfcheck ok$", 400)
        s.expect(r"^\[linux\] linux-guest: shell \(linux-guest.stay\)", 120)
        at = s.mark()
        s.send("echo typed-$((6*7))\r")
        s.expect(r"^\[linux\] typed-42$", 120, since=at)
        at = s.mark()
        s.send(CTRL_A + "s")
        s.expect(r"plinth: console -> shell", since=at)
        row = list_row(s, "linux")
        assert row["vcpus"] == str(vcpus) and row["memory"] == "128", row
        at = s.mark()
        s.command("restart linux", r"restart: vm linux: restarting from a clean image")
        s.expect(rf"^\[linux\] linux-guest: up cpus={vcpus} ", 400, since=at)
        s.expect(r"^\[linux\] linux-guest: selfcheck ok$", 120, since=at)
        s.expect(r"^\[linux\] linux-guest: shell \(linux-guest.stay\)", 120, since=at)
        assert re.search(r"^\[alpha\] console: tick \d+$", s.text[at:], re.MULTILINE), "alpha stopped ticking"
        at = s.mark()
        s.send(CTRL_A + "1")
        s.expect(r"plinth: console -> linux \(1/2\)", since=at)
        s.send("echo again-$((2+3))\r")
        s.expect(r"^\[linux\] again-5$", 120, since=at)
        s.send(CTRL_A + "s")
        s.command("poweroff", r"power: off")
        assert s.wait_exit() == 0
