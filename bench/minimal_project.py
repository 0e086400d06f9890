"""A minimal Django project, the yardstick of bench/ingest.py: one view, Django's default
middleware (as `django-admin startproject` writes it), nothing of Sara's.

    gunicorn bench.minimal_project:application     # GET /health answers {"status": "ok"}

Same Python, same Django, same gunicorn settings as Sara's web in the same run: what a Django
project costs per request before it does anything, to compare a webhook with.
"""

from __future__ import annotations

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-minimal-project-not-for-production-0123456789",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    # The apps the default middleware needs (its admin and static files serve no URL here).
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    # startproject's SQLite; the view reads no table, so no request opens it.
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    USE_TZ=True,
)


@csrf_exempt
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("health", health)]

application = get_wsgi_application()
