"""The local SMTP sink keeps what it accepts and misbehaves on request like a relay in trouble."""

import json
import smtplib
import subprocess
import sys
import time
import urllib.request
from email.message import EmailMessage

import pytest

from common.local_services import free_port, port_is_open
from common.smtp_sink import SmtpSink, Store


def a_message(to="reader@example.test", subject="Hello"):
    message = EmailMessage()
    message["From"] = "news@herald.test"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Body text")
    return message


@pytest.fixture
def sink(tmp_path):
    with SmtpSink(tmp_path / "sink") as running:
        yield running


def test_accepted_mail_is_stored_with_its_envelope(sink):
    with smtplib.SMTP(sink.host, sink.port) as smtp:
        smtp.login("relay-user", "relay-password")  # relays with credentials work against it
        smtp.send_message(a_message(subject="First"), to_addrs=["one@example.test", "two@example.test"])
        smtp.send_message(a_message(subject="Second"))
    first, second = sink.messages()
    assert first["Subject"] == "First" and second["Subject"] == "Second"
    assert first["X-Sink-Mail-From"] == "news@herald.test"
    assert first["X-Sink-Rcpt-To"] == "one@example.test, two@example.test"
    assert first.get_content().strip() == "Body text"


def test_tempfail_answers_421_and_reject_answers_550(sink):
    sink.set_behaviour("tempfail")
    with pytest.raises(smtplib.SMTPSenderRefused) as refused, smtplib.SMTP(sink.host, sink.port) as smtp:
        smtp.send_message(a_message())
    assert refused.value.smtp_code == 421

    sink.set_behaviour("reject")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as rejected, smtplib.SMTP(sink.host, sink.port) as smtp:
        smtp.send_message(a_message())
    assert rejected.value.recipients["reader@example.test"][0] == 550
    assert sink.count() == 0


def test_refuse_stops_listening_until_told_to_accept_again(sink):
    sink.set_behaviour("refuse")
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(sink.host, sink.port, timeout=2)
    sink.set_behaviour("accept")
    with smtplib.SMTP(sink.host, sink.port) as smtp:
        smtp.send_message(a_message())
    assert sink.count() == 1


def test_an_unknown_behaviour_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="accept, tempfail, reject, refuse"):
        Store(tmp_path).set_behaviour("explode")


def test_the_command_line_serves_lists_and_changes_behaviour_from_another_process(tmp_path):
    store, port, http_port = tmp_path / "store", free_port(), free_port()
    command = [sys.executable, "-m", "common.smtp_sink"]
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--http-port", str(http_port), "--store", str(store)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not (port_is_open(port) and port_is_open(http_port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(a_message(subject="Over the wire"))

        listing = subprocess.run([*command, "list", "--store", str(store)], capture_output=True, text=True, check=True)
        assert "Over the wire" in listing.stdout and "1 message(s)" in listing.stdout

        page = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/").read().decode()
        assert "Over the wire" in page and "1 message(s) held" in page
        summary = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/messages.json").read())
        assert summary["count"] == 1 and summary["messages"][0]["to"] == "reader@example.test"

        subprocess.run([*command, "behaviour", "--store", str(store), "refuse"], check=True, capture_output=True)
        deadline = time.monotonic() + 5
        while port_is_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not port_is_open(port)
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0
