"""The web process as production runs it (SPEC §9): gunicorn with the repo's config, DEBUG off,
static files collected the documented way (the Dockerfile's step) and served by the process
itself, a Content-Security-Policy on the admin, and an access log that holds no secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import FIXTURES

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
VERIFY_TOKEN = "verify-token-nobody-may-read-7c1d"
KIWIFY_TOKEN = "kiwify-token-3f9a"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(static_root: Path) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "production-like-secret-key-for-this-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WHATSAPP_APP_SECRET": "app-secret",
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "PAYMENT_WEBHOOK_SECRET": "payment-secret",
        "KIWIFY_WEBHOOK_TOKEN": KIWIFY_TOKEN,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        # Tasks run in-process after commit: this test is about the web process alone.
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "STATIC_ROOT": str(static_root),
        "SARA_QUIET_HOURS": "",
    }


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own server on loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def gunicorn(tmp_path):
    static_root = tmp_path / "static"
    env = _env(static_root)
    # The README's and the Dockerfile's collect step, as written there.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=ROOT,
        env={**env, "DEBUG": "1"},
        check=True,
        timeout=120,
    )
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "config/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if _get(base + "/health")[0] == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "gunicorn never answered /health"
        time.sleep(0.3)
    yield base, process, log
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=15)


def test_production_serves_the_styled_admin_with_a_csp_and_logs_no_secret(gunicorn):
    base, process, log = gunicorn

    status, _, body = _get(base + "/static/admin/css/base.css")
    assert status == 200 and b"body" in body
    status, headers, page = _get(base + "/admin/login/")
    assert status == 200
    policy = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    # Every stylesheet the login page links answers from the web process itself.
    for href in ("/static/admin/css/base.css", "/static/sara/admin.css"):
        assert href.encode() in page
        assert _get(base + href)[0] == 200

    status, _, challenge = _get(
        base
        + f"/webhook/messages?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    )
    assert (status, challenge) == (200, b"1158201444")
    body = (FIXTURES / "sources" / "kiwify" / "carrinho_abandonado.json").read_bytes()
    signature = hmac.new(KIWIFY_TOKEN.encode(), body, hashlib.sha1).hexdigest()
    request = urllib.request.Request(  # noqa: S310
        base + f"/webhook/sources/kiwify?signature={signature}",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        json.loads(response.read())

    process.terminate()
    process.wait(timeout=15)
    written = log.read_text(errors="replace")
    assert "GET /webhook/messages HTTP/1.1" in written and "POST /webhook/sources/kiwify" in written
    assert VERIFY_TOKEN not in written
    assert signature not in written
    assert "hub.verify_token" not in written and "signature=" not in written
