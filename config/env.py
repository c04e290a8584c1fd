"""Typed readers for settings taken from the environment; a bad value stops start-up with one line."""

import os
from pathlib import Path
from urllib.parse import urlsplit


class ConfigurationError(SystemExit):
    """A setting is missing or malformed.

    It is a SystemExit rather than an ImproperlyConfigured so that whichever entry point
    imports the settings (manage.py, gunicorn, celery, pytest) stops with the one-line
    message instead of a traceback that buries the name of the variable.
    """

    def __init__(self, name: str, problem: str):
        super().__init__(f"Configuration error: {name} {problem}")
        self.name = name


def _raw(name: str) -> str | None:
    """The variable's value, or the contents of the file named by NAME_FILE (for secrets)."""
    value = os.environ.get(name)
    if value is not None:
        return value
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE", f"cannot be read ({exc.strerror}: {file_name}).") from None
    return None


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = _raw(name)
    if value is None or value == "":
        if required:
            raise ConfigurationError(name, "is required but not set.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ConfigurationError(name, f"must be 'true' or 'false', got {value!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(name, f"must be a whole number, got {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}, got {number}.")
    return number


def env_float(name: str, default: float) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(name, f"must be a number, got {value!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None or value == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str | None = None, *, schemes: tuple[str, ...], required: bool = False) -> str | None:
    value = env_str(name, default, required=required)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigurationError(name, f"must be a URL starting with {allowed} got {value!r}.")
    return value


def env_host_ports(name: str, default_port: int) -> list[tuple[str, int]]:
    """A comma-separated list of host:port pairs, as for Redis Sentinels."""
    pairs = []
    for item in env_list(name, []):
        host, _, port = item.rpartition(":")
        if not host:
            host, port = port, str(default_port)
        try:
            pairs.append((host, int(port)))
        except ValueError:
            raise ConfigurationError(name, f"must list host:port pairs, got {item!r}.") from None
    return pairs


def env_percentages(name: str, defaults: dict[str, float]) -> dict[str, float]:
    """`key=percent,key=percent` overriding `defaults`; each strictly between 0 and 100."""
    values = dict(defaults)
    for item in env_list(name, []):
        key, _, number = item.partition("=")
        key = key.strip()
        if key not in defaults:
            raise ConfigurationError(name, f"names an unknown objective {key!r}; known: {', '.join(defaults)}.")
        try:
            percent = float(number)
        except ValueError:
            raise ConfigurationError(name, f"needs key=percent pairs, got {item!r}.") from None
        if not 0 < percent < 100:
            raise ConfigurationError(name, f"targets must be between 0 and 100 (exclusive), got {key}={number}.")
        values[key] = percent
    return values
