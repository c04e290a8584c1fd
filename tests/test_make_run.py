"""`make run` (platform/stack.py up): the whole cluster comes up healthy, the printed login works
through HAProxy, Ctrl-C stops everything; a taken port is named with the process holding it."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from common.local_services import port_is_free, service_tempdir
from tests.drills.cluster import free_base_port, stack_module
from tests.web import sign_in

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
STACK = [sys.executable, "platform/stack.py"]


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
    raise AssertionError(f"stack.py up never printed {pattern!r}; it printed:\n{''.join(seen)}")


def test_up_brings_every_component_up_and_the_login_works_through_haproxy():
    directory = service_tempdir("herald-run-")
    base = free_base_port()
    options = ["--var-dir", str(directory), "--base-port", str(base)]
    started = time.monotonic()
    process = subprocess.Popen(
        [*STACK, *options, "up"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        match, output = read_until(
            process,
            r"Herald is up at (\S+)/ .*\n\s+Sign in as (\S+) / (\S+) .*\n"
            r"\s+SMTP sink .*: (\S+)\n\s+Inbound mailbox .*: SMTP 127\.0\.0\.1:(\d+)\n"
            r"\s+HAProxy stats: (\S+)\n.*/health\n",
            timeout=180,
        )
        elapsed = time.monotonic() - started
        url, email, password, smtp_url, inbound_port, stats_url = match.groups()
        assert url == f"http://127.0.0.1:{base + stack_module.PORT_OFFSETS['haproxy_web']}"
        assert int(inbound_port) == base + stack_module.PORT_OFFSETS["inbound"]
        assert elapsed < 60, f"the cluster took {elapsed:.0f}s to come up"

        status = subprocess.run([*STACK, *options, "status", "--json"], cwd=REPO, capture_output=True, text=True)
        rows = json.loads(status.stdout)
        assert [row["name"] for row in rows] == stack_module.COMPONENTS
        assert all(row["healthy"] for row in rows), rows
        assert status.returncode == 0
        table = subprocess.run([*STACK, *options, "status"], cwd=REPO, capture_output=True, text=True).stdout
        assert re.search(r"pg\d\s+RUNNING\s+yes\s+\d+\s+primary", table), table

        session = sign_in(url, email, password)
        dashboard = session.get(f"{url}/", timeout=10)
        assert dashboard.status_code == 200 and "Demo Workspace" in dashboard.text
        token = re.search(r"Bearer (\S+)' \S+/health", output).group(1)
        detail = requests.get(f"{url}/health", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert detail["status"] == "ok", detail
        assert detail["components"]["database_replica"]["detail"]["in_recovery"] is True
        assert detail["components"]["broker"]["detail"]["transport"] == "sentinel"
        assert requests.get(smtp_url, timeout=5).status_code == 200
        assert "web_nodes" in requests.get(f"{stats_url};csv", timeout=5).text
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=120)
    assert process.returncode == 0
    assert stack_module.Stack(directory, base).supervisord_pid() is None
    taken = [
        port for port in (base + offset for offset in stack_module.PORT_OFFSETS.values()) if not port_is_free(port)
    ]
    assert not taken, f"ports still held after Ctrl-C: {taken}"


def test_up_names_the_port_that_is_taken_and_who_holds_it():
    directory = service_tempdir("herald-run-")
    base = free_base_port()
    with socket.socket() as holder:
        # An earlier cluster of this session may have left connections to the port in TIME_WAIT.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", base + stack_module.PORT_OFFSETS["pg1"]))
        holder.listen()
        result = subprocess.run(
            [*STACK, "--var-dir", str(directory), "--base-port", str(base), "up", "--detach"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Port {base + 101} (for pg1) is already in use by pid {os.getpid()} (" in result.stderr
    assert stack_module.Stack(directory, base).supervisord_pid() is None


def test_commands_need_a_running_cluster():
    directory = service_tempdir("herald-run-")
    result = subprocess.run(
        [*STACK, "--var-dir", str(directory), "status"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "The cluster is not running" in result.stderr
