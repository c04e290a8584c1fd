"""Message bytes: headers, encodings and DKIM, checked by parsing the output back with the email package."""

import email
import email.policy
import time

import dkim
import pytest

from campaigns.lib.message import (
    DkimSigner,
    build_message,
    dkim_dns_value,
    generate_dkim_key,
    make_message_id,
)
from campaigns.lib.rendering import RenderedMessage, compile_campaign, subscriber_context

MESSAGE_ID = make_message_id(delivery_id=42, campaign_id=7, domain="mail.acme.test")
TOKEN = "AQEHKq3h0BLyP0Xh1vX9aC8nEw2Qd5Zp"


def rendered(subject="Spring sale", html="<p>Hello Ada</p>", text="Hello Ada\n", preheader=""):
    return RenderedMessage(subject=subject, preheader=preheader, html=html, text=text)


def build(**overrides) -> bytes:
    arguments = {
        "from_email": "news@acme.test",
        "from_name": "Acme News",
        "to_email": "ada@example.com",
        "to_name": "Ada Lovelace",
        "reply_to": "support@acme.test",
        "rendered": rendered(),
        "message_id": MESSAGE_ID,
        "list_unsubscribe_url": "https://herald.test/u/UNSUB/",
        "list_unsubscribe_mailto": "unsubscribe+UNSUB@herald.test",
        "delivery_token": TOKEN,
    }
    arguments.update(overrides)
    return build_message(**arguments)


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def content(part) -> str:
    """A decoded body part; the parser keeps the CRLF line endings of the wire."""
    return part.get_content().replace("\r\n", "\n")


def header_names(raw: bytes) -> list[str]:
    return [name.lower() for name, _ in parse(raw).items()]


EXPECTED_HEADERS = [
    "from", "to", "subject", "date", "message-id", "reply-to", "list-unsubscribe", "list-unsubscribe-post",
    "x-herald-delivery", "mime-version", "content-type",
]  # fmt: skip


def test_a_message_parses_back_with_every_header_and_both_parts():
    raw = build()
    message = parse(raw)
    assert header_names(raw) == EXPECTED_HEADERS
    assert str(message["From"]) == "Acme News <news@acme.test>"
    assert str(message["To"]) == "Ada Lovelace <ada@example.com>"
    assert str(message["Reply-To"]) == "support@acme.test"
    assert message["Subject"] == "Spring sale"
    assert message["Message-ID"] == "<herald.7.42@mail.acme.test>"
    assert message["List-Unsubscribe"] == "<https://herald.test/u/UNSUB/>, <mailto:unsubscribe+UNSUB@herald.test>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Herald-Delivery"] == TOKEN
    assert message["Date"].datetime.tzinfo is not None
    assert message.get_content_type() == "multipart/alternative"
    assert content(message.get_body(("plain",))) == "Hello Ada\n"
    assert content(message.get_body(("html",))) == "<p>Hello Ada</p>"
    assert message.defects == []
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only


def test_every_line_is_short_and_ascii():
    long_line = "Word " * 400 + "end"
    raw = build(
        rendered=rendered(
            subject="Ünïcödé sale — 50% off everything you love, today only, for every single subscriber " * 3,
            html=f"<p>{long_line} café = naïve</p>",
            text=f"{long_line}\ntrailing spaces   \n\ttab",
        ),
        to_name="Zoë Ångström",
    )
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    message = parse(raw)
    assert message["Subject"].startswith("Ünïcödé sale — 50% off")
    assert message["To"].addresses[0].display_name == "Zoë Ångström"
    assert f"{long_line} café = naïve" in content(message.get_body(("html",)))
    assert content(message.get_body(("plain",))) == f"{long_line}\ntrailing spaces   \n\ttab"


def test_a_long_ascii_subject_is_folded_and_reads_back_whole():
    subject = " ".join(f"word{i}" for i in range(60))
    raw = build(rendered=rendered(subject=subject))
    assert parse(raw)["Subject"] == subject
    assert raw.count(b"\r\n word") >= 3


