"""The Linux guest's virtio pieces as the recipe built them, checked without booting:

    modules/          guests/linux/mkmodules: the .ko files and their load order
    initramfs.cpio.gz guests/linux/mkinitramfs: /lib/modules/<name>.ko and order
    disk.ext4         guests/linux/mkdisk: data.bin and data.sha256 on ext4

The order must load every module after the modules its own .modinfo names (depends=,
and the module or alias of each softdep "pre:"), the initramfs must carry exactly those
files, the disk's data.bin must match its data.sha256 (read with e2fsprogs' debugfs, no
root or mount needed) and mkdisk must make the same bytes again.  The files come from
$PLINTH_BUILD/guests/linux (build/ if unset); when the Linux guest is not built there
the tests skip (`make guests` builds it)."""
import hashlib
import os
import re
import shutil
import struct
import subprocess

import pytest

import plinthboot
from test_linux import read_newc

MKDISK = os.path.join(plinthboot.ROOT, "guests", "linux", "mkdisk")
DISK_SIZE = 16 << 20
DATA_SIZE = 1 << 20


@pytest.fixture(scope="module")
def linux_dir():
    d = os.path.join(plinthboot.build_dir(), "guests", "linux")
    if not os.path.isfile(os.path.join(d, "initramfs.cpio.gz")):
        pytest.skip(f"the Linux guest is not built in {d} (`make guests` builds it)")
    missing = [f for f in ("modules/order", "disk.ext4") if not os.path.isfile(os.path.join(d, f))]
    if missing:
        pytest.fail(f"{d} has an initramfs but no {', '.join(missing)}: a build from before the virtio "
                    "modules and disk; run `make guests` again", pytrace=False)
    return d


def modinfo(path):
    """[(key, value)] of the .modinfo section of an ELF64 kernel module."""
    with open(path, "rb") as f:
        elf = f.read()
    assert elf[:4] == b"\x7fELF" and elf[4] == 2, f"{path} is not an ELF64 file"
    e_shoff, = struct.unpack_from("<Q", elf, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", elf, 0x3a)
    shdrs = [struct.unpack_from("<IIQQQQ", elf, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    names = shdrs[e_shstrndx][4]
    for name, _, _, _, off, size in shdrs:
        if elf[names + name:elf.index(b"\0", names + name)] == b".modinfo":
            return [tuple(item.decode().split("=", 1)) for item in elf[off:off + size].split(b"\0")
                    if b"=" in item]
    pytest.fail(f"{path} has no .modinfo section", pytrace=False)


def read_order(d):
    with open(os.path.join(d, "modules", "order")) as f:
        return f.read().split()


def test_module_order(linux_dir):
    """Every module after what it needs; the roots mkmodules asks for all there; no .ko
    but the ordered ones."""
    order = read_order(linux_dir)
    problems = []
    if len(set(order)) != len(order):
        problems.append(f"order lists a module twice: {order}")
    for root in ("virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "ext4"):
        if root not in order:
            problems.append(f"order has no {root}")
    kos = sorted(f[:-3] for f in os.listdir(os.path.join(linux_dir, "modules")) if f.endswith(".ko"))
    if kos != sorted(order):
        problems.append(f"modules/ holds {kos}, the order lists {sorted(order)}")
    seen, provided = set(), set()
    for mod in order:
        info = modinfo(os.path.join(linux_dir, "modules", mod + ".ko"))
        name = [v for k, v in info if k == "name"]
        if name != [mod]:
            problems.append(f"{mod}.ko calls itself {name}")
        for value in (v for k, v in info if k == "depends"):
            for dep in filter(None, value.split(",")):
                if dep.replace("-", "_") not in seen:
                    problems.append(f"{mod} depends on {dep}, which the order does not load before it")
        for value in (v for k, v in info if k == "softdep"):
            words = value.split()
            pre = words[words.index("pre:") + 1:] if "pre:" in words else []
            if "post:" in pre:
                pre = pre[:pre.index("post:")]
            for want in pre:
                if want.replace("-", "_") not in seen and want not in provided:
                    problems.append(f"{mod} wants {want} loaded first (softdep); no earlier module provides it")
        seen.add(mod)
        provided |= {v for k, v in info if k == "alias"}
    if problems:
        pytest.fail(f"order {order}:\n" + "\n".join(problems), pytrace=False)


def test_initramfs_modules(linux_dir):
    """/lib/modules/order and each module, byte for byte as mkmodules wrote them."""
    entries = read_newc(os.path.join(linux_dir, "initramfs.cpio.gz"))
    with open(os.path.join(linux_dir, "modules", "order"), "rb") as f:
        order_text = f.read()
    problems = []
    if entries.get("lib/modules/order", (0, 0, 0, None))[3] != order_text:
        problems.append("initramfs: lib/modules/order missing or not modules/order")
    for mod in order_text.decode().split():
        with open(os.path.join(linux_dir, "modules", mod + ".ko"), "rb") as f:
            body = f.read()
        if entries.get(f"lib/modules/{mod}.ko", (0, 0, 0, None))[3] != body:
            problems.append(f"initramfs: lib/modules/{mod}.ko missing or not modules/{mod}.ko")
    extra = [n for n in entries if n.startswith("lib/modules/") and n != "lib/modules/order"
             and n[len("lib/modules/"):-3] not in order_text.decode().split()]
    if extra:
        problems.append(f"initramfs: modules the order does not list: {extra}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def debugfs(image, request):
    tool = shutil.which("debugfs") or shutil.which("debugfs", path="/usr/sbin:/sbin")
    if not tool:
        pytest.fail("debugfs is not installed (e2fsprogs; `make deps`)", pytrace=False)
    proc = subprocess.run([tool, "-R", request, image], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    assert proc.returncode == 0, f"debugfs -R '{request}' {image}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout


def test_disk_contents(linux_dir):
    """A 16 MiB image whose 1 MiB data.bin matches data.sha256 ("<hex>  data.bin"), and
    nothing a guest wrote (no /written)."""
    image = os.path.join(linux_dir, "disk.ext4")
    assert os.path.getsize(image) == DISK_SIZE, f"{image} is {os.path.getsize(image)} bytes, expected 16 MiB"
    data = debugfs(image, "cat /data.bin")
    sums = debugfs(image, "cat /data.sha256").decode()
    m = re.fullmatch(r"([0-9a-f]{64})  data\.bin\n", sums)
    problems = []
    if len(data) != DATA_SIZE:
        problems.append(f"data.bin holds {len(data)} bytes, expected {DATA_SIZE}")
    if not m:
        problems.append(f"data.sha256 reads {sums!r}, not sha256sum's '<hex>  data.bin' line")
    elif m.group(1) != hashlib.sha256(data).hexdigest():
        problems.append(f"data.bin's sha256 is {hashlib.sha256(data).hexdigest()}, data.sha256 says {m.group(1)}")
    if b"written" in debugfs(image, "ls /"):
        problems.append("the image holds /written: it is not pristine")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_disk_reproducible(linux_dir, tmp_path):
    """mkdisk run again gives the same bytes as the build's disk.ext4."""
    out = tmp_path / "disk.ext4"
    proc = subprocess.run([MKDISK, str(out)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    assert proc.returncode == 0, f"mkdisk failed:\n{proc.stdout.decode(errors='replace')}"
    with open(os.path.join(linux_dir, "disk.ext4"), "rb") as f:
        built = f.read()
    if out.read_bytes() != built:
        pytest.fail("mkdisk made different bytes this time (was disk.ext4 made by another e2fsprogs?)",
                    pytrace=False)
