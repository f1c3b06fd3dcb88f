from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.forms import ModelForm
from django.http import HttpRequest

from accounts.models import Customer
from accounts.services import do_deactivate_customer


@admin.register(Customer)
class CustomerAdmin(UserAdmin):
    list_display = (
        "customer_id",
        "username",
        "full_name",
        "email",
        "phone_number",
        "avatar_color",
        "date_joined",
        "last_login",
        "is_active",
        "is_staff",
    )
    list_filter = ("is_active", "is_staff", "is_superuser", "date_joined")
    search_fields = ("=customer_id", "username", "full_name", "email", "phone_number")
    ordering = ("customer_id",)
    readonly_fields = ("date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("full_name", "email", "phone_number", "avatar_color", "roles")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "full_name", "email", "password1", "password2")}),
    )

    def has_delete_permission(self, request: HttpRequest, obj: Customer | None = None) -> bool:
        """Customers are deactivated, never deleted: a delete would take their memberships and
        reactions with it, with no event, so the read model and live clients would never learn."""
        return False

    def save_model(self, request: HttpRequest, obj: Customer, form: ModelForm[Customer], change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            do_deactivate_customer(obj.customer_id)  # ends the sessions their tokens still hold
