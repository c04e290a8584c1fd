"""Secrets stored encrypted at rest: relay passwords and DKIM private keys.

Fernet (from `cryptography`) keyed by RELAY_CREDENTIALS_KEY, or derived from SECRET_KEY when
that is unset. `EncryptedTextField` holds plaintext in Python and ciphertext in the database,
so a dump of the database never shows a relay password or a signing key.
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

PREFIX = "fernet:"


@cache
def _fernet(key_material: str) -> Fernet:
    # Any string becomes a valid Fernet key: the operator may paste a passphrase or a Fernet key.
    digest = hashlib.sha256(("herald.credentials:" + key_material).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _key_material() -> str:
    return settings.RELAY_CREDENTIALS_KEY or settings.SECRET_KEY


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return PREFIX + _fernet(_key_material()).encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        raise ValueError("This value is not an encrypted secret.")
    try:
        return _fernet(_key_material()).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ValueError(
            "A stored secret cannot be decrypted: RELAY_CREDENTIALS_KEY (or SECRET_KEY) changed since it was saved."
        ) from None


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted with `encrypt` before it reaches the database."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else (value or "")
