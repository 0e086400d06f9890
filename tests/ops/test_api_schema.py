"""The integrations API against its own published OpenAPI schema, with schemathesis."""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token

from config.wsgi import application
from tests.factories import ConversationFactory, InboundMessageFactory


@pytest.fixture
def api_schema(db, token):
    # Requests go straight to the WSGI app, not through Django's test client: keep Django from
    # closing the test's connection at the end of each request, as the test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        # The schema is for the API's users only (SPEC §9): fetched with their token.
        yield schemathesis.openapi.from_wsgi(
            "/api/schema/?format=json", application, headers={"Authorization": f"Token {token}"}
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def token(db) -> str:
    user = get_user_model().objects.create_user("schemathesis", password="x")
    user.user_permissions.add(Permission.objects.get(codename="use_api"))
    conversation = ConversationFactory(pk=1)
    InboundMessageFactory(conversation=conversation)
    return Token.objects.create(user=user).key


def test_the_api_honours_its_schema_for_any_request(api_schema, token):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/conversations/{id}", "/conversations/{id}/close"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def honours_the_schema(case: schemathesis.Case) -> None:
            # No 500, documented status codes, bodies in the documented shapes.
            case.call_and_validate(headers={"Authorization": f"Token {token}"})

        honours_the_schema()


def test_the_schema_is_published_to_the_apis_users_only(client, token):
    assert client.get("/api/schema/?format=json").status_code in (401, 403)
    response = client.get("/api/schema/?format=json", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/conversations/{id}", "/conversations/{id}/close"} <= set(paths)
