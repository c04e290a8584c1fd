"""What the session's real SMTP sink received, in the shape tests check: to, subject, body.

Use with the `smtp_sink` fixture (tests/conftest.py), which routes the platform's mail to the
sink over SMTP and empties it before the test.
"""

import os
from dataclasses import dataclass
from email.message import EmailMessage

from common.smtp_sink import Store


@dataclass
class SentMail:
    to: list[str]
    subject: str
    body: str
    message: EmailMessage


def outbox() -> list[SentMail]:
    """Every message the sink holds, oldest first."""
    sent = []
    for message in Store(os.environ["SMTP_SINK_DIR"]).messages():
        text = message.get_body(preferencelist=("plain", "html"))
        sent.append(
            SentMail(
                to=[address.strip() for address in str(message["X-Sink-Rcpt-To"]).split(",")],
                subject=str(message["Subject"]),
                body=text.get_content() if text is not None else "",
                message=message,
            )
        )
    return sent
