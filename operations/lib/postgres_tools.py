"""Running Postgres's client programs (pg_dump, pg_restore) against a connection's parameters."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import make_conninfo

from common.local_services import postgres_bindir


class ToolError(RuntimeError):
    """A Postgres client program failed; the message carries its error output."""


def conninfo_from_django(settings_dict: dict) -> str:
    """A libpq connection string for a Django DATABASES entry (multi-host options included)."""
    params = {
        "dbname": settings_dict.get("NAME"),
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
    }
    # Django-only options are not libpq's; libpq ones (host lists, target_session_attrs, ...) pass through.
    for key, value in (settings_dict.get("OPTIONS") or {}).items():
        if key in {"isolation_level", "server_side_binding", "pool"} or not isinstance(value, str | int):
            continue
        if not params.get(key):
            params[key] = value
    return make_conninfo(**{key: value for key, value in params.items() if value not in (None, "")})


def program(name: str) -> str:
    """The newest installed version of a Postgres client program (it must not be older than the server)."""
    bindir = postgres_bindir()
    if bindir and (bindir / name).exists():
        return str(bindir / name)
    found = shutil.which(name)
    if not found:
        raise ToolError(f"{name} is not installed (Debian: apt-get install postgresql-client).")
    return found


def run(name: str, *args: str, timeout: float = 3600) -> None:
    result = subprocess.run(
        [program(name), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "PGAPPNAME": name}
    )
    if result.returncode != 0:
        raise ToolError(f"{name} failed: {(result.stderr or result.stdout).strip()[-2000:]}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
