"""Load for the failure drills, run as its own process against HAProxy: `python -m tests.drills.load ...`.

Modes:
    get     signed-in users load the dashboard (a redirect to the login page is a failure)
    login   users sign in over and over (GET the form, POST it): each sign-in writes a session row
    mixed   both at once

Every request is recorded (wall-clock time, method, status, outcome; for a sign-in the session
key it was given) and written as JSON to --output when the load stops: after --duration
seconds, after --max-requests, or as soon as --stop-file exists. Only 127.0.0.1 is a target.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

TIMEOUT = 15
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Recorder:
    def __init__(self, max_requests: int):
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.max_requests = max_requests

    def add(self, **record) -> None:
        with self.lock:
            self.records.append(record)

    @property
    def full(self) -> bool:
        return len(self.records) >= self.max_requests


def _request(recorder: Recorder, session: requests.Session, method: str, url: str, ok, **kwargs):
    started = time.time()
    try:
        response = session.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
    except requests.RequestException as exc:
        recorder.add(t=started, method=method, path=urlparse(url).path, status=0, ok=False, error=type(exc).__name__)
        return None
    good = ok(response)
    recorder.add(
        t=started,
        method=method,
        path=urlparse(url).path,
        status=response.status_code,
        ok=good,
        elapsed=round(time.time() - started, 3),
        session_key=response.cookies.get("sessionid") if method == "POST" and good else None,
    )
    return response


def sign_in(recorder: Recorder, base: str, email: str, password: str, session: requests.Session | None = None):
    """One sign-in through the real form; returns the session when it was acknowledged."""
    session = session or requests.Session()
    page = _request(recorder, session, "GET", f"{base}/accounts/login/", lambda r: r.status_code == 200)
    if page is None or page.status_code != 200:
        return None
    token = CSRF.search(page.text)
    response = _request(
        recorder,
        session,
        "POST",
        f"{base}/accounts/login/",
        lambda r: r.status_code == 302 and "sessionid" in r.cookies,
        data={"csrfmiddlewaretoken": token.group(1) if token else "", "username": email, "password": password},
        headers={"Referer": f"{base}/accounts/login/"},
    )
    return session if response is not None and response.status_code == 302 else None


def dashboard_user(recorder: Recorder, base: str, email: str, password: str, until: float, stop: Path, pause: float):
    # Sign in once (not recorded: the drill has not broken anything yet), then stay signed in.
    setup = Recorder(10**6)
    session = None
    while session is None and time.time() < until:
        session = sign_in(setup, base, email, password)
    while session and time.time() < until and not stop.exists() and not recorder.full:
        _request(recorder, session, "GET", f"{base}/", lambda r: r.status_code == 200 and "Sign out" in r.text)
        time.sleep(pause)


def signing_in_user(recorder: Recorder, base: str, email: str, password: str, until: float, stop: Path, pause: float):
    while time.time() < until and not stop.exists() and not recorder.full:
        sign_in(recorder, base, email, password)
        time.sleep(pause)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("get", "login", "mixed"), required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.02)
    args = parser.parse_args()
    if urlparse(args.url).hostname != "127.0.0.1":
        parser.error("load goes to 127.0.0.1 only")

    recorder = Recorder(args.max_requests)
    until = time.time() + min(args.duration, 300)
    users = []
    if args.mode in ("get", "mixed"):
        users += [dashboard_user] * args.readers
    if args.mode in ("login", "mixed"):
        users += [signing_in_user] * args.writers
    threads = [
        threading.Thread(
            target=user,
            args=(recorder, args.url, args.email, args.password, until, args.stop_file, args.pause),
            daemon=True,
        )
        for user in users
    ]
    for thread in threads:
        thread.start()
    (args.output.parent / f"{args.output.name}.started").write_text("")
    for thread in threads:
        thread.join(timeout=max(1.0, until - time.time() + TIMEOUT + 5))
    with recorder.lock:
        args.output.write_text(json.dumps(recorder.records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
