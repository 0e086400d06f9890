"""Who may use the integrations API and read its schema (SPEC §9).

Kept apart from the views: DRF imports its default permission classes while its own views
module loads, so this module imports nothing of DRF but its permissions.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class ConversationsAPIUser(BasePermission):
    """Staff in the support or ops groups, or a user given the API's permission (SPEC §9).

    A token alone is not enough: the API reads transcripts and writes to customers.
    """

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return bool(user and user.is_active and user.has_perm("recovery.use_api"))


class SchemaReader(BasePermission):
    """The API's schema: for the back-office's staff and the API's users, nobody else."""

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return bool(user and user.is_active and (user.is_staff or user.has_perm("recovery.use_api")))
