"""The hand-off in the admin (SPEC §8): the inbox of conversations waiting for a person, and
take, reply, resolve, give back and flag from a conversation's page. Each step is one service
call, recorded in the admin's history."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from compliance.gate import in_service_window
from core.staff import staff_name, staff_user
from recovery import handoff, handoff_selectors
from recovery.models import Conversation

# The inbox page fetches its rows again this often (seconds); the server renders them.
INBOX_REFRESH_SECONDS = 15


class ReplyForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Reply"),
        max_length=4096,  # WhatsApp's limit for a text message
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
    )


class InboxFilter:
    ALL = ""
    MINE = "me"
    UNASSIGNED = "none"

    CHOICES = [
        (ALL, pgettext_lazy("conversations", "All")),
        (UNASSIGNED, gettext_lazy("Not taken")),
        (MINE, gettext_lazy("Taken by me")),
    ]


if TYPE_CHECKING:
    # For the type checker the mixin is the ModelAdmin it is mixed into.
    from django.contrib import admin

    _AdminBase = admin.ModelAdmin[Conversation]
else:
    _AdminBase = object


class HandoffAdminMixin(_AdminBase):
    """Mixed into ConversationAdmin: its inbox and hand-off steps live at its own URLs."""

    handoff_steps: tuple[str, ...] = ("take", "reply", "template", "resolve", "handback", "flag")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("inbox/", view(self.inbox_view), name="recovery_conversation_inbox"),
            path("inbox/rows/", view(self.inbox_rows_view), name="recovery_conversation_inbox_rows"),
            path(
                "<path:object_id>/handoff/<str:step>/",
                view(self.handoff_step_view),
                name="recovery_conversation_handoff",
            ),
            *super().get_urls(),
        ]

    # --- The inbox ------------------------------------------------------------------------

    def _inbox_context(self, request: HttpRequest) -> dict:
        shown = request.GET.get("assigned", InboxFilter.ALL)
        conversations = handoff_selectors.handoff_inbox()
        if shown == InboxFilter.MINE:
            conversations = conversations.filter(assigned_to=staff_user(request))
        elif shown == InboxFilter.UNASSIGNED:
            conversations = conversations.filter(assigned_to__isnull=True)
        now = timezone.now()
        rows = [
            {
                "conversation": c,
                "wait": wait_label(c.waiting_since, now),  # type: ignore[attr-defined]  # annotated by handoff_inbox()
                "reason": c.get_handoff_reason_display() or _("by hand"),
                "mine": c.assigned_to_id == request.user.pk,
            }
            for c in conversations[:200]
        ]
        return {
            "rows": rows,
            "shown": shown,
            "filters": InboxFilter.CHOICES,
            "can_change": self.has_change_permission(request),
            "refreshed_at": now,
        }

    def inbox_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **self._inbox_context(request),
            "title": _("Waiting for a person"),
            "opts": self.opts,
            "rows_url": reverse("admin:recovery_conversation_inbox_rows") + _query(request),
            "refresh_seconds": INBOX_REFRESH_SECONDS,
        }
        return TemplateResponse(request, "admin/recovery/conversation/inbox.html", context)

    def inbox_rows_view(self, request: HttpRequest) -> HttpResponse:
        """The inbox's list alone, for the page's script to swap in without a reload."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(
            request, "admin/recovery/conversation/inbox_rows.html", self._inbox_context(request)
        )

    # --- A conversation's page ------------------------------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Conversation | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["handoff"] = self.handoff_context(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def handoff_context(self, request: HttpRequest, conversation: Conversation) -> dict:
        """What the hand-off panel and the reply box of a conversation's page need."""
        now = timezone.now()
        return {
            "conversation": conversation,
            "can_change": self.has_change_permission(request, conversation),
            "reason": conversation.get_handoff_reason_display() or _("by hand"),
            "wait": wait_label(conversation.handoff_at or conversation.last_user_message_at, now),
            "mine": conversation.assigned_to_id == request.user.pk,
            "window_open": in_service_window(conversation.last_user_message_at, now),
            "never_wrote": conversation.last_user_message_at is None,
            "opted_out": conversation.customer.opted_out,
            "reply_form": ReplyForm(),
        }

    def handoff_step_view(self, request: HttpRequest, object_id: str, step: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not object_id.isdigit():
            raise Http404
        conversation = get_object_or_404(Conversation.objects.select_related("customer"), pk=object_id)
        if step not in self.handoff_steps or not self.has_change_permission(request, conversation):
            raise PermissionDenied
        change_url = reverse("admin:recovery_conversation_change", args=[conversation.pk])
        try:
            done = getattr(self, f"_handoff_{step}")(request, conversation)
        except handoff.HandoffError as error:
            self.message_user(request, str(error.message), messages.ERROR)
            return redirect(change_url)
        if done:
            self.log_change(request, conversation, done)
            self.message_user(request, done, messages.SUCCESS)
        return redirect(change_url)

    def _handoff_take(self, request: HttpRequest, conversation: Conversation) -> str:
        handoff.conversation_take(conversation_id=conversation.pk, user=staff_user(request))
        return _("Taken by %(name)s: Sara stays silent until it is given back.") % {
            "name": staff_name(staff_user(request))
        }

    def _posted_text(self, request: HttpRequest, form_class: type[forms.Form], refused: str) -> str | None:
        """The text a staff form posted, or None once the person is told why it was refused
        (`refused` holds %(errors)s)."""
        form = form_class(request.POST)
        if form.is_valid():
            text: str = form.cleaned_data["text"]
            return text
        errors = "; ".join(str(e) for field in form.errors.values() for e in field)
        self.message_user(request, refused % {"errors": errors}, messages.ERROR)
        return None

    def _handoff_reply(self, request: HttpRequest, conversation: Conversation) -> str:
        text = self._posted_text(request, ReplyForm, _("Reply not sent: %(errors)s"))
        if text is None:
            return ""
        message = handoff.conversation_reply(
            conversation_id=conversation.pk, user=staff_user(request), text=text
        )
        return _("Reply queued for sending (message %(id)s).") % {"id": message.pk}

    def _handoff_template(self, request: HttpRequest, conversation: Conversation) -> str:
        message = handoff.conversation_reply_template(
            conversation_id=conversation.pk, user=staff_user(request)
        )
        return _("Follow-up template queued for sending (message %(id)s).") % {"id": message.pk}

    def _handoff_resolve(self, request: HttpRequest, conversation: Conversation) -> str:
        handoff.conversation_resolve(conversation_id=conversation.pk, user=staff_user(request))
        return _("Resolved: the conversation is closed.")

    def _handoff_handback(self, request: HttpRequest, conversation: Conversation) -> str:
        handoff.conversation_handback(conversation_id=conversation.pk)
        return _("Given back to Sara: she answers the customer's next message.")

    def _handoff_flag(self, request: HttpRequest, conversation: Conversation) -> str:
        handoff.conversation_flag(conversation_id=conversation.pk)
        return _("Flagged for a person: Sara stays silent and the conversation is in the inbox.")


def wait_label(since: datetime | None, now: datetime) -> str:
    """How long a customer has waited, to the minute: "8 min", "3 h 05 min", "2 d 4 h"."""
    if since is None:
        return "—"
    minutes = max(int((now - since).total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)d h %(minutes)02d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}


def _query(request: HttpRequest) -> str:
    query = request.GET.urlencode()
    return f"?{query}" if query else ""
