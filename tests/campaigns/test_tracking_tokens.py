"""Delivery tokens: compact, signed, and refused when altered, truncated or signed with another key."""

import base64
import hashlib
import hmac
import time

import pytest

from campaigns.lib.tracking import (
    DeliveryToken,
    InvalidToken,
    click_url,
    make_delivery_token,
    open_pixel_url,
    read_delivery_token,
)


def token(**ids):
    return make_delivery_token(**{"workspace_id": 3, "campaign_id": 1234, "delivery_id": 987654321, **ids})


def test_a_token_reads_back_as_its_delivery():
    assert read_delivery_token(token()) == DeliveryToken(workspace_id=3, campaign_id=1234, delivery_id=987654321)


def test_tokens_are_compact_and_url_safe():
    value = token(workspace_id=2**31, campaign_id=2**31, delivery_id=2**40)
    assert len(value) <= 45
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert read_delivery_token(value).delivery_id == 2**40


def test_each_delivery_gets_its_own_token():
    assert token(delivery_id=1) != token(delivery_id=2)
    assert token() == token()  # no timestamp or nonce: the same delivery always gets the same token


def test_every_single_character_change_is_refused():
    value = token()
    for index in range(len(value)):
        replacement = "A" if value[index] != "A" else "B"
        with pytest.raises(InvalidToken):
            read_delivery_token(value[:index] + replacement + value[index + 1 :])


@pytest.mark.parametrize("cut", [1, 2, 5, 17])
def test_truncated_tokens_are_refused(cut):
    with pytest.raises(InvalidToken):
        read_delivery_token(token()[:-cut])


@pytest.mark.parametrize("junk", ["", "x", "not a token!", "A" * 500, "AQID" * 10, None, 12345, "AQ==" * 8])
def test_junk_is_refused(junk):
    with pytest.raises(InvalidToken):
        read_delivery_token(junk)


def test_a_token_signed_with_another_secret_key_is_refused(settings):
    settings.SECRET_KEY = "another-installation-" * 3
    foreign = token()
    settings.SECRET_KEY = "this-installation-" * 3
    with pytest.raises(InvalidToken):
        read_delivery_token(foreign)


def test_a_forged_token_with_a_valid_looking_mac_under_another_key_is_refused():
    value = token()
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    payload = raw[:-16]
    forged_payload = payload[:-1] + bytes([payload[-1] ^ 1])  # another delivery id
    mac = hmac.digest(b"guessed key", forged_payload, hashlib.sha256)[:16]
    forged = base64.urlsafe_b64encode(forged_payload + mac).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        read_delivery_token(forged)


def test_tokens_survive_a_secret_key_rotation(settings):
    settings.SECRET_KEY = "old-secret-" * 5
    old = token()
    settings.SECRET_KEY = "new-secret-" * 5
    settings.SECRET_KEY_FALLBACKS = ["old-secret-" * 5]
    assert read_delivery_token(old).delivery_id == 987654321


def test_negative_or_huge_ids_cannot_be_encoded():
    with pytest.raises(ValueError):
        token(delivery_id=-1)
    with pytest.raises(ValueError):
        token(delivery_id=2**63)


def test_tracking_urls():
    assert click_url(site_url="https://herald.test", token="TOK", position=3) == "https://herald.test/t/c/TOK/3"
    assert open_pixel_url(site_url="https://herald.test/", token="TOK") == "https://herald.test/t/o/TOK.gif"


def test_token_cost(capsys):
    """Not a timed assertion: prints what making and checking a token costs."""
    count = 20000
    started = time.perf_counter()
    values = [token(delivery_id=n) for n in range(count)]
    made = (time.perf_counter() - started) / count * 1e6
    started = time.perf_counter()
    for value in values:
        read_delivery_token(value)
    read = (time.perf_counter() - started) / count * 1e6
    with capsys.disabled():
        print(f"\n[tracking] make {made:.1f} µs, read {read:.1f} µs per token ({len(values[-1])} characters)")