def test_a_subject_that_looks_like_an_encoded_word_is_encoded_itself():
    raw = build(rendered=rendered(subject="=?utf-8?b?SGk=?= is literal"))
    assert parse(raw)["Subject"] == "=?utf-8?b?SGk=?= is literal"


def test_names_with_quotes_and_backslashes_are_quoted():
    raw = build(from_name='Acme "Best" \\ News')
    assert parse(raw)["From"].addresses[0].display_name == 'Acme "Best" \\ News'


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\r\n\t", "\u2028", "\x00"])
def test_line_breaks_in_subject_and_names_never_create_a_header(breaker):
    forged = f"Hello{breaker}Bcc: victim@evil.test{breaker}X-Injected: yes"
    raw = build(rendered=rendered(subject=forged), from_name=forged, to_name=forged)
    message = parse(raw)
    assert header_names(raw) == EXPECTED_HEADERS
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert "Bcc: victim@evil.test" in message["Subject"]  # kept as harmless text on the one line
    assert message.defects == []


def test_a_merge_value_with_a_forged_header_stays_in_the_subject():
    compiled = compile_campaign(subject="Hi {{ subscriber.name }}", preheader="", html="<p>x</p>", text="")
    ctx = {"subscriber": subscriber_context(email="e@x.test", name="Eve\r\nBcc: victim@evil.test", attributes={})}
    raw = build(rendered=compiled.render(context=ctx), to_name="Eve\r\nBcc: victim@evil.test")
    assert header_names(raw) == EXPECTED_HEADERS
    assert parse(raw)["Bcc"] is None


@pytest.mark.parametrize(
    "field,value",
    [
        ("to_email", "ada@example.com\r\nBcc: victim@evil.test"),
        ("from_email", "news@acme.test\nBcc: victim@evil.test"),
        ("to_email", "Ada <ada@example.com>"),
        ("to_email", "a@example.com, victim@evil.test"),
        ("to_email", "not-an-address"),
        ("list_unsubscribe_url", "https://herald.test/u/x\r\nBcc: victim@evil.test"),
        ("list_unsubscribe_mailto", "u@herald.test>\r\nBcc: victim@evil.test"),
        ("delivery_token", "abc\r\nBcc: victim@evil.test"),
        ("message_id", "<x@y>\r\nBcc: victim@evil.test"),
    ],
)
def test_addresses_urls_and_tokens_with_line_breaks_or_extra_addresses_are_refused(field, value):
    with pytest.raises(ValueError):
        build(**{field: value})


def test_international_domains_are_punycoded():
    message = parse(build(to_email="zoe@bücher.test"))
    assert message["To"].addresses[0].addr_spec == "zoe@xn--bcher-kva.test"


def test_without_reply_to_mailto_or_html():
    raw = build(reply_to="", list_unsubscribe_mailto=None, rendered=rendered(html=""))
    message = parse(raw)
    assert message["Reply-To"] is None
    assert message["List-Unsubscribe"] == "<https://herald.test/u/UNSUB/>"
    assert message.get_content_type() == "text/plain"
    assert content(message) == "Hello Ada\n"


def test_message_ids_are_stable_per_delivery():
    assert make_message_id(delivery_id=42, campaign_id=7, domain="mail.acme.test") == MESSAGE_ID
    assert make_message_id(delivery_id=43, campaign_id=7, domain="mail.acme.test") != MESSAGE_ID


@pytest.fixture(scope="module")
def dkim_key():
    return generate_dkim_key(bits=1024)  # small: quick to generate; the production default is 2048


def dns_for(public_value):
    def dnsfunc(name, timeout=5):
        assert name == b"s1._domainkey.acme.test."
        return public_value.encode()

    return dnsfunc


