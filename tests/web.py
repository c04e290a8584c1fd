"""Helpers for tests that talk to a real Herald server over HTTP."""

import re

import requests


def sign_in(base_url: str, email: str, password: str) -> requests.Session:
    """A requests session signed in through the real login form (CSRF token included)."""
    session = requests.Session()
    page = session.get(f"{base_url}/accounts/login/", timeout=10)
    page.raise_for_status()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{base_url}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": email, "password": password},
        headers={"Referer": f"{base_url}/accounts/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, f"sign-in failed with {response.status_code}"
    return session
