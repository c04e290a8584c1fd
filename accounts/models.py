"""Users, workspaces (tenants) and the memberships that join them with a role."""

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower

from common.models import TimeStampedModel


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username: str):
        # People type their address in any case; it is stored lower-cased.
        return self.get(email=username.strip().lower())


class User(AbstractUser):
    """A person who signs in with an email address; may belong to several workspaces."""

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class Workspace(TimeStampedModel):
    """A client of the platform; every tenant-owned row points at one."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    is_active = models.BooleanField(default=True, help_text="Inactive workspaces cannot be signed in to.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Member(TimeStampedModel):
    """A user's place in a workspace and what they may do there."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        EDITOR = "editor", "Editor"
        VIEWER = "viewer", "Viewer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        ordering = ["workspace__name", "user__email"]
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="accounts_member_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.get_role_display()})"

    @property
    def can_write(self) -> bool:
        """Editors and above create and change the workspace's marketing objects."""
        return self.role != self.Role.VIEWER

    @property
    def can_manage(self) -> bool:
        """Admins and owners manage members and the workspace's settings."""
        return self.role in (self.Role.OWNER, self.Role.ADMIN)
