"""The drills' handle on a real local cluster (platform/stack.py): commands, load, data, results."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from common.local_services import port_is_free, service_tempdir

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / "platform" / "stack.py"
DEMO_EMAIL, DEMO_PASSWORD = "demo@herald.test", "herald-demo-password"


def load_stack_module():
    """platform/stack.py as a module (platform/ is not a package, and must never become one)."""
    spec = importlib.util.spec_from_file_location("herald_stack", STACK_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


stack_module = load_stack_module()


def free_base_port() -> int:
    """A base port whose whole block is free, below the kernel's ephemeral range."""
    span = max(stack_module.PORT_OFFSETS.values())
    candidates = list(range(20000, 32000 - span, 500))
    random.shuffle(candidates)
    for base in candidates:
        if all(port_is_free(base + offset) for offset in stack_module.PORT_OFFSETS.values()):
            return base
    raise RuntimeError("no free block of ports for the drill cluster")


@dataclass
class DrillResult:
    name: str
    requests: int
    failed: int
    recovery_s: float
    lost_writes: int
    expectation: str = ""
    passed: bool = True

    @property
    def line(self) -> str:
        return (
            f"DRILL {self.name}: requests={self.requests} failed={self.failed} "
            f"recovery_s={self.recovery_s:.1f} lost_writes={self.lost_writes}"
        )


RESULTS: list[DrillResult] = []


@dataclass
class Load:
    """A load process (tests/drills/load.py) running against the cluster's HAProxy."""

    process: subprocess.Popen
    output: Path
    stop_file: Path
    records: list[dict] = field(default_factory=list)

    def stop(self, timeout: float = 60) -> list[dict]:
        self.stop_file.touch()
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.records = json.loads(self.output.read_text()) if self.output.exists() else []
        return self.records


class Cluster:
    def __init__(self, directory: Path, base_port: int):
        self.directory = directory
        self.stack = stack_module.Stack(directory, base_port)
        self.url = self.stack.url
        self._loads: list[Load] = []

    # --- the command line, as an operator uses it --------------------------------------

    def run(self, *args: str, timeout: float = 240, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [
                sys.executable,
                str(STACK_SCRIPT),
                "--var-dir",
                str(self.directory),
                "--base-port",
                str(self.stack.base_port),
                *args,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"stack.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def status(self) -> dict[str, dict]:
        result = self.run("status", "--json", check=False)
        return {row["name"]: row for row in json.loads(result.stdout)}

    def kill(self, name: str, sig: str = "KILL") -> None:
        self.run("kill", name, "--signal", sig)

    def start(self, name: str) -> None:
        self.run("start", name)

    def pids(self, *names: str) -> dict[str, int]:
        status = self.status()
        return {name: status[name]["pid"] for name in names}

    def restore(self, timeout: float = 150) -> None:
        """Start whatever is down and wait until every component is healthy."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            for name in stack_module.COMPONENTS:
                if status[name]["state"] != "RUNNING":
                    self.start(name)
            status = self.status()
            if all(row["healthy"] for row in status.values()) and self.web_nodes_up():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster did not return to full health: {status}")
            time.sleep(0.5)

    def web_nodes_up(self) -> bool:
        servers = self.stack.haproxy_servers()
        return servers.get(("web_nodes", "web1")) == "UP" and servers.get(("web_nodes", "web2")) == "UP"

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 0.1) -> float:
        """Seconds until predicate() held; fails the test after `timeout`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with contextlib.suppress(OSError, ValueError):
                if predicate():
                    return time.monotonic() - started
            time.sleep(interval)
        raise AssertionError(f"{what} did not happen within {timeout}s")

    # --- load and data ------------------------------------------------------------------

    def start_load(self, mode: str, duration: float = 120, **options) -> Load:
        work = Path(service_tempdir("herald-load-"))
        output, stop_file = work / "records.json", work / "stop"
        command = [
            sys.executable,
            "-m",
            "tests.drills.load",
            "--url",
            self.url,
            "--mode",
            mode,
            "--email",
            DEMO_EMAIL,
            "--password",
            DEMO_PASSWORD,
            "--output",
            str(output),
            "--stop-file",
            str(stop_file),
            "--duration",
            str(duration),
        ]
        for key, value in options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load = Load(process, output, stop_file)
        self._loads.append(load)
        return load

    def stop_loads(self) -> None:
        for load in self._loads:
            if load.process.poll() is None:
                load.stop()
        self._loads.clear()

    def database(self) -> psycopg.Connection:
        """A connection to the current primary, through HAProxy, as the app connects."""
        return psycopg.connect(self.stack.database_url("pg_primary"), connect_timeout=3, autocommit=True)

    def missing_sessions(self, session_keys: list[str]) -> int:
        if not session_keys:
            return 0
        with self.database() as connection:
            found = connection.execute(
                "SELECT count(*) FROM django_session WHERE session_key = ANY(%s)", (session_keys,)
            ).fetchone()[0]
        return len(set(session_keys)) - found

    def send_probe(self, seconds: float) -> str:
        """Queue the drill probe task on the cluster's broker; returns its token."""
        token = uuid.uuid4().hex
        code = (
            "import django; django.setup(); from operations.tasks import drill_probe; "
            f"drill_probe.apply_async(args=[{token!r}, {seconds!r}])"
        )
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, **self.stack.app_environment()},
            check=True,
            capture_output=True,
            timeout=60,
        )
        return token

    def probe(self, token: str) -> dict | None:
        with self.database() as connection:
            row = connection.execute(
                "SELECT starts, last_started_by, completed_by, completed_at"
                " FROM operations_drillprobe WHERE token = %s",
                (token,),
            ).fetchone()
        if row is None:
            return None
        return {"starts": row[0], "last_started_by": row[1], "completed_by": row[2], "completed": row[3] is not None}
