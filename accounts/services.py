"""Writes for accounts: creating workspaces, adding members, changing roles."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify

from accounts.api import KEY_PREFIX, hash_api_key
from accounts.models import ApiKey, Member, User, Workspace


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    slug, suffix = base, 2
    while Workspace.objects.filter(slug=slug).exists():
        slug = f"{base}-{suffix}"
        suffix += 1
    return slug


def user_get_or_create(*, email: str, password: str | None = None) -> tuple[User, str | None]:
    """The user with this address, created if new; returns the password generated for a new user
    when none was given (None otherwise)."""
    email = email.strip().lower()
    user = User.objects.filter(email=email).first()
    if user:
        return user, None
    generated = None
    if password is None:
        generated = password = get_random_string(16)
    return User.objects.create_user(email=email, password=password), generated


@transaction.atomic
def workspace_create(*, name: str, owner: User, slug: str | None = None) -> Workspace:
    name = name.strip()
    if not name:
        raise ValidationError("A workspace needs a name.")
    if slug and Workspace.objects.filter(slug=slug).exists():
        raise ValidationError(f"A workspace with the slug {slug!r} already exists.")
    workspace = Workspace.objects.create(name=name, slug=slug or _unique_slug(name))
    Member.objects.create(workspace=workspace, user=owner, role=Member.Role.OWNER)
    return workspace


@transaction.atomic
def member_add(*, workspace: Workspace, user: User, role: str) -> Member:
    member, created = Member.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    if not created and member.role != role:
        member.role = role
        member.save(update_fields=["role", "updated_at"])
    return member


def _ensure_an_owner_remains(member: Member) -> None:
    others = Member.objects.select_for_update().filter(workspace_id=member.workspace_id, role=Member.Role.OWNER)
    if member.role == Member.Role.OWNER and not others.exclude(pk=member.pk).exists():
        raise ValidationError("A workspace must keep at least one owner.")


@transaction.atomic
def member_set_role(*, member: Member, role: str, actor: Member) -> Member:
    if role not in Member.Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    if role == Member.Role.OWNER and actor.role != Member.Role.OWNER:
        raise ValidationError("Only an owner can make someone an owner.")
    if member.role == Member.Role.OWNER and actor.role != Member.Role.OWNER:
        raise ValidationError("Only an owner can change another owner's role.")
    if role != Member.Role.OWNER:
        _ensure_an_owner_remains(member)
    member.role = role
    member.save(update_fields=["role", "updated_at"])
    return member


@transaction.atomic
def member_remove(*, member: Member, actor: Member) -> None:
    if member.role == Member.Role.OWNER and actor.role != Member.Role.OWNER:
        raise ValidationError("Only an owner can remove another owner.")
    _ensure_an_owner_remains(member)
    member.delete()


def workspace_rename(*, workspace: Workspace, name: str) -> Workspace:
    name = name.strip()
    if not name:
        raise ValidationError("A workspace needs a name.")
    workspace.name = name
    workspace.save(update_fields=["name", "updated_at"])
    return workspace


def api_key_create(*, workspace: Workspace, name: str, scope: str, actor: User | None = None) -> tuple[ApiKey, str]:
    """A new key and its secret, which is shown once and never stored."""
    name = name.strip()
    if not name:
        raise ValidationError("Give the key a name, so you know later what uses it.")
    if scope not in ApiKey.Scope.values:
        raise ValidationError(f"Scope must be one of {', '.join(ApiKey.Scope.values)}.")
    secret = KEY_PREFIX + get_random_string(8) + "_" + get_random_string(40)
    key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        scope=scope,
        prefix=secret[: len(KEY_PREFIX) + 8],
        key_hash=hash_api_key(secret),
        created_by=actor,
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
