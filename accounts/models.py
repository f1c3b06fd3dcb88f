from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower

ROLE_USER = "ROLE_USER"
DEFAULT_AVATAR_COLOR = "#4CAF50"


class CustomerManager(BaseUserManager["Customer"]):
    def create_user(self, username: str, password: str | None = None, **fields: Any) -> Customer:
        if not username:
            raise ValueError("A username is required.")
        fields.setdefault("full_name", username)
        customer = self.model(username=username, **fields)
        customer.set_password(password)
        customer.save(using=self._db)
        return customer

    def create_superuser(self, username: str, password: str | None = None, **fields: Any) -> Customer:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(username, password, **fields)


class Customer(AbstractBaseUser, PermissionsMixin):
    """A person who chats; also the Django user, so admin and auth share one table."""

    customer_id = models.BigAutoField(primary_key=True)
    username = models.CharField(max_length=150, unique=True)
    full_name = models.CharField(max_length=100)
    email = models.EmailField(max_length=254)
    phone_number = models.CharField(max_length=20, unique=True, null=True, blank=True)
    avatar_color = models.CharField(max_length=7, default=DEFAULT_AVATAR_COLOR)
    roles = models.CharField(max_length=255, default=ROLE_USER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(auto_now_add=True)
    # Tokens issued (their `iat`, in epoch seconds) before this are refused: deactivation ends
    # every session the customer holds, and reactivation does not bring them back.
    tokens_not_before = models.BigIntegerField(default=0)

    objects: ClassVar[CustomerManager] = CustomerManager()

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS = ["full_name", "email"]

    class Meta:
        db_table = "customers"
        constraints = [
            # Uniqueness lives in the database so concurrent updates cannot both win.
            models.UniqueConstraint(Lower("email"), name="customers_email_ci_unique"),
        ]
        indexes = [models.Index(fields=["full_name"], name="customers_full_name_idx")]

    def __str__(self) -> str:
        return f"{self.username} ({self.customer_id})"


class RevokedToken(models.Model):
    """A token ended by logout, refused until it would have expired anyway.

    In PostgreSQL beside the data it guards, so a command checks it in the statement that
    writes (no race with a concurrent logout, no extra round trip) and Redis being away does
    not lock everyone out.
    """

    token_id = models.CharField(max_length=64, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "revoked_tokens"

    def __str__(self) -> str:
        return self.token_id
