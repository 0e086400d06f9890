"""Recorded platform payloads (tests/fixtures/sources/) posted the way each platform signs them."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from typing import Any

from django.test import Client

from tests.conftest import FIXTURES

SECRETS = {
    "SHOPIFY_WEBHOOK_SECRET": "shpss_test_secret",
    "NUVEMSHOP_APP_SECRET": "nuvem-app-secret",
    "NUVEMSHOP_STORE_ID": "167985134",
    "NUVEMSHOP_ACCESS_TOKEN": "nuvem-access-token",
    "YAMPI_WEBHOOK_SECRET": "wh_yampi_secret",
    "HOTMART_HOTTOK": "hottok-fixed-token",
    "KIWIFY_WEBHOOK_TOKEN": "w9i3pvutvxe",
}
PLATFORMS = ["shopify", "nuvemshop", "yampi", "hotmart", "kiwify"]
NUVEMSHOP_API = "https://api.nuvemshop.com.br/v1/167985134"


def payload(platform: str, name: str) -> Any:
    """A fresh copy of tests/fixtures/sources/<platform>/<name>.json."""
    return copy.deepcopy(json.loads((FIXTURES / "sources" / platform / f"{name}.json").read_text()))


def _b64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature(platform: str, body: bytes) -> dict[str, str]:
    """The headers (or query) that make `body` authentic for the platform."""
    if platform == "shopify":
        return {"HTTP_X_SHOPIFY_HMAC_SHA256": _b64(SECRETS["SHOPIFY_WEBHOOK_SECRET"], body)}
    if platform == "nuvemshop":
        digest = hmac.new(SECRETS["NUVEMSHOP_APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()
        return {"HTTP_X_LINKEDSTORE_HMAC_SHA256": digest}
    if platform == "yampi":
        return {"HTTP_X_YAMPI_HMAC_SHA256": _b64(SECRETS["YAMPI_WEBHOOK_SECRET"], body)}
    if platform == "hotmart":
        return {"HTTP_X_HOTMART_HOTTOK": SECRETS["HOTMART_HOTTOK"]}
    if platform == "kiwify":
        return {
            "QUERY_STRING": "signature="
            + hmac.new(SECRETS["KIWIFY_WEBHOOK_TOKEN"].encode(), body, hashlib.sha1).hexdigest()
        }
    raise AssertionError(platform)


def post(
    client: Client,
    platform: str,
    data: Any,
    *,
    signed: bool = True,
    headers: dict[str, str] | None = None,
) -> Any:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    extra = signature(platform, body) if signed else {}
    return client.post(
        f"/webhook/sources/{platform}", body, content_type="application/json", **extra, **(headers or {})
    )


def shopify_headers(topic: str, event_id: str) -> dict[str, str]:
    return {
        "HTTP_X_SHOPIFY_TOPIC": topic,
        "HTTP_X_SHOPIFY_EVENT_ID": event_id,
        "HTTP_X_SHOPIFY_SHOP_DOMAIN": "loja-da-maria.myshopify.com",
        "HTTP_X_SHOPIFY_API_VERSION": "2025-10",
    }
