"""Failed admin logins lock out per username AND address (SPEC §9, django-axes).

Guessing a password cannot go on, and nobody can lock the whole staff out: behind the TLS
proxy every staff member shares one address, and failures with invented usernames from it
never lock a real user out.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PROXY = "10.0.0.2"  # the TLS proxy: every request reaches Sara from it


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("suporte", password="s3nha-certa", is_staff=True)


def attempt(client, password: str, username: str = "suporte", ip: str = "203.0.113.7", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def test_five_wrong_passwords_lock_the_user_even_with_the_right_one(client, staff):
    for _ in range(4):
        assert attempt(client, "chute").status_code == 200  # the form again, with its error
    assert attempt(client, "chute").status_code == 429  # the fifth failure locks
    response = attempt(client, "s3nha-certa")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_failures_with_invented_usernames_never_lock_a_real_user_out(client, staff):
    # An attacker behind the same proxy as the whole staff tries made-up usernames.
    for n in range(50):
        attempt(client, "chute", username=f"inventado{n}", ip=PROXY)
    assert attempt(client, "s3nha-certa", ip=PROXY).status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_an_attacker_locks_only_the_user_they_guess_and_only_at_their_address(client, staff, settings):
    colleague = User.objects.create_user("operacao", password="outra-senha", is_staff=True)
    for _ in range(5):
        attempt(client, "chute", ip="198.51.100.66")
    assert attempt(client, "s3nha-certa", ip="198.51.100.66").status_code == 429
    # The same person from the office, and a colleague from the attacker's address, get in.
    assert attempt(client, "s3nha-certa", ip="192.0.2.50").status_code == 302
    client.logout()
    assert attempt(client, "outra-senha", username="operacao", ip="198.51.100.66").status_code == 302
    assert client.session["_auth_user_id"] == str(colleague.pk)


def test_behind_the_proxy_the_lock_follows_the_client_address_it_forwards(client, staff, settings):
    settings.SARA_TRUSTED_PROXIES = 1
    for _ in range(5):
        # The client's own X-Forwarded-For entry ("1.2.3.4") is ignored: only the proxy's counts.
        attempt(client, "chute", ip=PROXY, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.66")
    locked = attempt(client, "s3nha-certa", ip=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert locked.status_code == 429
    office = attempt(client, "s3nha-certa", ip=PROXY, HTTP_X_FORWARDED_FOR="192.0.2.50")
    assert office.status_code == 302


def test_the_lock_ends_after_its_time(client, staff, settings):
    for _ in range(5):
        attempt(client, "chute")
    assert attempt(client, "s3nha-certa").status_code == 429
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.SARA_LOGIN_LOCK_SECONDS + 1)):
        assert attempt(client, "s3nha-certa").status_code == 302


def test_a_successful_login_clears_the_users_failures(client, staff):
    for _ in range(4):
        attempt(client, "chute")
    assert attempt(client, "s3nha-certa").status_code == 302
    client.logout()
    for _ in range(4):
        attempt(client, "chute")
    assert attempt(client, "s3nha-certa").status_code == 302
