"""The local SMTP sink: it accepts mail as a relay would and keeps every message on disk.

Tests, drills, benchmarks and the demo read what Herald really sent from it. On request it
misbehaves like a relay in trouble, so relay failover can be exercised against a real server:

    accept    take every message (the default)
    tempfail  answer 421 to MAIL FROM: "try again later"
    reject    answer 550 to every recipient
    refuse    stop listening, so connections are refused

The mode lives in a file in the store directory, so any process can change it:

    python -m common.smtp_sink serve --port 58125 --store var/smtp --http-port 58126
    python -m common.smtp_sink behaviour --store var/smtp refuse
    python -m common.smtp_sink list --store var/smtp

Messages are written one file each under `<store>/messages/`, named so that sorting by name
sorts by arrival, with the SMTP envelope prepended as `X-Sink-Mail-From` and `X-Sink-Rcpt-To`.
Nothing here imports Django.
"""

from __future__ import annotations

import argparse
import email
import html
import json
import os
import signal
import sys
import threading
import time
import uuid
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

MODES = ("accept", "tempfail", "reject", "refuse")
BEHAVIOUR_FILE = "behaviour"
MESSAGES_DIR = "messages"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Store:
    """The directory a sink writes into, readable by any process."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.messages_dir = self.directory / MESSAGES_DIR
        self.incoming_dir = self.directory / "incoming"
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        self._mode = "accept"
        self._mode_checked_at = 0.0

    # The behaviour file is re-read at most every 100 ms: cheap under load, quick to react.
    def behaviour(self) -> str:
        now = time.monotonic()
        if now - self._mode_checked_at > 0.1:
            try:
                mode = (self.directory / BEHAVIOUR_FILE).read_text().strip()
            except FileNotFoundError:
                mode = "accept"
            self._mode = mode if mode in MODES else "accept"
            self._mode_checked_at = now
        return self._mode

    def set_behaviour(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"Unknown sink behaviour {mode!r}; choose one of: {', '.join(MODES)}.")
        target = self.directory / BEHAVIOUR_FILE
        temporary = self.directory / f".{BEHAVIOUR_FILE}.{uuid.uuid4().hex}"
        temporary.write_text(mode + "\n")
        os.replace(temporary, target)
        self._mode_checked_at = 0.0

    def save(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> str:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.eml"
        envelope = f"X-Sink-Mail-From: {mail_from}\r\nX-Sink-Rcpt-To: {', '.join(rcpt_tos)}\r\n".encode()
        incoming = self.incoming_dir / name
        with open(incoming, "wb") as handle:
            handle.write(envelope)
            handle.write(content)
        # A reader never sees a half-written message: the rename is atomic.
        os.replace(incoming, self.messages_dir / name)
        return name

    def names(self) -> list[str]:
        return sorted(entry.name for entry in os.scandir(self.messages_dir) if entry.name.endswith(".eml"))

    def count(self) -> int:
        return len(self.names())

    def read(self, name: str) -> EmailMessage:
        with open(self.messages_dir / name, "rb") as handle:
            return email.message_from_binary_file(handle, policy=policy.default)

    def messages(self) -> list[EmailMessage]:
        return [self.read(name) for name in self.names()]

    def clear(self) -> None:
        for name in self.names():
            (self.messages_dir / name).unlink(missing_ok=True)


class _Handler:
    def __init__(self, store: Store):
        self.store = store

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.store.behaviour() == "tempfail":
            return "421 4.7.0 Service temporarily unavailable, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.store.behaviour() == "reject":
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = self.store.save(envelope.mail_from, envelope.rcpt_tos, envelope.original_content or envelope.content)
        return f"250 2.0.0 OK queued as {name[:-4]}"


def _accept_any_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)


class SmtpSink:
    """A sink serving on a background thread; `serve` on the command line runs the same thing."""

    def __init__(self, store_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 0):
        self.store = Store(store_dir)
        self.host = host
        self.port = port or _free_port()
        self._controller: Controller | None = None
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def _listen(self) -> None:
        with self._lock:
            if self._controller is None:
                controller = Controller(
                    _Handler(self.store),
                    hostname=self.host,
                    port=self.port,
                    authenticator=_accept_any_login,
                    auth_required=False,
                    auth_require_tls=False,
                    enable_SMTPUTF8=True,
                    ready_timeout=10,
                )
                controller.start()
                self._controller = controller

    def _stop_listening(self) -> None:
        with self._lock:
            if self._controller is not None:
                self._controller.stop()
                self._controller = None

    @property
    def listening(self) -> bool:
        return self._controller is not None

    def _watch_behaviour(self) -> None:
        while not self._stopping.wait(0.1):
            refusing = self.store.behaviour() == "refuse"
            if refusing and self.listening:
                self._stop_listening()
            elif not refusing and not self.listening:
                self._listen()

    def start(self) -> SmtpSink:
        if self.store.behaviour() != "refuse":
            self._listen()
        self._stopping.clear()
        self._watcher = threading.Thread(target=self._watch_behaviour, name="smtp-sink-behaviour", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._stop_listening()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # Convenience for tests: the store's view of what arrived.
    def messages(self) -> list[EmailMessage]:
        return self.store.messages()

    def count(self) -> int:
        return self.store.count()

    def clear(self) -> None:
        self.store.clear()

    def set_behaviour(self, mode: str, wait: bool = True) -> None:
        self.store.set_behaviour(mode)
        if wait:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.listening == (mode == "refuse"):
                time.sleep(0.02)


def _summary(store: Store, name: str) -> dict:
    message = store.read(name)
    return {
        "id": name[:-4],
        "from": str(message.get("From", "")),
        "to": str(message.get("X-Sink-Rcpt-To", "")),
        "subject": str(message.get("Subject", "")),
        "date": str(message.get("Date", "")),
    }


def _web_handler(store: Store, limit: int = 200):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the name BaseHTTPRequestHandler uses
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            names = store.names()
            if self.path == "/messages.json":
                rows = [_summary(store, name) for name in names[-limit:]][::-1]
                body = json.dumps({"count": len(names), "messages": rows}).encode()
                return self._send(200, body, "application/json")
            if self.path.startswith("/message/"):
                name = self.path.removeprefix("/message/") + ".eml"
                if name not in names:
                    return self._send(404, b"No such message\n", "text/plain; charset=utf-8")
                return self._send(200, (store.messages_dir / name).read_bytes(), "text/plain; charset=utf-8")
            if self.path != "/":
                return self._send(404, b"Not found\n", "text/plain; charset=utf-8")
            row = "<tr><td>{date}</td><td>{from}</td><td>{to}</td><td><a href='/message/{id}'>{subject}</a></td></tr>"
            rows = "".join(
                row.format(**{key: html.escape(value) for key, value in _summary(store, name).items()})
                for name in reversed(names[-limit:])
            )
            empty = "" if names else "<p>No message has arrived yet.</p>"
            page = (
                "<!doctype html><meta charset='utf-8'><title>Herald SMTP sink</title>"
                "<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.25rem .75rem;"
                "text-align:left;border-bottom:1px solid #ddd}</style>"
                f"<h1>SMTP sink</h1><p>{len(names)} message(s) held; mode: <b>{html.escape(store.behaviour())}"
                f"</b>. Newest first, at most {limit} shown.</p>{empty}"
                f"<table><tr><th>Date</th><th>From</th><th>To</th><th>Subject</th></tr>{rows}</table>"
            )
            return self._send(200, page.encode(), "text/html; charset=utf-8")

    return Handler


def _serve(arguments) -> None:
    sink = SmtpSink(arguments.store, host=arguments.host, port=arguments.port).start()
    web = None
    if arguments.http_port:
        web = ThreadingHTTPServer((arguments.host, arguments.http_port), _web_handler(sink.store))
        threading.Thread(target=web.serve_forever, name="smtp-sink-web", daemon=True).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"SMTP sink on {arguments.host}:{sink.port}, storing in {arguments.store}", flush=True)
    stop.wait()
    if web is not None:
        web.shutdown()
    sink.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.smtp_sink", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="accept mail and store it")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=2525)
    serve.add_argument("--http-port", type=int, default=0, help="also serve a page listing the messages")
    serve.add_argument("--store", required=True)
    behaviour = commands.add_parser("behaviour", help="make a running sink accept, tempfail, reject or refuse")
    behaviour.add_argument("--store", required=True)
    behaviour.add_argument("mode", choices=MODES)
    listing = commands.add_parser("list", help="print the messages a sink holds, oldest first")
    listing.add_argument("--store", required=True)
    clear = commands.add_parser("clear", help="delete every message a sink holds")
    clear.add_argument("--store", required=True)
    arguments = parser.parse_args(argv)

    if arguments.command == "serve":
        _serve(arguments)
        return 0
    store = Store(arguments.store)
    if arguments.command == "behaviour":
        store.set_behaviour(arguments.mode)
        print(f"The sink now answers: {arguments.mode}")
    elif arguments.command == "list":
        names = store.names()
        for name in names:
            row = _summary(store, name)
            print(f"{row['id']}  {row['to']:<40}  {row['subject']}")
        print(f"{len(names)} message(s)")
    elif arguments.command == "clear":
        store.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
