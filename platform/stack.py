"""Herald's local high-availability cluster: every component of production's layout on one machine.

    python platform/stack.py up [--detach]     start everything (Ctrl-C stops it all)
    python platform/stack.py down              stop everything
    python platform/stack.py status [--json]   each component, healthy or not
    python platform/stack.py kill NAME [--signal KILL|TERM]
    python platform/stack.py start NAME
    python platform/stack.py failover          planned Patroni switchover to the standby
    python platform/stack.py logs NAME [-n 50]
    python platform/stack.py mail              the messages the SMTP sink accepted

Configuration is written from the templates in platform/templates/ into the state directory
(var/stack/ by default), and supervisord (from PyPI) runs the components. Ports are a block
counted from --base-port (17000). Postgres, Patroni, etcd and Redis run as an unprivileged
user when started as root. platform/README.md draws the topology.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
sys.path.insert(0, str(REPO))

from common.local_services import SERVICE_USER, port_holder, port_is_free, postgres_bindir  # noqa: E402

# Below Linux's ephemeral range (32768-60999), so no outgoing connection can hold one of them.
DEFAULT_BASE_PORT = 17000
DEMO_LOGIN = ("demo@herald.test", "herald-demo-password")
SENTINEL_MASTER = "herald"

# Offsets from the base port; `up` refuses to start when any of them is taken.
PORT_OFFSETS = {
    "web1": 1,
    "web2": 2,
    "smtp": 25,
    "smtp_http": 26,
    "inbound": 27,
    "haproxy_web": 80,
    "haproxy_stats": 81,
    "pg1": 101,
    "pg2": 102,
    "pg1_rest": 111,
    "pg2_rest": 112,
    "redis1": 201,
    "redis2": 202,
    "sentinel1": 261,
    "sentinel2": 262,
    "sentinel3": 263,
    "etcd": 379,
    "etcd_peer": 380,
    "pg_primary": 432,
    "pg_replica": 433,
}

# The components in start order; `down` stops them in reverse (standby before primary).
COMPONENTS = [
    "etcd",
    "pg1",
    "pg2",
    "redis1",
    "redis2",
    "sentinel1",
    "sentinel2",
    "sentinel3",
    "smtp",
    "inbound",
    "haproxy",
    "web1",
    "web2",
    "worker1",
    "worker2",
    "beat",
]
APP_COMPONENTS = ["web1", "web2", "worker1", "worker2", "beat"]
# Run as the unprivileged service user when we are root (Postgres refuses root outright).
UNPRIVILEGED = {"etcd", "pg1", "pg2", "redis1", "redis2", "sentinel1", "sentinel2", "sentinel3"}


class StackError(RuntimeError):
    """Something the operator must act on; the message says what."""


@dataclass
class Stack:
    var: Path
    base_port: int

    # --- layout ---------------------------------------------------------------------

    def port(self, name: str) -> int:
        return self.base_port + PORT_OFFSETS[name]

    @property
    def socket_path(self) -> Path:
        return self.var / "supervisor.sock"

    @property
    def pidfile(self) -> Path:
        return self.var / "supervisord.pid"

    @property
    def logs(self) -> Path:
        return self.var / "logs"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port('haproxy_web')}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.port('haproxy_stats')}/"

    @property
    def smtp_url(self) -> str:
        return f"http://127.0.0.1:{self.port('smtp_http')}/"

    def secrets(self) -> dict[str, str]:
        """Passwords and keys generated on first use, kept in the state directory (mode 600)."""
        path = self.var / "secrets.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        wanted = ("secret_key", "health_token", "superuser_password", "replication_password", "herald_password")
        if any(name not in stored for name in wanted):
            for name in wanted:
                stored.setdefault(name, secrets.token_urlsafe(32))
            self.var.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(stored, indent=2))
            path.chmod(0o600)
        return stored

    def database_url(self, port_name: str = "pg_primary") -> str:
        password = self.secrets()["herald_password"]
        return f"postgres://herald:{password}@127.0.0.1:{self.port(port_name)}/herald"

    def app_environment(self) -> dict[str, str]:
        """What every Herald process of the cluster is started with (web, workers, beat, manage.py)."""
        keys = self.secrets()
        sentinels = ",".join(f"127.0.0.1:{self.port(f'sentinel{n}')}" for n in (1, 2, 3))
        return {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "HTTPS": "false",
            "SECRET_KEY": keys["secret_key"],
            "HEALTH_TOKEN": keys["health_token"],
            # Through HAProxy: the primary wherever Patroni put it, and a standby for reports.
            "DATABASE_URL": self.database_url("pg_primary"),
            "DATABASE_REPLICA_URL": self.database_url("pg_replica"),
            "REDIS_SENTINELS": sentinels,
            "REDIS_SENTINEL_MASTER": SENTINEL_MASTER,
            "REDIS_URL": f"redis://127.0.0.1:{self.port('redis1')}/0",
            # A task whose worker died is handed to another worker after this long (the shortest
            # the settings allow), and a batch of campaign sends whose worker died returns to the
            # ledger after its lease: short on one machine, so a lost worker costs seconds.
            "CELERY_VISIBILITY_TIMEOUT": "60",
            "SEND_LEASE_SECONDS": "20",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port("smtp")),
            # What comes back (bounces, complaints, mailto unsubscribes) arrives at the inbound sink.
            "BOUNCE_MAILBOX_DIR": str(self.var / "inbound"),
            "SITE_URL": self.url,
            "SYNTHETIC_BASE_URL": self.url,
            "TRUSTED_PROXY_COUNT": "1",
            "STATIC_ROOT": str(self.var / "staticfiles"),
            "MEDIA_ROOT": str(self.var / "media"),
            "BACKUP_DIR": str(self.var / "backups"),
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "4",
            "GUNICORN_GRACEFUL_TIMEOUT": "20",
            # Long enough for HAProxy's checks (two failures, 1 s then 0.5 s apart, each allowed
            # 2 s under load) to take a stopping node out before it stops accepting.
            "DRAIN_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
        }

    # --- configuration ----------------------------------------------------------------

    def _render(self, template: str, target: Path, **values) -> None:
        text = string.Template((TEMPLATES / template).read_text()).substitute(var=self.var, **values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def _service_dir(self, name: str) -> Path:
        directory = self.var / name
        directory.mkdir(parents=True, exist_ok=True)
        _give_to_service_user(directory)
        return directory

    def write_configuration(self) -> None:
        """Render every template into the state directory; Postgres and etcd data are kept."""
        self.var.mkdir(parents=True, exist_ok=True)
        self.var.chmod(0o755)
        self.logs.mkdir(exist_ok=True)
        keys = self.secrets()
        self._check_service_user_reaches_state()
        bindir = postgres_bindir()
        if bindir is None:
            raise StackError("The PostgreSQL server is not installed (Debian: apt-get install postgresql).")
        for name in ("pg1", "pg2"):
            directory = self._service_dir(name)
            config = directory / "patroni.yml"
            self._render(
                "patroni.yml",
                config,
                name=name,
                dir=directory,
                bin_dir=bindir,
                pg_port=self.port(name),
                rest_port=self.port(f"{name}_rest"),
                etcd_port=self.port("etcd"),
                superuser_password=keys["superuser_password"],
                replication_password=keys["replication_password"],
            )
            config.chmod(0o600)
            _give_to_service_user(config)
        # Redis keeps nothing on disk, so every `up` starts the same topology afresh.
        for name, replicaof in (("redis1", ""), ("redis2", f"replicaof 127.0.0.1 {self.port('redis1')}")):
            directory = self._service_dir(name)
            self._render(
                "redis.conf",
                directory / "redis.conf",
                name=name,
                port=self.port(name),
                dir=directory,
                replicaof=replicaof,
            )
            _give_to_service_user(directory / "redis.conf")
        for number in (1, 2, 3):
            name = f"sentinel{number}"
            directory = self._service_dir(name)
            self._render(
                "sentinel.conf",
                directory / "sentinel.conf",
                name=name,
                port=self.port(name),
                dir=directory,
                master_port=self.port("redis1"),
            )
            _give_to_service_user(directory / "sentinel.conf")
        self._service_dir("etcd")
        self._render(
            "haproxy.cfg",
            self.var / "haproxy" / "haproxy.cfg",
            **{name + "_port": self.port(name) for name in ("web1", "web2", "pg1", "pg2", "pg1_rest", "pg2_rest")},
            web_port=self.port("haproxy_web"),
            stats_port=self.port("haproxy_stats"),
            pg_primary_port=self.port("pg_primary"),
            pg_replica_port=self.port("pg_replica"),
        )
        sections = [string.Template((TEMPLATES / "supervisord.conf").read_text()).substitute(var=self.var)]
        program = string.Template((TEMPLATES / "program.conf").read_text())
        for name in COMPONENTS:
            command, environment, stopwait = self._program(name)
            user = f"user={SERVICE_USER}" if name in UNPRIVILEGED and os.geteuid() == 0 else ""
            sections.append(
                program.substitute(
                    name=name,
                    command=command.replace("%", "%%"),
                    # The service user may not be able to enter the repository; its state directory it can.
                    directory=self.var / name if name in UNPRIVILEGED else REPO,
                    user=user,
                    autostart="false" if name in APP_COMPONENTS else "true",
                    stopsignal="TERM",
                    stopwaitsecs=stopwait,
                    var=self.var,
                    environment=",".join(f'{key}="{value}"' for key, value in environment.items())
                    or 'HERALD_STACK="1"',
                )
            )
        (self.var / "supervisord.conf").write_text("".join(sections))

    def _check_service_user_reaches_state(self) -> None:
        if os.geteuid() != 0:
            return
        entry = pwd.getpwnam(SERVICE_USER)
        probe = subprocess.run(["test", "-x", str(self.var)], user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        if probe.returncode != 0:
            raise StackError(
                f"The unprivileged user {SERVICE_USER!r} (Postgres, etcd and Redis run as it) cannot enter "
                f"{self.var}; put the state directory (--var-dir) where others may enter, such as /var/tmp."
            )

    def _program(self, name: str) -> tuple[str, dict[str, str], int]:
        """The command line, extra environment and stop timeout of one component."""
        python = sys.executable
        if name == "etcd":
            client, peer = self.port("etcd"), self.port("etcd_peer")
            command = (
                f"{shutil.which('etcd') or 'etcd'} --name herald-etcd --data-dir {self.var}/etcd/data"
                f" --listen-client-urls http://127.0.0.1:{client} --advertise-client-urls http://127.0.0.1:{client}"
                f" --listen-peer-urls http://127.0.0.1:{peer} --initial-advertise-peer-urls http://127.0.0.1:{peer}"
                f" --initial-cluster herald-etcd=http://127.0.0.1:{peer} --initial-cluster-token herald"
                " --initial-cluster-state new --logger zap --log-level warn"
            )
            return command, {"HOME": str(self.var / "etcd")}, 10
        if name in ("pg1", "pg2"):
            # Patroni's own interpreter (Debian's), not the virtualenv's.
            return (
                f"{shutil.which('patroni') or 'patroni'} {self.var}/{name}/patroni.yml",
                {"HOME": str(self.var / name)},
                40,
            )
        if name.startswith("redis"):
            return f"{shutil.which('redis-server')} {self.var}/{name}/redis.conf", {}, 10
        if name.startswith("sentinel"):
            return f"{shutil.which('redis-server')} {self.var}/{name}/sentinel.conf --sentinel", {}, 10
        if name == "haproxy":
            return f"{shutil.which('haproxy') or 'haproxy'} -db -f {self.var}/haproxy/haproxy.cfg", {}, 10
        if name == "smtp":
            command = (
                f"{python} -m common.smtp_sink serve --host 127.0.0.1 --port {self.port('smtp')}"
                f" --store {self.var}/smtp --http-port {self.port('smtp_http')}"
            )
            return command, {}, 10
        if name == "inbound":
            command = (
                f"{python} -m common.smtp_sink serve --host 127.0.0.1 --port {self.port('inbound')}"
                f" --store {self.var}/inbound"
            )
            return command, {}, 10
        if name.startswith("web"):
            metrics = self.var / "metrics" / name
            # Samples of an earlier run of this node would be added to this run's.
            command = (
                f"/bin/sh -c 'rm -rf {metrics} && mkdir -p {metrics} && exec {python} -m gunicorn"
                " --config config/gunicorn.conf.py config.wsgi'"
            )
            environment = {"NODE_NAME": name, "PORT": str(self.port(name)), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
            return command, environment, 40
        if name.startswith("worker"):
            command = (
                f"{python} -m celery --app config worker --queues send,imports,analytics,default --concurrency 1"
                f" --hostname {name}@herald --without-gossip --without-mingle --loglevel INFO"
            )
            return command, {"NODE_NAME": name}, 30
        if name == "beat":
            schedule = self.var / "beat" / "celerybeat-schedule"
            schedule.parent.mkdir(parents=True, exist_ok=True)
            return (
                f"{python} -m celery --app config beat --loglevel INFO --schedule {schedule}",
                {"NODE_NAME": name},
                10,
            )
        raise StackError(f"unknown component {name!r}")

    # --- supervisord ------------------------------------------------------------------

    def supervisor(self) -> xmlrpc.client.ServerProxy:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def supervisord_pid(self) -> int | None:
        """The running supervisord's pid, if this state directory has one that answers."""
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None
        try:
            self.supervisor().supervisor.getPID()
        except (OSError, xmlrpc.client.Fault):
            return None
        return pid

    def require_running(self) -> xmlrpc.client.ServerProxy:
        if self.supervisord_pid() is None:
            raise StackError(f"The cluster is not running (state directory {self.var}); start it with `stack.py up`.")
        return self.supervisor()

    def process_info(self) -> dict[str, dict]:
        return {info["name"]: info for info in self.require_running().supervisor.getAllProcessInfo()}

    # --- up / down --------------------------------------------------------------------

    def check_ports_free(self) -> None:
        for name in PORT_OFFSETS:
            port = self.port(name)
            if not port_is_free(port):
                holder = port_holder(port) or "a socket no process here owns (TIME_WAIT?)"
                raise StackError(
                    f"Port {port} (for {name}) is already in use by {holder}; stop it or choose another --base-port."
                )

    def up(self, *, seed: bool = True, log=print) -> subprocess.Popen:
        pid = self.supervisord_pid()
        if pid is not None:
            raise StackError(
                f"The cluster is already running (supervisord pid {pid}, state directory {self.var}); "
                "not starting a second copy. See `stack.py status`, or `stack.py down` first."
            )
        _check_system_programs()
        self.check_ports_free()
        self.write_configuration()
        started = time.monotonic()
        log("Starting etcd, Postgres (Patroni), Redis, Sentinels, HAProxy and the SMTP sinks ...")
        with open(self.logs / "supervisord.stderr", "ab") as errors:
            supervisord = subprocess.Popen(
                [str(Path(sys.executable).parent / "supervisord"), "-c", str(self.var / "supervisord.conf")],
                cwd=REPO,
                env={**os.environ, **self.app_environment()},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
        try:
            _wait(
                lambda: supervisord.poll() is None and self.supervisord_pid() is not None,
                20,
                "supervisord",
                self.logs / "supervisord.log",
                process=supervisord,
            )
            infrastructure = [name for name in COMPONENTS if name not in APP_COMPONENTS]
            self.wait_healthy(infrastructure, timeout=90)
            _wait(self._primary_through_haproxy, 60, "the Postgres primary through HAProxy")
            self._create_app_database()
            log(
                f"Databases ready after {time.monotonic() - started:.0f}s; migrating"
                + (" and seeding the demo workspace ..." if seed else " ...")
            )
            self.manage("migrate", "--noinput")
            self.manage("collectstatic", "--noinput", "--verbosity", "0")
            if seed:
                self.manage("seed_demo")
            log("Starting web1, web2, worker1, worker2 and beat ...")
            server = self.supervisor()
            for name in APP_COMPONENTS:
                server.supervisor.startProcess(name, False)
            self.wait_healthy(COMPONENTS, timeout=90)
            _wait(
                lambda: (
                    self.haproxy_servers().get(("web_nodes", "web1")) == "UP"
                    and self.haproxy_servers().get(("web_nodes", "web2")) == "UP"
                ),
                30,
                "HAProxy's check of web1, web2",
            )
            log(f"All {len(COMPONENTS)} components healthy after {time.monotonic() - started:.0f}s.")
        except BaseException:
            with contextlib.suppress(Exception):
                self.down(log=lambda *a: None)
            if supervisord.poll() is None:
                supervisord.kill()
            raise
        return supervisord

    def down(self, *, log=print) -> None:
        pid = self.supervisord_pid()
        if pid is not None:
            server = self.supervisor()
            running = {info["name"] for info in server.supervisor.getAllProcessInfo() if info["state"] in (10, 20)}
            primary = self.primary_name()
            standby = {"pg1": "pg2", "pg2": "pg1"}.get(primary or "")
            # Apps first, then the rest, the standby before the primary (no needless failover), etcd last.
            phases = [
                APP_COMPONENTS,
                ["haproxy", "smtp", "inbound", "sentinel1", "sentinel2", "sentinel3", "redis1", "redis2"],
                [standby] if primary else ["pg1", "pg2"],
                [primary] if primary else [],
                ["etcd"],
            ]
            for phase in phases:
                names = [name for name in phase if name in running]
                if names:
                    log(f"Stopping {', '.join(names)} ...")
                    self._stop_together(server, names)
            with contextlib.suppress(xmlrpc.client.Fault, OSError):
                server.supervisor.shutdown()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
        # A Postgres whose Patroni was killed outlives it: stop it too.
        for name in ("pg1", "pg2"):
            for orphan in self._postmaster_tree(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(orphan, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)

    @staticmethod
    def _stop_together(server, names: list[str], timeout: float = 60) -> None:
        for name in names:
            with contextlib.suppress(xmlrpc.client.Fault, OSError):
                server.supervisor.stopProcess(name, False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {info["name"]: info["statename"] for info in server.supervisor.getAllProcessInfo()}
            if not any(states.get(name) in ("RUNNING", "STARTING", "STOPPING") for name in names):
                return
            time.sleep(0.1)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env={**os.environ, **self.app_environment()},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def _psql(self, sql: str, *, database: str = "postgres") -> str:
        bindir = postgres_bindir()
        result = subprocess.run(
            [
                str(bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port("pg_primary")),
                "-U",
                "postgres",
                "-d",
                database,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            env={**os.environ, "PGPASSWORD": self.secrets()["superuser_password"], "PGCONNECT_TIMEOUT": "3"},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def _primary_through_haproxy(self) -> bool:
        try:
            return self._psql("SELECT NOT pg_is_in_recovery()") == "t"
        except StackError:
            return False

    def _create_app_database(self) -> None:
        password = self.secrets()["herald_password"]
        # Both names are ours and the password is generated (URL-safe base64): nothing to escape.
        if not self._psql("SELECT 1 FROM pg_roles WHERE rolname = 'herald'"):
            self._psql(f"CREATE ROLE herald LOGIN PASSWORD '{password}'")
        if not self._psql("SELECT 1 FROM pg_database WHERE datname = 'herald'"):
            self._psql("CREATE DATABASE herald OWNER herald")

    # --- health -----------------------------------------------------------------------

    def wait_healthy(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            report = {row["name"]: row for row in self.status()}
            sick = [name for name in names if not report[name]["healthy"]]
            if not sick:
                return
            exited = [name for name in sick if report[name]["state"] in ("EXITED", "FATAL", "BACKOFF")]
            if exited or time.monotonic() > deadline:
                details = "; ".join(f"{name}: {report[name]['state']} {report[name]['detail']}" for name in sick)
                tails = "".join(self.log_tail(name, 15) for name in (exited or sick)[:3])
                raise StackError(f"Not healthy after start: {details}\n{tails}")
            time.sleep(0.3)

    def status(self) -> list[dict]:
        info = self.process_info()
        cluster = self.patroni_cluster()
        haproxy = self.haproxy_servers()
        rows = []
        for name in COMPONENTS:
            process = info.get(name, {})
            state = process.get("statename", "UNKNOWN")
            row = {"name": name, "state": state, "pid": process.get("pid") or None, "healthy": False, "detail": ""}
            if state == "RUNNING":
                try:
                    row["healthy"], row["detail"] = self._check(name, cluster, haproxy, process)
                except (OSError, ValueError, KeyError) as exc:
                    row["detail"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
        return rows

    def _check(self, name: str, cluster: dict, haproxy: dict, process: dict) -> tuple[bool, str]:
        if name == "etcd":
            answer = _http_json(f"http://127.0.0.1:{self.port('etcd')}/health")
            return answer.get("health") == "true", f"client port {self.port('etcd')}"
        if name in ("pg1", "pg2"):
            member = cluster.get(name)
            if not member:
                return False, "not in the Patroni cluster yet"
            role = {"leader": "primary", "sync_standby": "sync standby"}.get(member["role"], member["role"])
            healthy = member["state"] in ("running", "streaming")
            if role == "primary":
                healthy = healthy and haproxy.get(("postgres_primary", name)) == "UP"
            else:
                # Full health is a standby that commits wait for: one that can take over losing nothing.
                healthy = healthy and role == "sync standby"
            lag = f", lag {member['lag']}" if member.get("lag") not in (None, 0, "") else ""
            return healthy, f"{role} ({member['state']}{lag}) port {self.port(name)}"
        if name.startswith("redis"):
            replication = _redis_info(self.port(name), "replication")
            if replication["role"] == "master":
                return True, f"master, {replication.get('connected_slaves', '0')} replica(s) port {self.port(name)}"
            up = replication.get("master_link_status") == "up"
            return up, f"replica of {replication.get('master_port')} (link {replication.get('master_link_status')})"
        if name.startswith("sentinel"):
            master = _redis_command(self.port(name), "SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER)
            master_name = self.redis_name_for_port(int(master[1])) if master else None
            return master_name is not None, f"master is {master_name or 'unknown'}"
        if name == "haproxy":
            web = [server for (backend, server), status in haproxy.items() if backend == "web_nodes" and status == "UP"]
            primary = [
                s for (backend, s), status in haproxy.items() if backend == "postgres_primary" and status == "UP"
            ]
            return bool(haproxy), f"web up: {','.join(web) or 'none'}; primary: {','.join(primary) or 'none'}"
        if name == "smtp":
            greets = _smtp_greets(self.port("smtp"))
            urllib.request.urlopen(self.smtp_url, timeout=2).close()  # noqa: S310 - our own loopback URL
            return greets, f"smtp port {self.port('smtp')}, messages at {self.smtp_url}"
        if name == "inbound":
            return _smtp_greets(self.port("inbound")), f"smtp port {self.port('inbound')}, read from {self.var}/inbound"
        if name.startswith("web"):
            answer = _http_json(f"http://127.0.0.1:{self.port(name)}/readyz")
            return answer.get("status") == "ready", f"{answer.get('status')} port {self.port(name)}"
        if name.startswith("worker"):
            # From its log, appended to across restarts, so only lines since this process started:
            # ready, and connected to the broker since it last lost it (as in a Redis failover).
            lines = _log_lines_since(self.log_tail(name, 2000, header=False), process["start"] - 1)
            ready = any(f"{name}@herald ready." in line for line in lines)
            connected = [i for i, line in enumerate(lines) if "Connected to " in line]
            lost = [
                i for i, line in enumerate(lines) if "Connection to broker lost" in line or "Cannot connect" in line
            ]
            healthy = ready and bool(connected) and connected[-1] > max(lost, default=-1)
            return healthy, "consuming" if healthy else "starting or reconnecting to the broker"
        if name == "beat":
            return True, "scheduling"
        return False, "unknown"

    def patroni_cluster(self) -> dict[str, dict]:
        for name in ("pg1", "pg2"):
            try:
                answer = _http_json(f"http://127.0.0.1:{self.port(f'{name}_rest')}/cluster")
            except (OSError, ValueError):
                continue
            return {member["name"]: member for member in answer.get("members", [])}
        return {}

    def primary_name(self) -> str | None:
        for name, member in self.patroni_cluster().items():
            if member["role"] == "leader" and member["state"] == "running":
                return name
        return None

    def haproxy_servers(self) -> dict[tuple[str, str], str]:
        """(backend, server) -> status (UP, DOWN, ...) from the stats page's CSV."""
        try:
            with urllib.request.urlopen(f"{self.stats_url};csv", timeout=1) as response:  # noqa: S310
                lines = response.read().decode().splitlines()
        except OSError:
            return {}
        header = lines[0].lstrip("# ").split(",")
        servers = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("svname") not in ("FRONTEND", "BACKEND", None):
                servers[(row["pxname"], row["svname"])] = row["status"].split(" ")[0]
        return servers

    def redis_name_for_port(self, port: int) -> str | None:
        return {self.port("redis1"): "redis1", self.port("redis2"): "redis2"}.get(port)

    def redis_master(self) -> str | None:
        """The Redis node the sentinels name as master (the first sentinel that answers)."""
        for number in (1, 2, 3):
            try:
                master = _redis_command(
                    self.port(f"sentinel{number}"), "SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER
                )
            except OSError:
                continue
            if master:
                return self.redis_name_for_port(int(master[1]))
        return None

    def log_tail(self, name: str, lines: int, header: bool = True) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return f"(no log for {name})\n" if header else ""
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 200 * lines))
            tail = handle.read().decode(errors="replace").splitlines()[-lines:]
        text = "\n".join(tail) + "\n"
        return f"--- {path} ---\n{text}" if header else text

    # --- breaking and mending ---------------------------------------------------------

    def kill(self, name: str, sig: signal.Signals) -> str:
        info = self.process_info()[name]
        if info["statename"] != "RUNNING" or not info["pid"]:
            raise StackError(f"{name} is not running ({info['statename']}).")
        pid = info["pid"]
        if sig == signal.SIGKILL:
            # The machine is gone: the process, its children and, for Postgres, the postmaster
            # Patroni started (which does not die with Patroni) and its backends.
            victims = [pid, *_descendants(pid)]
            if name in ("pg1", "pg2"):
                victims += self._postmaster_tree(name)
            for victim in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
        else:
            os.kill(pid, sig)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process_info()[name]["statename"] != "RUNNING" and not _alive(pid):
                return f"{name} (pid {pid}) got {sig.name} and is down."
            time.sleep(0.05)
        raise StackError(f"{name} (pid {pid}) is still running 60s after {sig.name}.")

    def _postmaster_tree(self, name: str) -> list[int]:
        try:
            pid = int((self.var / name / "data" / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError, PermissionError):
            return []
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return []
        if b"postgres" not in command:
            return []
        return [pid, *_descendants(pid)]

    def start(self, name: str, timeout: float = 90) -> str:
        server = self.require_running()
        state = server.supervisor.getProcessInfo(name)["statename"]
        if state in ("RUNNING", "STARTING"):
            self.wait_healthy([name], timeout)
            return f"{name} is already running."
        if name in ("pg1", "pg2"):
            # Whatever survived a kill of Patroni must not hold the data directory.
            for orphan in self._postmaster_tree(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(orphan, signal.SIGKILL)
        server.supervisor.startProcess(name, True)
        self.wait_healthy([name], timeout)
        return f"{name} is running and healthy."

    def failover(self, timeout: float = 60) -> str:
        """A planned switchover: the synchronous standby becomes primary, the old primary follows."""
        cluster = self.patroni_cluster()
        leader = next((name for name, member in cluster.items() if member["role"] == "leader"), None)
        candidate = next((name for name, member in cluster.items() if member["role"] == "sync_standby"), None)
        if leader is None or candidate is None:
            raise StackError(f"A switchover needs a primary and a synchronous standby; Patroni reports {cluster}.")
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port(f'{leader}_rest')}/switchover",
            data=json.dumps({"leader": leader, "candidate": candidate}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                answer = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise StackError(f"Patroni refused the switchover: {exc.read().decode()}") from None
        _wait(
            lambda: (
                self.primary_name() == candidate and self.haproxy_servers().get(("postgres_primary", candidate)) == "UP"
            ),
            timeout,
            "the switchover",
        )
        self.wait_healthy(["pg1", "pg2"], timeout)
        return f"{candidate} is now the primary ({answer.strip()})."


# --- helpers ---------------------------------------------------------------------------


def _give_to_service_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _check_system_programs() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import system_packages

    if system_packages.main(["postgres", "redis", "haproxy", "etcd", "patroni"]) != 0:
        raise StackError("Install the system packages named above, then run this again.")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _wait(predicate, timeout: float, what: str, log: Path | None = None, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        with contextlib.suppress(OSError, xmlrpc.client.Fault):
            if predicate():
                return
        time.sleep(0.2)
    tail = ""
    if log and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise StackError(f"{what} did not become ready within {timeout:.0f}s.{tail}")


_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+: ")


def _log_lines_since(text: str, since: float) -> list[str]:
    """The timestamped lines of a Celery log (local time) written at or after `since` (epoch seconds)."""
    lines = []
    for line in text.splitlines():
        match = _LOG_TIME.match(line)
        if match and time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) >= int(since):
            lines.append(line)
    return lines


def _smtp_greets(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.settimeout(1)
        return sock.recv(64).startswith(b"220")


def _http_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback URLs only
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")


def _redis_command(port: int, *words: str):
    """One Redis command over a raw socket (no client library: this script runs before any venv)."""
    request = f"*{len(words)}\r\n" + "".join(f"${len(word)}\r\n{word}\r\n" for word in words)
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.settimeout(1)
        sock.sendall(request.encode())
        reader = sock.makefile("rb")
        return _read_reply(reader)


def _read_reply(reader):
    line = reader.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise OSError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        return None if length < 0 else reader.read(length + 2)[:-2].decode()
    if kind == b"*":
        length = int(rest)
        return None if length < 0 else [_read_reply(reader) for _ in range(length)]
    raise OSError(f"unexpected Redis reply {line!r}")


def _redis_info(port: int, section: str) -> dict[str, str]:
    text = _redis_command(port, "INFO", section)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def _print_status(rows: list[dict]) -> None:
    print(f"{'NAME':<10} {'STATE':<9} {'HEALTHY':<8} {'PID':>7}  DETAIL")
    for row in rows:
        print(
            f"{row['name']:<10} {row['state']:<9} {'yes' if row['healthy'] else 'NO':<8} {row['pid'] or '-':>7}  "
            f"{row['detail']}"
        )


def _component(value: str) -> str:
    if value not in COMPONENTS:
        raise argparse.ArgumentTypeError(f"no component {value!r}; the components are: {', '.join(COMPONENTS)}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--var-dir",
        type=Path,
        default=Path(os.environ.get("HERALD_STACK_DIR", REPO / "var" / "stack")),
        help="state directory: configuration, data and logs (default var/stack)",
    )
    parser.add_argument(
        "--base-port",
        type=int,
        default=int(os.environ.get("HERALD_STACK_BASE_PORT", DEFAULT_BASE_PORT)),
        help=f"first port of the block the cluster uses (default {DEFAULT_BASE_PORT})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start everything; in the foreground unless --detach")
    up.add_argument("--detach", action="store_true", help="return once everything is healthy")
    up.add_argument("--no-seed", action="store_true", help="do not create the demo workspace")
    commands.add_parser("down", help="stop everything")
    status = commands.add_parser("status", help="each component's state and health")
    status.add_argument("--json", action="store_true")
    kill = commands.add_parser("kill", help="signal a component (and, with KILL, everything it started)")
    kill.add_argument("name", type=_component)
    kill.add_argument("--signal", choices=("KILL", "TERM"), default="KILL")
    start = commands.add_parser("start", help="start a stopped component and wait until it is healthy")
    start.add_argument("name", type=_component)
    commands.add_parser("failover", help="planned switchover of the Postgres primary to the standby")
    logs = commands.add_parser("logs", help="the end of a component's log")
    logs.add_argument("name", type=_component)
    logs.add_argument("-n", "--lines", type=int, default=50)
    commands.add_parser("mail", help="list the messages the SMTP sink accepted")
    args = parser.parse_args(argv)
    if not 1024 <= args.base_port <= 65535 - max(PORT_OFFSETS.values()):
        parser.error(f"--base-port must leave room for the block: 1024..{65535 - max(PORT_OFFSETS.values())}")
    stack = Stack(args.var_dir.resolve(), args.base_port)

    try:
        if args.command == "up":
            return _up(stack, detach=args.detach, seed=not args.no_seed)
        if args.command == "down":
            if stack.supervisord_pid() is None:
                print("The cluster is not running.")
            stack.down()
            print("Stopped.")
        elif args.command == "status":
            rows = stack.status()
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                _print_status(rows)
            return 0 if all(row["healthy"] for row in rows) else 3
        elif args.command == "kill":
            print(stack.kill(args.name, signal.Signals[f"SIG{args.signal}"]))
        elif args.command == "start":
            print(stack.start(args.name))
        elif args.command == "failover":
            print(stack.failover())
        elif args.command == "logs":
            print(stack.log_tail(args.name, args.lines), end="")
        elif args.command == "mail":
            return subprocess.call(
                [sys.executable, "-m", "common.smtp_sink", "list", "--store", str(stack.var / "smtp")], cwd=REPO
            )
    except StackError as exc:
        print(f"stack.py {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _up(stack: Stack, *, detach: bool, seed: bool) -> int:
    stopping = []

    def stop_on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_signal)
    # Also when started in the background by a shell, which would have it ignored.
    signal.signal(signal.SIGINT, stop_on_signal)
    try:
        supervisord = stack.up(seed=seed, log=lambda message: print(message, flush=True))
    except KeyboardInterrupt:
        print("\nInterrupted; stopped.", flush=True)
        return 1
    email, password = DEMO_LOGIN
    print(
        f"\nHerald is up at {stack.url}/ (through HAProxy)\n"
        + (f"  Sign in as {email} / {password} (also opens {stack.url}/admin/)\n" if seed else "")
        + f"  SMTP sink (every message the platform sent): {stack.smtp_url}\n"
        f"  Inbound mailbox (bounces, complaints, mailto unsubscribes): SMTP 127.0.0.1:{stack.port('inbound')}\n"
        f"  HAProxy stats: {stack.stats_url}\n"
        f"  Health detail: curl -H 'Authorization: Bearer {stack.secrets()['health_token']}' {stack.url}/health\n"
        f"  Components: .venv/bin/python platform/stack.py status   (state, logs: {stack.var})",
        flush=True,
    )
    if detach:
        return 0
    print("Press Ctrl-C to stop everything.", flush=True)
    try:
        supervisord.wait()
        print("supervisord stopped unexpectedly; see its log.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.down(log=lambda message: print(message, flush=True))
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
