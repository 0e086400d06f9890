"""The support desk in the admin (SPEC §8): the paged inbox, the waiting count every page polls,
and the conversation page as a workspace (take, assign, reply, notes, template, resolve, reopen).

Mixed into the conversation admin in front of the hand-off's own mixin; each step is one service
call (recovery.handoff, recovery.desk), recorded in the admin's history.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance.gate import in_service_window
from core.staff import staff_name, staff_user
from core.text import brl
from recovery import desk, handoff
from recovery.admin_handoff import InboxFilter, ReplyForm, wait_label
from recovery.models import CannedReply, Conversation, PrivateNote


class NoteForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Private note"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Only staff read it; it is never sent to the customer."),
    )


if TYPE_CHECKING:
    # For the type checker the mixin is the hand-off admin it is mixed in front of.
    from recovery.admin_handoff import HandoffAdminMixin as _AdminBase
else:
    _AdminBase = object


class DeskAdminMixin(_AdminBase):
    """The desk's views and steps, over the hand-off's (messaging.admin_handoff)."""

    handoff_steps = (
        "take",
        "reply",
        "template",
        "resolve",
        "resolve_next",
        "handback",
        "flag",
        "reopen",
        "assign",
        "note",
    )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("inbox/waiting.json", view(self.desk_waiting_view), name="desk_waiting"),
            *super().get_urls(),
        ]

    # --- The inbox and its count ------------------------------------------------------------

    def desk_waiting_view(self, request: HttpRequest) -> JsonResponse:
        """What every admin page polls: how many wait, and the newest waiting conversation."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        count, newest = desk.waiting_summary()
        return JsonResponse({"waiting": count, "newest": newest})

    def _inbox_context(self, request: HttpRequest) -> dict:
        shown = request.GET.get("assigned", InboxFilter.ALL)
        words = request.GET.get("q", "").strip()[:200]
        conversations = desk.inbox(user=staff_user(request), shown=shown, words=words)
        paginator = self.get_paginator(request, conversations, desk.INBOX_PAGE_SIZE)
        page = paginator.get_page(request.GET.get("p"))
        now = timezone.now()
        rows = [
            {
                "conversation": c,
                "wait": wait_label(c.waiting_since, now),
                "reason": c.get_handoff_reason_display() or _("by hand"),
                "mine": c.assigned_to_id == request.user.pk,
                "value": brl(c.abandonment.value),
                "window_open": in_service_window(c.last_user_message_at, now),
                "held_by": staff_name(c.assigned_to) if c.assigned_to_id else "",
            }
            for c in page.object_list
        ]
        return {
            "rows": rows,
            "page": page,
            "paginator": paginator,
            "total_waiting": desk.waiting().count() if (shown or words) else paginator.count,
            "shown": shown,
            "words": words,
            "filters": InboxFilter.CHOICES,
            "can_change": self.has_change_permission(request),
            "refreshed_at": now,
            "page_query": _query_without(request, "p"),
        }

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        """The conversation list also finds conversations by words the customer wrote."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            results = results | queryset.filter(pk__in=desk.conversations_with_words(search_term))
        return results, may_have_duplicates

    # --- A conversation's page: the workspace -------------------------------------------------

    def handoff_context(self, request: HttpRequest, conversation: Conversation) -> dict:
        context = super().handoff_context(request, conversation)
        now = timezone.now()
        abandonment = conversation.abandonment
        product = abandonment.product
        discounted = abandonment.discounted_value()
        staff = (
            get_user_model().objects.filter(is_active=True, is_staff=True).order_by("first_name", "username")
        )
        unread = desk.unread(conversation=conversation, user=staff_user(request))
        desk.conversation_read(conversation_id=conversation.pk, user=staff_user(request), now=now)
        context.update(
            {
                "mine": conversation.assigned_to_id == request.user.pk,
                "held_by": staff_name(conversation.assigned_to) if conversation.assigned_to_id else "",
                "window": desk.window_state(conversation, now),
                "cart": {
                    "abandonment": abandonment,
                    "value": brl(abandonment.value),
                    "product": product.name if product else abandonment.external_product_id,
                    "discount_percent": product.discount_percent
                    if product and discounted is not None
                    else None,
                    "discounted_value": brl(discounted) if discounted is not None else "",
                    "discount_link": product.discount_link if product and discounted is not None else "",
                    "quotes": [
                        {
                            "percent": q.get("percent"),
                            "value": brl(Decimal(str(q.get("value")))) if q.get("value") else "—",
                            "at": q.get("at", ""),
                        }
                        for q in abandonment.quotes
                    ],
                },
                "mismatch": desk.payment_mismatch(conversation),
                "staff": [(user.pk, staff_name(user)) for user in staff],
                "canned": list(CannedReply.objects.values("title", "text")),
                "note_form": NoteForm(),
                "unread": unread,
                "template_key": uuid.uuid4().hex,
                "reopenable": not conversation.is_open and conversation.resolved_by_staff,
            }
        )
        return context

    def with_private_notes(self, conversation: Conversation, entries: list[tuple[Any, str, Any]]) -> list:
        """The transcript's messages with the staff's private notes in time order, marked apart."""
        notes = [(None, "", note) for note in PrivateNote.objects.filter(conversation=conversation)]
        merged = entries + notes
        merged.sort(key=lambda entry: (entry[2] or entry[0]).created_at)
        return merged

    def handoff_step_view(self, request: HttpRequest, object_id: str, step: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not object_id.isdigit():
            raise Http404
        conversation = get_object_or_404(
            Conversation.objects.select_related("customer", "abandonment__product"), pk=object_id
        )
        if step not in self.handoff_steps or not self.has_change_permission(request, conversation):
            raise PermissionDenied
        change_url = reverse(f"admin:{self.opts.app_label}_conversation_change", args=[conversation.pk])
        try:
            result = getattr(self, f"_handoff_{step}")(request, conversation)
        except desk.GuardrailBreached as error:
            return self._guardrail_page(request, conversation, error)
        except handoff.HandoffError as error:
            self.message_user(request, str(error.message), messages.ERROR)
            return redirect(change_url)
        if isinstance(result, HttpResponse):
            return result
        if result:
            self.log_change(request, conversation, result)
            self.message_user(request, result, messages.SUCCESS)
        return redirect(change_url)

    def _handoff_take(self, request: HttpRequest, conversation: Conversation) -> str:
        handoff.conversation_take(
            conversation_id=conversation.pk,
            user=staff_user(request),
            confirmed=request.POST.get("confirmed") == "1",
        )
        return _("Taken by %(name)s: Sara stays silent until it is given back.") % {
            "name": staff_name(staff_user(request))
        }

    def _handoff_assign(self, request: HttpRequest, conversation: Conversation) -> str:
        assignee = (
            get_user_model()
            .objects.filter(is_active=True, is_staff=True, pk=request.POST.get("assignee") or 0)
            .first()
        )
        if assignee is None:
            self.message_user(request, _("Choose a colleague to assign the conversation to."), messages.ERROR)
            return ""
        handoff.conversation_assign(conversation_id=conversation.pk, assignee=assignee)
        return _("Assigned to %(name)s.") % {"name": staff_name(assignee)}

    def _handoff_reply(self, request: HttpRequest, conversation: Conversation) -> str:
        text = self._posted_text(request, ReplyForm, _("Reply not sent: %(errors)s"))
        if text is None:
            return ""
        message = desk.staff_reply(
            conversation_id=conversation.pk,
            user=staff_user(request),
            text=text,
            exception_confirmed=request.POST.get("exception") == "1",
        )
        return _("Reply queued for sending (message %(id)s).") % {"id": message.pk}

    def _guardrail_page(
        self, request: HttpRequest, conversation: Conversation, error: desk.GuardrailBreached
    ) -> HttpResponse:
        """The reply was not sent: say which rules it broke, and let the person send it anyway."""
        context = {
            **self.admin_site.each_context(request),
            "title": _("Reply not sent: check it first"),
            "opts": self.opts,
            "original": conversation,
            "breaches": error.breaches,
            "text": request.POST.get("text", ""),
            "action": reverse(
                f"admin:{self.opts.app_label}_conversation_handoff", args=[conversation.pk, "reply"]
            ),
            "change_url": reverse(f"admin:{self.opts.app_label}_conversation_change", args=[conversation.pk]),
        }
        return TemplateResponse(request, "admin/recovery/desk/guardrail.html", context, status=422)

    # Only this mixin's step view calls it, and that view answers an HttpResponse as it is.
    def _handoff_template(  # type: ignore[override]
        self, request: HttpRequest, conversation: Conversation
    ) -> str | HttpResponse:
        """First the text and a confirmation; then one send per key, whatever the clicks."""
        key = request.POST.get("key", "")
        if request.POST.get("confirmed") != "1" or not key:
            context = {
                **self.admin_site.each_context(request),
                "title": _("Send the follow-up template?"),
                "opts": self.opts,
                "original": conversation,
                "preview": desk.template_preview(conversation),
                "key": key or uuid.uuid4().hex,
                "action": reverse(
                    f"admin:{self.opts.app_label}_conversation_handoff", args=[conversation.pk, "template"]
                ),
                "change_url": reverse(
                    f"admin:{self.opts.app_label}_conversation_change", args=[conversation.pk]
                ),
            }
            return TemplateResponse(request, "admin/recovery/desk/template_confirm.html", context)
        message, queued = desk.template_send(
            conversation_id=conversation.pk, user=staff_user(request), key=key
        )
        if not queued or message is None:
            self.message_user(
                request, _("This template was already sent: it was not sent again."), messages.WARNING
            )
            return ""
        return _("Follow-up template queued for sending (message %(id)s).") % {"id": message.pk}

    def _handoff_resolve_next(self, request: HttpRequest, conversation: Conversation) -> HttpResponse:
        done = self._handoff_resolve(request, conversation)
        self.log_change(request, conversation, done)
        self.message_user(request, done, messages.SUCCESS)
        following = desk.next_waiting(user=staff_user(request), after=conversation.pk)
        if following is None:
            self.message_user(request, _("Nobody else is waiting for a person."), messages.INFO)
            return redirect(reverse(f"admin:{self.opts.app_label}_conversation_inbox"))
        return redirect(reverse(f"admin:{self.opts.app_label}_conversation_change", args=[following.pk]))

    def _handoff_reopen(self, request: HttpRequest, conversation: Conversation) -> str:
        handoff.conversation_reopen(conversation_id=conversation.pk, user=staff_user(request))
        return _("Reopened: the conversation waits for a person again, held by you.")

    def _handoff_note(self, request: HttpRequest, conversation: Conversation) -> str:
        text = self._posted_text(request, NoteForm, _("Note not saved: %(errors)s"))
        if text is None:
            return ""
        desk.note_add(conversation_id=conversation.pk, user=staff_user(request), text=text)
        return _("Private note saved: only staff see it.")


def _query_without(request: HttpRequest, name: str) -> str:
    query = request.GET.copy()
    query.pop(name, None)
    return query.urlencode()


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    """Support writes the desk's ready answers here; "/" in the reply box offers them."""

    list_display = ["title", "text_start", "updated_at"]
    search_fields = ["title", "text"]
    fields = ["title", "text"]

    @admin.display(description=gettext_lazy("text"))
    def text_start(self, obj: CannedReply) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"
