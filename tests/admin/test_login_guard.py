"""Admin login is locked after repeated failures (guessing a password cannot go on)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def fresh_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("suporte", password="s3nha-certa", is_staff=True)


def attempt(client, password: str, username: str = "suporte", ip: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(client, staff):
    for _ in range(5):
        assert attempt(client, "chute").status_code == 200  # the form again, with its error
    response = attempt(client, "s3nha-certa")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_locked_username_stays_locked_from_another_address(client, staff):
    for n in range(5):
        attempt(client, "chute", ip=f"198.51.100.{n}")
    assert attempt(client, "s3nha-certa", ip="192.0.2.50").status_code == 429


def test_an_address_guessing_many_usernames_is_locked(client, staff):
    for n in range(5):
        attempt(client, "chute", username=f"user{n}")
    assert attempt(client, "s3nha-certa").status_code == 429
    assert attempt(client, "s3nha-certa", ip="192.0.2.99").status_code == 302  # another address is fine


def test_the_lock_ends_after_its_time(client, staff, settings):
    # The lock's time is the cache entry's own expiry (in Redis, Redis's clock): a short lock
    # and a real wait, rather than a frozen clock the cache does not see.
    settings.SARA_LOGIN_LOCK_SECONDS = 1
    for _ in range(5):
        attempt(client, "chute")
    assert attempt(client, "s3nha-certa").status_code == 429
    time.sleep(1.2)
    assert attempt(client, "s3nha-certa").status_code == 302


def test_a_successful_login_clears_the_failures_of_that_username(client, staff):
    for _ in range(4):
        attempt(client, "chute", ip="198.51.100.1")
    assert attempt(client, "s3nha-certa", ip="198.51.100.2").status_code == 302
    client.logout()
    for _ in range(4):
        attempt(client, "chute", ip="198.51.100.3")
    assert attempt(client, "s3nha-certa", ip="198.51.100.4").status_code == 302
