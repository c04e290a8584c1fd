"""Throwaway Postgres and Redis servers on free ports, for the test harness and the local launcher.

Postgres refuses to run as root, so when we are root its processes run as an unprivileged
user (`nobody` unless HERALD_SERVICE_USER names another). Nothing here imports Django.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SERVICE_USER = os.environ.get("HERALD_SERVICE_USER", "nobody")


class ServiceError(RuntimeError):
    """A local service could not be started; the message says why and what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether we could listen on `port` now (nothing listens there, nothing else holds it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_holder(port: int) -> str | None:
    """Who holds TCP `port` on this machine, read from /proc (Linux): `pid 123 (postgres -D ...)`.

    A listener is named first; failing that, a connection using the port as its local end (an
    outgoing connection's ephemeral port can sit inside a block of ports we want).
    """
    sockets: dict[str, str] = {}  # inode -> state
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] != "0":
                        sockets[fields[9]] = "listening" if fields[3] == "0A" else "connected"
        except (FileNotFoundError, StopIteration):
            continue
    if not sockets:
        return None
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry.name}/fd"):
                target = os.readlink(f"/proc/{entry.name}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in sockets:
                    command = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    found[sockets[target[8:-1]]] = f"pid {entry.name} ({command[:120]})"
        except OSError:
            continue
    if "listening" in found:
        return found["listening"]
    if "connected" in found:
        return f"a connection of {found['connected']}"
    return None


def service_tempdir(prefix: str) -> Path:
    """A new temporary directory that the unprivileged service user may enter."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    return directory


def postgres_bindir() -> Path | None:
    """Where Debian (or PATH) keeps postgres, initdb and pg_ctl; the newest major version wins."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    return Path(found).parent if found else None


def _run_as_service_user() -> dict:
    """subprocess keyword arguments that drop root for database processes."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise ServiceError(f"Running as root, but the unprivileged user {SERVICE_USER!r} does not exist.") from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _give_to_service_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def stop_process(process: subprocess.Popen | None, *, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Ask a child to stop with `sig`, and kill it if it has not stopped within `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until(predicate, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    tail = ""
    if log and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise ServiceError(f"{what} did not become ready within {timeout:.0f}s.{tail}")


class LocalPostgres:
    """A Postgres cluster in `directory`, listening on 127.0.0.1:`port` with trust auth."""

    def __init__(self, directory: Path, port: int | None = None, user: str = "herald", database: str = "herald"):
        self.directory = Path(directory)
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = port or free_port()
        self.user = user
        self.database = database
        self.process: subprocess.Popen | None = None
        bindir = postgres_bindir()
        if bindir is None:
            raise ServiceError("The PostgreSQL server is not installed (Debian: apt-get install postgresql).")
        self.bindir = bindir

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _check_reachable(self) -> None:
        # Postgres runs as another user, who must be able to walk down to its data directory.
        if os.geteuid() != 0:
            return
        probe = subprocess.run(["test", "-x", str(self.directory)], **_run_as_service_user())
        if probe.returncode != 0:
            raise ServiceError(
                f"The unprivileged user {SERVICE_USER!r} cannot reach {self.directory}; "
                "put it under a directory others may enter (for example /tmp or /var/tmp)."
            )

    def initialise(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _give_to_service_user(self.directory)
        self._check_reachable()
        if (self.data / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            **_run_as_service_user(),
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def initialise_as_standby_of(self, primary: LocalPostgres) -> None:
        """Clone `primary` with pg_basebackup into a streaming standby (started by `start`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _give_to_service_user(self.directory)
        self._check_reachable()
        result = subprocess.run(
            [
                str(self.bindir / "pg_basebackup"),
                "-D",
                str(self.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                primary.user,
                "--write-recovery-conf",
                "--checkpoint=fast",
                "--wal-method=stream",
            ],
            capture_output=True,
            text=True,
            **_run_as_service_user(),
        )
        if result.returncode != 0:
            raise ServiceError(f"pg_basebackup failed:\n{result.stdout}{result.stderr}")

    def start(self, *, fast_and_unsafe: bool = False) -> LocalPostgres:
        """Start the server; `fast_and_unsafe` turns off fsync for throwaway test data."""
        self.initialise()
        options = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.directory}",
            "-c",
            "max_connections=200",
        ]
        if fast_and_unsafe:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_run_as_service_user(),
            )
        _wait_until(self._accepts_connections, 30, f"Postgres on port {self.port}", self.log)
        if not (self.data / "standby.signal").exists():
            self._create_database()
        return self

    def _accepts_connections(self) -> bool:
        if self.process and self.process.poll() is not None:
            raise ServiceError(
                "Postgres exited at start-up:\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
            )
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
        )
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def _create_database(self) -> None:
        # The name is ours (a constructor argument), never user input.
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"):  # noqa: S608
            self.psql(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        # SIGINT is Postgres's "fast" shutdown: roll back clients, write a checkpoint, exit.
        stop_process(self.process, sig=signal.SIGINT)
        self.process = None


class LocalRedis:
    """A Redis server on 127.0.0.1:`port` that keeps nothing on disk."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = Path(directory)
        self.port = port or free_port()
        self.log = self.directory / "redis.log"
        self.process: subprocess.Popen | None = None
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("Redis is not installed (Debian: apt-get install redis-server).")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.directory),
                    "--protected-mode",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_until(self._answers_ping, 15, f"Redis on port {self.port}", self.log)
        return self

    def _answers_ping(self) -> bool:
        if self.process and self.process.poll() is not None:
            raise ServiceError("Redis exited at start-up:\n" + self.log.read_text(errors="replace")[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        self.process = None
