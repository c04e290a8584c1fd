"""Installs the system programs Herald needs on Debian, or names them when it cannot.

Usage: python3 platform/system_packages.py postgres redis chromium ...
Run with the system's python3 before any virtualenv exists (it uses only the standard library).
"""

import glob
import os
import shutil
import subprocess
import sys

# need -> (how to tell it is there, the Debian package that provides it)
PROGRAMS = {
    "venv": (
        lambda: subprocess.run([sys.executable, "-c", "import ensurepip, venv"], capture_output=True).returncode == 0,
        "python3-venv",
    ),
    "postgres": (
        lambda: bool(glob.glob("/usr/lib/postgresql/*/bin/postgres") or shutil.which("postgres")),
        "postgresql",
    ),
    "redis": (lambda: shutil.which("redis-server") is not None, "redis-server"),
    "chromium": (lambda: os.path.exists("/usr/bin/chromium"), "chromium"),
    "haproxy": (lambda: shutil.which("haproxy") is not None, "haproxy"),
    "etcd": (lambda: shutil.which("etcd") is not None, "etcd-server"),
    # Debian's Patroni runs on Debian's python3 with its etcd client; it is not in the virtualenv.
    "patroni": (lambda: shutil.which("patroni") is not None, "patroni"),
    "wrk": (lambda: shutil.which("wrk") is not None, "wrk"),
}


def main(needs: list[str]) -> int:
    unknown = [need for need in needs if need not in PROGRAMS]
    if unknown:
        print(f"Unknown requirement(s): {', '.join(unknown)}; known: {', '.join(PROGRAMS)}", file=sys.stderr)
        return 2
    missing = [PROGRAMS[need][1] for need in needs if not PROGRAMS[need][0]()]
    if not missing:
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"Herald needs these system packages: {' '.join(missing)}\n"
            f"On Debian or Ubuntu: sudo apt-get install -y {' '.join(missing)}",
            file=sys.stderr,
        )
        return 1
    print(f"Installing system packages: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env).returncode != 0:
        # A fresh machine may not have package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
        if subprocess.run(install, env=env).returncode != 0:
            print(f"Could not install {' '.join(missing)} with apt-get.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
