"""The bytes of one campaign message: RFC 5322 headers, a multipart/alternative body, DKIM.

Assembled by hand rather than through email.message, because it runs once per recipient on the
send path and the standard library's policy machinery costs more than the rendering itself. The
output is plain, strictly formed MIME: quoted-printable UTF-8 bodies, RFC 2047 encoded-words for
non-ASCII header text, folded lines, CRLF endings. Header values never carry a CR or LF from
their inputs (they are replaced by spaces), so a subject, a name or a merge value cannot add a
header; addresses, URLs and tokens with such characters are refused outright.
"""

import base64
import binascii
import hashlib
import re
import secrets
import time
from email.utils import formatdate, parseaddr

import dkim as dkimpy
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy

from campaigns.lib.rendering import RenderedMessage

CRLF = "\r\n"
# Headers covered by the DKIM signature. RFC 8058 requires List-Unsubscribe and
# List-Unsubscribe-Post among them for one-click unsubscribe to be honoured.
DKIM_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version", b"content-type",
    b"list-unsubscribe", b"list-unsubscribe-post", b"x-herald-delivery",
)  # fmt: skip

_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")
_ADDRESS_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>,;\"()\[\]\\]")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>\"]")
_TOKEN = re.compile(r"[A-Za-z0-9._~:+/=-]{1,200}")
_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>")
# 39 bytes -> 52 base64 characters -> a 64-character encoded-word: with "Subject: " or "Reply-To: "
# ahead of it, every line stays within the 76 columns RFC 2047 allows.
_ENCODED_WORD_BYTES = 39


def make_message_id(*, delivery_id: int, campaign_id: int, domain: str) -> str:
    """The same Message-ID for every attempt at one delivery, so a retried send is recognisably one message."""
    return f"<herald.{int(campaign_id)}.{int(delivery_id)}@{_ascii_domain(domain)}>"


