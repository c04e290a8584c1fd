"""The single-node launcher (platform/devserver.py) serves a working login at the URL it prints, then stops."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from common.local_services import free_port, port_is_open, service_tempdir
from tests.web import sign_in

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def read_until(process, pattern: str, timeout: float) -> tuple[re.Match, str]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(pattern, "".join(seen))
        if match:
            return match, "".join(seen)
    raise AssertionError(f"launcher never printed {pattern!r}; it printed:\n{''.join(seen)}")


def test_launcher_prints_a_url_and_login_that_work():
    directory = service_tempdir("herald-run-")
    ports = [free_port() for _ in range(3)]
    process = subprocess.Popen(
        [
            sys.executable,
            "platform/devserver.py",
            "--var-dir",
            str(directory),
            "--port",
            str(ports[0]),
            "--postgres-port",
            str(ports[1]),
            "--redis-port",
            str(ports[2]),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        match, output = read_until(
            process, r"Herald is up at (\S+)/\n\s+Sign in as (\S+) / (\S+).*\n.*/health\n", timeout=120
        )
        url, email, password = match.groups()
        assert url == f"http://127.0.0.1:{ports[0]}"
        assert requests.get(f"{url}/accounts/login/", timeout=10).status_code == 200
        dashboard = sign_in(url, email, password).get(f"{url}/", timeout=10)
        assert dashboard.status_code == 200
        assert "Demo Workspace" in dashboard.text
        token = re.search(r"Bearer (\S+)' \S+/health", output).group(1)
        detail = requests.get(f"{url}/health", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert detail["status"] == "ok"
        assert set(detail["components"]) == {"database", "redis", "broker", "backups"}
        assert requests.get(f"{url}/health", timeout=10).json() == {"status": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0
    assert not any(port_is_open(port) for port in ports), "a service outlived the launcher"


def test_launcher_names_a_port_that_is_taken():
    directory = service_tempdir("herald-run-")
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "platform/devserver.py",
                "--var-dir",
                str(directory),
                "--port",
                str(taken),
                "--postgres-port",
                str(free_port()),
                "--redis-port",
                str(free_port()),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Port {taken} (for web) is already in use" in result.stderr
