"""BOOTX64.EFI under OVMF: a good USB image reaches the core, and broken ones stop
in the loader with its message instead of hanging or jumping into garbage.

Self-contained: builds its images with tools/mkusb from the artifacts in
$PLINTH_BUILD (default build/; run `make` first) into pytest's tmp_path, and runs
QEMU (TCG, OVMF) itself."""
import os
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS.fd"
ESP_OFFSET = 1 << 20          # tools/mkusb puts the ESP at sector 2048
BOOT_TIMEOUT = 120            # OVMF under TCG takes ~10 s to reach a boot option
SETTLE = 5                    # after the loader's error: time the core would need

LOADER_HELLO = "plinth: plinth BOOTX64.EFI"
CORE_BANNER = "boot: uefi via plinth BOOTX64.EFI"
LOADER_WAITS = "plinth: press any key to return to the firmware."


def build_dir():
    path = os.environ.get("PLINTH_BUILD") or "build"
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


@pytest.fixture(scope="module")
def artifacts():
    build = build_dir()
    paths = {name: os.path.join(build, name) for name in ("BOOTX64.EFI", "plinth.elf")}
    missing = [p for p in paths.values() if not os.path.isfile(p)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make BUILD={build}` first "
                    "(or set PLINTH_BUILD)", pytrace=False)
    for tool in ("qemu-system-x86_64", "sgdisk", "mkfs.fat", "mcopy"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed: run tools/deps", pytrace=False)
    return paths


def mkusb(artifacts, tmp_path, name, elf=None, cfg=None):
    out = tmp_path / name
    cfg = cfg or os.path.join(ROOT, "plinth.cfg")
    subprocess.run([os.path.join(ROOT, "tools", "mkusb"), artifacts["BOOTX64.EFI"],
                    str(elf or artifacts["plinth.elf"]), str(cfg), str(out)],
                   cwd=ROOT, check=True, stdin=subprocess.DEVNULL)
    return out


def esp(image, *args):
    """Runs an mtools command on the image's ESP."""
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    cmd = [args[0], "-i", f"{image}@@{ESP_OFFSET}", *args[1:]]
    subprocess.run(cmd, check=True, env=env, stdin=subprocess.DEVNULL)


def boot_until(image, tmp_path, stop, timeout=BOOT_TIMEOUT, settle=0):
    """Boots image under OVMF until `stop` shows in the serial log (then `settle`
    more seconds) or timeout; returns the log."""
    vars_copy = tmp_path / f"{image.name}.vars.fd"
    shutil.copyfile(OVMF_VARS, vars_copy)
    log_path = tmp_path / f"{image.name}.serial.log"
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "2",
           "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
           "-drive", f"if=pflash,format=raw,file={vars_copy}",
           "-drive", f"format=raw,file={image}",
           "-serial", f"file:{log_path}", "-display", "none", "-nic", "none",
           "-no-reboot"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    seen_at = None
    log = ""
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if log_path.exists():
                log = log_path.read_bytes().decode(errors="replace")
            if seen_at is None and stop in log:
                seen_at = time.monotonic()
            if seen_at is not None and time.monotonic() - seen_at >= settle:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    if log_path.exists():
        log = log_path.read_bytes().decode(errors="replace")
    if proc.returncode not in (None, 0, -9) and stop not in log:
        log += f"\n[qemu exited with {proc.returncode}: {err.decode(errors='replace')}]"
    return log


def check(cond, what, log):
    assert cond, f"{what}\n--- serial log ---\n{log}\n--- end of serial log ---"


def expect_loader_error(log, message):
    check(message in log, f"the loader's message {message!r} is missing", log)
    check(LOADER_WAITS in log, "the loader did not stop to wait after its error", log)
    check("plinth 0.1.0" not in log and "boot: uefi" not in log,
          "the core ran although the loader reported an error", log)


def test_uefi_boot_reaches_core(artifacts, tmp_path):
    image = mkusb(artifacts, tmp_path, "good.img")
    log = boot_until(image, tmp_path, CORE_BANNER, settle=1)
    check(LOADER_HELLO in log, "BOOTX64.EFI never started", log)
    check(CORE_BANNER in log, "the core's banner never appeared after the loader", log)
    check(log.index(LOADER_HELLO) < log.index(CORE_BANNER), "banner before the loader", log)
    check("plinth: loaded plinth.elf at 0x" in log, "the loader did not report the load", log)


def test_named_files_are_handed_over(artifacts, tmp_path):
    image = mkusb(artifacts, tmp_path, "files.img")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(300 * 1024))
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text("[plinth]\n"
                   "on_idle = poweroff\n"
                   "[guest blob]\n"
                   "kernel = files/blob/kernel.bin   # the same file twice is loaded once\n"
                   "module = files/blob/kernel.bin\n"
                   "initrd = files/blob/initrd.bin\n")
    # A directory of its own: the image already holds the default config's guests/.
    esp(image, "mmd", "::/files", "::/files/blob")
    esp(image, "mcopy", str(blob), "::/files/blob/kernel.bin")
    esp(image, "mcopy", str(blob), "::/files/blob/initrd.bin")
    esp(image, "mcopy", "-o", str(cfg), "::/plinth.cfg")
    log = boot_until(image, tmp_path, CORE_BANNER, settle=1)
    check("plinth: loaded plinth.elf at 0x" in log and ", 3 files; starting the core" in log,
          "the loader did not load plinth.cfg and the two files it names", log)
    check(CORE_BANNER in log, "the core's banner never appeared after the loader", log)


def test_bad_elf_magic_is_reported(artifacts, tmp_path):
    elf = tmp_path / "plinth.elf"
    data = bytearray(open(artifacts["plinth.elf"], "rb").read())
    data[0:4] = b"\0\0\0\0"
    elf.write_bytes(data)
    image = mkusb(artifacts, tmp_path, "badmagic.img", elf=elf)
    log = boot_until(image, tmp_path, LOADER_WAITS, settle=SETTLE)
    expect_loader_error(log, "plinth: cannot start \\plinth.elf: plinth.elf is not an ELF "
                             "file (bad magic). Rebuild the USB image")


def test_truncated_elf_is_reported(artifacts, tmp_path):
    elf = tmp_path / "plinth.elf"
    # Room for the ELF header and two program headers (64 + 2 * 56), not the third.
    elf.write_bytes(open(artifacts["plinth.elf"], "rb").read()[:200])
    image = mkusb(artifacts, tmp_path, "truncated.img", elf=elf)
    log = boot_until(image, tmp_path, LOADER_WAITS, settle=SETTLE)
    expect_loader_error(log, "plinth.elf is truncated: program header 2 runs past the end "
                             "of the file")


def test_config_naming_missing_file_is_reported(artifacts, tmp_path):
    image = mkusb(artifacts, tmp_path, "missingfile.img")
    cfg = tmp_path / "plinth.cfg"
    cfg.write_text("# a guest whose kernel is not on the medium\n"
                   "[plinth]\n"
                   "on_idle = poweroff\n"
                   "[guest ghost]\n"
                   "kernel = guests/ghost/bzImage\n")
    esp(image, "mcopy", "-o", str(cfg), "::/plinth.cfg")
    log = boot_until(image, tmp_path, LOADER_WAITS, settle=SETTLE)
    expect_loader_error(log, "plinth: cannot load guests/ghost/bzImage, named by plinth.cfg "
                             "line 5 (`kernel = guests/ghost/bzImage`): not found on the "
                             "boot volume")


def test_missing_config_is_reported(artifacts, tmp_path):
    image = mkusb(artifacts, tmp_path, "nocfg.img")
    esp(image, "mdel", "::/plinth.cfg")
    log = boot_until(image, tmp_path, LOADER_WAITS, settle=SETTLE)
    expect_loader_error(log, "plinth: cannot load \\plinth.cfg: not found on the boot volume")