def build_message(
    *,
    from_email: str,
    from_name: str,
    to_email: str,
    to_name: str,
    reply_to: str,
    rendered: RenderedMessage,
    message_id: str,
    list_unsubscribe_url: str,
    list_unsubscribe_mailto: str | None,
    delivery_token: str,
    dkim: "DkimSigner | None" = None,
) -> bytes:
    """The message, ready for SMTP DATA (CRLF line endings, not dot-stuffed)."""
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"Not a valid Message-ID: {message_id!r}")
    if not _TOKEN.fullmatch(delivery_token):
        raise ValueError("The delivery token has characters a header cannot carry.")
    unsubscribe = [f"<{_url(list_unsubscribe_url)}>"]
    if list_unsubscribe_mailto:
        mailto = list_unsubscribe_mailto
        unsubscribe.append(f"<{_url(mailto if mailto.startswith('mailto:') else 'mailto:' + mailto)}>")
    headers = [
        _header("From", _mailbox(from_name, from_email)),
        _header("To", _mailbox(to_name, to_email)),
        _unstructured("Subject", rendered.subject),
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {message_id}",
    ]
    if reply_to:
        reply_name, reply_email = parseaddr(_clean(reply_to))
        if not reply_email:
            raise ValueError(f"Not a valid Reply-To address: {reply_to!r}")
        headers.append(_header("Reply-To", _mailbox(reply_name, reply_email)))
    headers += [
        _header("List-Unsubscribe", ",\r\n ".join(unsubscribe)),
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        f"X-Herald-Delivery: {delivery_token}",
        "MIME-Version: 1.0",
    ]
    text_part = _qp(rendered.text)
    if rendered.html:
        boundary = f"=_herald_{secrets.token_hex(12)}"  # "=_" never occurs in quoted-printable
        headers.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"')
        body = (
            (
                f"--{boundary}\r\n"
                'Content-Type: text/plain; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            ).encode()
            + text_part
            + (
                f"\r\n--{boundary}\r\n"
                'Content-Type: text/html; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            ).encode()
            + _qp(rendered.html)
            + f"\r\n--{boundary}--\r\n".encode()
        )
    else:
        headers.append('Content-Type: text/plain; charset="utf-8"')
        headers.append("Content-Transfer-Encoding: quoted-printable")
        body = text_part if text_part.endswith(b"\r\n") else text_part + b"\r\n"
    message = (CRLF.join(headers) + CRLF + CRLF).encode() + body
    return dkim.sign(message) if dkim else message


class DkimSigner:
    """Signs messages for one sending domain with its DKIM key (rsa-sha256, relaxed/relaxed).

    dkimpy does the parts that must match every verifier (parsing, canonicalization, the header
    hash, folding); the RSA operation goes to OpenSSL through cryptography, because dkimpy's
    pure-Python RSA costs about 6 ms a message, twenty times more, on the send path.
    """

    def __init__(self, *, domain: str, selector: str, private_key_pem: str | bytes):
        self.domain = _ascii_domain(domain).encode()
        self.selector = selector.strip().encode("ascii")
        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        # Fail now, at configuration, rather than on the first message.
        self._key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(self._key, rsa.RSAPrivateKey):
            raise ValueError("A DKIM key must be an RSA private key.")

    def sign(self, message: bytes) -> bytes:
        headers, body = dkimpy.rfc822_parse(message)
        body_hash = base64.b64encode(hashlib.sha256(_RELAXED.canonicalize_body(body)).digest())
        fields = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", _RELAXED.to_c_value()),
            (b"d", self.domain),
            (b"s", self.selector),
            (b"t", str(int(time.time())).encode("ascii")),
            (b"h", b" : ".join(DKIM_HEADERS)),  # spaced, so folding breaks between names
            (b"bh", body_hash),
            (b"b", b""),
        ]
        unsigned = dkimpy.fold(b"; ".join(b"=".join(field) for field in fields), namelen=len(b"DKIM-Signature"))
        digest = hashlib.sha256()
        dkimpy.hash_headers(
            digest,
            _RELAXED,
            _RELAXED.canonicalize_headers(headers),
            DKIM_HEADERS,
            (b"DKIM-Signature", b" " + unsigned),
            dict(fields),
        )
        signature = self._key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        fields[-1] = (b"b", base64.b64encode(signature))
        value = dkimpy.fold(b"; ".join(b"=".join(field) for field in fields) + b"\r\n", namelen=len(b"DKIM-Signature"))
        return b"DKIM-Signature: " + value + message


def generate_dkim_key(bits: int = 2048) -> tuple[str, str]:
    """A new RSA key pair: (private key PEM, the DNS TXT value to publish at <selector>._domainkey)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return private_pem, dkim_dns_value(private_pem)


def dkim_dns_value(private_key_pem: str | bytes) -> str:
    """The `v=DKIM1; k=rsa; p=...` TXT value for a private key."""
    pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
    public = serialization.load_pem_private_key(pem, password=None).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


# --- header pieces -------------------------------------------------------------------------------


def _clean(value: str) -> str:
    """Header text with every control character (CR and LF above all) turned into a space."""
    return " ".join(_CONTROL.sub(" ", value or "").split())


def _ascii_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".")
    if not domain or _ADDRESS_FORBIDDEN.search(domain) or "@" in domain:
        raise ValueError(f"Not a valid domain: {domain!r}")
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


def _address(email: str) -> str:
    local, at, domain = (email or "").strip().rpartition("@")
    if not at or not local or _ADDRESS_FORBIDDEN.search(local):
        raise ValueError(f"Not a valid email address: {email!r}")
    return f"{local}@{_ascii_domain(domain)}"


def _mailbox(name: str, email: str) -> str:
    address = _address(email)
    name = _clean(name)
    if not name:
        return address
    if name.isascii() and "=?" not in name:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    words = _encoded_words(name)
    last_line = words.rsplit("\n", 1)[-1]
    separator = "\r\n " if len(last_line) + len(address) + 3 > 76 else " "
    return f"{words}{separator}<{address}>"


def _url(url: str) -> str:
    url = (url or "").strip()
    if not url or _URL_FORBIDDEN.search(url):
        raise ValueError(f"Not a URL a header can carry: {url!r}")
    return url


def _header(name: str, value: str) -> str:
    # Only the folds this module makes (CRLF + space) may appear; anything else is a bug upstream.
    if "\r" in value.replace("\r\n ", "") or "\n" in value.replace("\r\n ", ""):
        raise ValueError(f"{name} would contain a line break")
    return f"{name}: {value}"


def _unstructured(name: str, value: str) -> str:
    """A free-text header (Subject), folded at 78 columns, encoded when not plain ASCII."""
    value = _clean(value)
    if len(value) + len(name) <= 76 and value.isascii() and "=?" not in value:
        return f"{name}: {value}"  # the usual short subject: nothing to fold or encode
    words = value.split(" ")
    if not value.isascii() or "=?" in value or any(len(word) > 900 for word in words):
        return f"{name}: {_encoded_words(value)}"
    lines, line = [], f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > 78 and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return CRLF.join(lines)


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded-words, each under 75 characters, never splitting a UTF-8 character."""
    words, chunk, size = [], [], 0
    for char in text:
        width = len(char.encode())
        if size + width > _ENCODED_WORD_BYTES:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk:
        words.append("".join(chunk))
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word.encode()).decode()}?=" for word in words)


def _qp(text: str) -> bytes:
    """UTF-8 quoted-printable with CRLF line breaks."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").encode()
    return binascii.b2a_qp(normalized, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")
