"""What a message keeps beside its text, and Meta's status news, in the words staff read.

The keys of `Message.metadata` and of a status's errors and pricing, with the words for the
codes some of them hold; the admins pass them to `core.admin_helpers.readable_fields`.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy

METADATA_LABELS = {
    "staff_name": gettext_lazy("sent by"),
    "guardrail_exception": gettext_lazy("exception confirmed by staff for"),
    "ai_error": gettext_lazy("AI failure (the rules answered)"),
    "fallback": gettext_lazy("answered by the rules"),
    "discount_offered": gettext_lazy("discount offered"),
    "in_reply_to": gettext_lazy("answers message"),
    "judgement": gettext_lazy("links in the reply"),
    "tokens": gettext_lazy("AI tokens"),
    "in": gettext_lazy("input"),
    "out": gettext_lazy("output"),
    "cached": gettext_lazy("cached"),
    "guardrail": gettext_lazy("guardrails"),
    "violations": gettext_lazy("breaches"),
    "dropped_sentences": gettext_lazy("sentences removed"),
    "action": gettext_lazy("what was done"),
    "transcribed": gettext_lazy("voice message transcribed"),
    "transcribe_model": gettext_lazy("transcription model"),
    "transcription_error": gettext_lazy("transcription failed"),
    "edited_text": gettext_lazy("text after the customer's edit"),
    "edited_at": gettext_lazy("edited at"),
    "edited_by": gettext_lazy("edit in message"),
    "revoked_at": gettext_lazy("deleted by the customer at"),
    "revoked_by": gettext_lazy("deletion in message"),
    "profile_name": gettext_lazy("WhatsApp profile name"),
    "user_id": gettext_lazy("WhatsApp user id"),
    "username": gettext_lazy("WhatsApp username"),
    "asks_for_text": gettext_lazy("asked the customer to write instead"),
    "template": gettext_lazy("template"),
    "template_alternatives": gettext_lazy("other templates allowed"),
    "template_switched_from": gettext_lazy("template replaced (paused or rejected)"),
    "intent": gettext_lazy("intent"),
    "sentiment": gettext_lazy("sentiment"),
    "parameters": gettext_lazy("parameters"),
    "name": gettext_lazy("name"),
    "language": gettext_lazy("language"),
    "sequence": gettext_lazy("recovery sequence"),
    "step": gettext_lazy("step"),
    "variant": gettext_lazy("variant"),
    "as_text": gettext_lazy("sent as text inside the 24 h window"),
    "customer_wrote_at": gettext_lazy("customer wrote at"),
    "quiet_hours_waived": gettext_lazy("quiet hours waived"),
    "whatsapp": gettext_lazy("message as WhatsApp sent it"),
    "billable": gettext_lazy("billable"),
    "category": gettext_lazy("category"),
    "pricing_model": gettext_lazy("pricing model"),
    "type": gettext_lazy("type"),
    "code": gettext_lazy("code"),
    "title": gettext_lazy("title"),
    "message": gettext_lazy("message"),
    "error_data": gettext_lazy("detail"),
    "details": gettext_lazy("detail"),
}
_BREACHES = {
    "url": gettext_lazy("link that is not the shop's"),
    "amount": gettext_lazy("amount that is not the cart's"),
    "percent": gettext_lazy("percentage not offered"),
    "coupon": gettext_lazy("coupon the shop did not configure"),
    "discount_promise": gettext_lazy("promise of a discount"),
}
METADATA_WORDS = {
    "guardrail_exception": _BREACHES,
    "violations": _BREACHES,
    "action": {"replaced": gettext_lazy("reply replaced"), "dropped": gettext_lazy("sentences removed")},
    "judgement": {
        "no_links": gettext_lazy("no links (the customer is not ready)"),
        "no_push": gettext_lazy("links without pressing"),
    },
    "ai_error": {
        "timeout": gettext_lazy("no answer in time"),
        "connection": gettext_lazy("no connection"),
        "refusal": gettext_lazy("the model refused"),
        "length": gettext_lazy("answer cut off"),
        "content_filter": gettext_lazy("content filter"),
        "schema": gettext_lazy("answer out of shape"),
        "error": gettext_lazy("error"),
    },
    "category": {
        "marketing": gettext_lazy("marketing"),
        "utility": gettext_lazy("utility"),
        "service": gettext_lazy("service"),
        "authentication": gettext_lazy("authentication"),
    },
}