def test_dkim_signature_verifies_against_the_published_key(dkim_key):
    private_pem, public_value = dkim_key
    assert public_value.startswith("v=DKIM1; k=rsa; p=")
    assert dkim_dns_value(private_pem) == public_value
    signer = DkimSigner(domain="acme.test", selector="s1", private_key_pem=private_pem)
    raw = build(dkim=signer, rendered=rendered(subject="Café ☕ " * 10))
    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=dns_for(public_value))
    signed = parse(raw)["DKIM-Signature"]
    for header in ("list-unsubscribe", "list-unsubscribe-post", "from", "subject"):
        assert header in signed.lower()
    assert content(parse(raw).get_body(("plain",))) == "Hello Ada\n"


def test_a_message_altered_after_signing_fails_verification(dkim_key):
    private_pem, public_value = dkim_key
    raw = build(dkim=DkimSigner(domain="acme.test", selector="s1", private_key_pem=private_pem))
    assert not dkim.verify(raw.replace(b"Hello Ada", b"Hello Eve"), dnsfunc=dns_for(public_value))
    other_public = generate_dkim_key(bits=1024)[1]
    assert not dkim.verify(raw, dnsfunc=dns_for(other_public))


def test_a_bad_dkim_key_is_refused_when_configured():
    with pytest.raises(ValueError):
        DkimSigner(domain="acme.test", selector="s1", private_key_pem="not a key")


def test_build_cost_per_message(capsys, dkim_key):
    """Not a timed assertion: prints what render + build costs per message, with and without DKIM."""
    html = "<html><head><style>p{color:#333}</style></head><body>" + "".join(
        f'<p>Paragraph {i} for {{{{ subscriber.first_name }}}}.</p><a href="https://shop.test/{i}">Go</a>'
        for i in range(20)
    )
    compiled = compile_campaign(
        subject="Hi {{ subscriber.first_name }}", preheader="", html=html + "</body></html>", text=""
    )
    ctx = {"subscriber": subscriber_context(email="ada@example.com", name="Ada Lovelace", attributes={})}
    signer = DkimSigner(domain="acme.test", selector="s1", private_key_pem=generate_dkim_key()[0])

    def one(signer=None):
        message = compiled.render(context=ctx, click_url=lambda n: f"https://t.test/c/{TOKEN}/{n}")
        return build(rendered=message, dkim=signer)

    figures = {}
    for label, count, key in (("render+build", 2000, None), ("render+build+DKIM(2048)", 100, signer)):
        started = time.perf_counter()
        for _ in range(count):
            size = len(one(key))
        figures[label] = (time.perf_counter() - started) / count * 1e6
    with capsys.disabled():
        print("\n[message] " + "; ".join(f"{label} {micro:.0f} µs" for label, micro in figures.items()) + f"; {size} B")


@pytest.mark.slow
def test_a_signed_message_still_verifies_after_crossing_smtp(tmp_path, dkim_key):
    """Over the wire (dot-stuffing, line endings) to the real SMTP sink, the signature holds."""
    import smtplib

    from common.smtp_sink import SmtpSink

    private_pem, public_value = dkim_key
    signer = DkimSigner(domain="acme.test", selector="s1", private_key_pem=private_pem)
    text = ".A line starting with a dot\n..two dots\n.\nend " + "x" * 300 + "\n"
    raw = build(dkim=signer, rendered=rendered(subject="Über ☕", text=text, html=f"<p>{text}</p>"))
    sink = SmtpSink(tmp_path / "sink").start()
    try:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
            smtp.sendmail("news@acme.test", ["ada@example.com"], raw)
        [name] = sink.store.names()
        stored = (sink.store.messages_dir / name).read_bytes()
    finally:
        sink.stop()
    received = stored.split(b"\r\n", 2)[2]  # the sink's two envelope lines come first
    assert received == raw
    assert dkim.verify(received, dnsfunc=dns_for(public_value))
    assert content(parse(received).get_body(("plain",))) == text
