"""Configuration comes from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROD_SECRETS = {
    "SECRET_KEY": "s3cr3t-key-for-tests",
    "WHATSAPP_APP_SECRET": "app-secret",
    "WHATSAPP_VERIFY_TOKEN": "verify-token",
    "PAYMENT_WEBHOOK_SECRET": "payment-secret",
}
PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.WHATSAPP_BACKEND, s.SARA_INTERPRETER)"
)


def start(env: dict[str, str], code: str = PRINT_SETTINGS) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh process with only the given environment (as a deploy would)."""
    base = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HOME": os.environ.get("HOME", "/"),
    }
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


REAL_THINGS = {
    "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WHATSAPP_ACCESS_TOKEN": "EAAG-token",
    "OPENAI_API_KEY": "sk-test",
}


@pytest.mark.parametrize(
    ("environment", "parts"),
    [
        pytest.param(
            {},
            ["django.db.backends.sqlite3", "True", "messaging.whatsapp.console.ConsoleBackend", "rules"],
            id="no environment at all runs on the embedded defaults",
        ),
        pytest.param(
            REAL_THINGS,
            ["django.db.backends.postgresql", "False", "messaging.whatsapp.cloud.CloudAPIBackend", "openai"],
            id="variables switch each part to the real thing",
        ),
    ],
)
def test_the_environment_picks_the_database_the_task_mode_the_sender_and_the_interpreter(environment, parts):
    result = start(environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == parts


BROKER_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER, sorted(s.CELERY_BROKER_TRANSPORT_OPTIONS))"
)


def test_rabbitmq_as_broker_confirms_publishes_and_has_no_visibility_timeout():
    env = {"REDIS_URL": "redis://127.0.0.1:6379/0", "CELERY_BROKER_URL": "amqp://u:p@127.0.0.1:5672/sara"}
    result = start(env, code=BROKER_SETTINGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["amqp://u:p@127.0.0.1:5672/sara", "False", "['confirm_publish']"]


def test_redis_as_broker_keeps_its_visibility_timeout():
    result = start({"REDIS_URL": "redis://127.0.0.1:6379/0"}, code=BROKER_SETTINGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://127.0.0.1:6379/0", "False", "['visibility_timeout']"]


def test_a_broker_without_redis_refuses_to_start_naming_redis_url():
    result = start({"CELERY_BROKER_URL": "amqp://u:p@127.0.0.1:5672/sara"})
    assert result.returncode != 0
    assert "REDIS_URL must be set with CELERY_BROKER_URL" in result.stderr


@pytest.mark.parametrize("missing", sorted(PROD_SECRETS))
def test_production_start_without_a_required_secret_fails_naming_it(missing):
    env = {"DEBUG": "0", "ALLOWED_HOSTS": "sara.example.com", **PROD_SECRETS}
    del env[missing]
    result = start(env)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_production_start_with_every_secret_succeeds_and_never_prints_them():
    result = start({"DEBUG": "0", "ALLOWED_HOSTS": "sara.example.com", **PROD_SECRETS})
    assert result.returncode == 0, result.stderr
    for value in PROD_SECRETS.values():
        assert value not in result.stdout + result.stderr


DATABASE_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASES['default'].get('DISABLE_SERVER_SIDE_CURSORS', False))"
)


@pytest.mark.parametrize(("behind", "disabled"), [("1", "True"), ("0", "False")])
def test_behind_pgbouncer_no_server_side_cursor_outlives_its_transaction(behind, disabled):
    env = {"DATABASE_URL": "postgres://u:p@127.0.0.1:6432/sara", "DATABASE_BEHIND_PGBOUNCER": behind}
    result = start(env, code=DATABASE_SETTINGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [disabled]


DATABASE_OF = (
    "from django.conf import settings as s; d = s.DATABASES['default']; "
    "print(d.get('OPTIONS', {}).get('pool', {}).get('max_size', 'no-pool'), d['CONN_MAX_AGE'])"
)
POSTGRES = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x"}


def test_the_web_entry_point_keeps_one_persistent_connection_per_process_without_a_pool():
    # What `gunicorn config.wsgi` loads, with nothing but the database's URL set.
    result = start(POSTGRES, code=f"import config.wsgi; {DATABASE_OF}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["no-pool", "300"]


def test_a_celery_worker_shares_a_pool_between_its_threads():
    # What `celery -A config worker` loads: the app, then Django's settings through it.
    code = f"from config.celery import app; app.loader.import_default_modules(); {DATABASE_OF}"
    result = start(POSTGRES, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["30", "0"]


def test_the_pool_size_variable_still_decides_for_any_process():
    result = start({**POSTGRES, "DATABASE_POOL_MAX_SIZE": "12"}, code=f"import config.wsgi; {DATABASE_OF}")
    assert result.stdout.split() == ["12", "0"], result.stderr
    result = start(
        {**POSTGRES, "DATABASE_POOL_MAX_SIZE": "0"}, code=f"import django; django.setup(); {DATABASE_OF}"
    )
    assert result.stdout.split() == ["no-pool", "300"], result.stderr
