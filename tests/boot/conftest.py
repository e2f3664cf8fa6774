"""Fixtures for the boot tests.  Run them as `make boot-test` (or `make test`), or
directly with Debian's pytest:

    /usr/bin/python3 -m pytest -v tests/boot [-k qemu-uefi-smp2]

$PLINTH_BUILD names the build directory (default build/)."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plinthboot  # noqa: E402

# The testbeds are QEMU's TCG (AMD-V) and Bochs (VT-x): a machine with /dev/kvm must not
# turn the QEMU runs into KVM runs, whose CPU (and whether it offers nested
# virtualization at all) is the host's, not the tests'.  tools/run reads this.
os.environ["PLINTH_ACCEL"] = "tcg"


@pytest.fixture(scope="session")
def plinth_build():
    """Builds every image once per session (`make all`, a no-op when up to date) and
    returns the build directory."""
    build = plinthboot.build_dir()
    proc = subprocess.run(["make", "-C", plinthboot.ROOT, f"BUILD={build}", "all"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        out = proc.stdout.decode(errors="replace")
        pytest.fail(f"`make BUILD={build} all` failed (status {proc.returncode}):\n{out[-6000:]}",
                    pytrace=False)
    return build
