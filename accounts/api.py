"""What every JSON API endpoint shares: API-key authentication, per-key rate limits, idempotency.

The API itself is assembled in config/urls.py from each app's router (`<app>/api.py`). An
endpoint receives the caller's `ApiKey` as `request.auth`; it stands in for a member in the
access helpers (same `workspace_id`, `can_write` from its scope), so the API and the dashboard
load objects the same way.
"""

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.security import HttpBearer
from ninja.throttling import SimpleRateThrottle

from accounts.models import ApiKey, IdempotencyRecord

KEY_PREFIX = "hk_"
# last_used_at is a hint for people reviewing their keys; writing it on every call would turn
# every read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_api_key(secret: str) -> str:
    # Keys are 32 random bytes: a fast hash is as safe as a slow one and keeps each call cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer hk_...`: an active key, looked up by its prefix, compared by hash."""

    def authenticate(self, request, token: str) -> ApiKey | None:
        prefix = token[: len(KEY_PREFIX) + 8]
        if not token.startswith(KEY_PREFIX) or len(token) < 20:
            return None
        key = ApiKey.objects.select_related("workspace").filter(prefix=prefix, revoked_at__isnull=True).first()
        if key is None or not key.workspace.is_active:
            return None
        if not hmac.compare_digest(key.key_hash, hash_api_key(token)):
            return None
        now = timezone.now()
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_PRECISION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per key per period, counted in the cache (a Redis outage lets calls through)."""

    scope = "api_key"

    def get_cache_key(self, request) -> str:
        ident = getattr(getattr(request, "auth", None), "pk", None) or self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def idempotent(request, compute: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
    """Run `compute` once per `Idempotency-Key`; a retry with the key gets the stored answer.

    `compute` returns (status, JSON-able data) and runs in the same transaction as the record of
    its answer, so a retry racing the first attempt waits for it and then replays its answer,
    and a failed attempt leaves no record (the retry runs again). The same key sent with a
    different request is refused with 422.
    """
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return compute()
    if len(key) > 255:
        raise HttpError(400, "The Idempotency-Key header may be at most 255 characters.")
    workspace_id = request.auth.workspace_id
    fingerprint = hashlib.sha256(b"\n".join([request.method.encode(), request.path.encode(), request.body])).hexdigest()
    stored = IdempotencyRecord.objects.filter(workspace_id=workspace_id, key=key).first()
    if stored:
        return _replay(stored, fingerprint)
    try:
        with transaction.atomic():
            status, data = compute()
            body = json.dumps(data, cls=DjangoJSONEncoder).encode()
            with transaction.atomic():
                IdempotencyRecord.objects.create(
                    workspace_id=workspace_id,
                    key=key,
                    request_fingerprint=fingerprint,
                    status_code=status,
                    response_body=body,
                )
    except IntegrityError:
        stored = IdempotencyRecord.objects.filter(workspace_id=workspace_id, key=key).first()
        if stored is None:
            raise
        return _replay(stored, fingerprint)
    return status, json.loads(body)


def _replay(stored: IdempotencyRecord, fingerprint: str) -> tuple[int, Any]:
    if stored.request_fingerprint != fingerprint:
        raise HttpError(422, "This Idempotency-Key was already used for a different request.")
    return stored.status_code, json.loads(bytes(stored.response_body))


router = Router(tags=["workspace"])


class WorkspaceOut(Schema):
    id: int
    name: str
    slug: str
    key_name: str
    key_scope: str


@router.get("/workspace", response=WorkspaceOut, summary="The workspace the API key belongs to")
def workspace_detail(request):
    key = request.auth
    return WorkspaceOut(
        id=key.workspace_id, name=key.workspace.name, slug=key.workspace.slug, key_name=key.name, key_scope=key.scope
    )
