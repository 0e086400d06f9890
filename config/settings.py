"""Sara's settings: one file, every knob from the environment (django-environ).

With no environment at all Sara runs on the embedded defaults: SQLite, Celery tasks executed
eagerly after commit, the console WhatsApp backend and the rule-based interpreter. Each
variable of SPEC §2 switches one part to the real thing.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)


def _secret(name: str, dev_value: str) -> str:
    """A secret from the environment; a fixed dev value only when DEBUG is on."""
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_value
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")


SECRET_KEY = _secret("SECRET_KEY", "dev-insecure-secret-key-do-not-use-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Before django.contrib.admin: its admin/index.html (the dashboard) overrides the stock one.
    "backoffice.apps.BackofficeConfig",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    # Failed-login lockouts (SPEC §9): per username and address, kept in the database.
    "axes",
    "core.apps.CoreConfig",
    "sara.apps.SaraConfig",
    "recovery.apps.RecoveryConfig",
    "messaging.apps.MessagingConfig",
    "compliance.apps.ComplianceConfig",
]

MIDDLEWARE = [
    "core.tracing.TraceIdMiddleware",
    "core.metrics.WebhookMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The web process serves its own static files (collected at image build): the admin is
    # styled and its scripts run with DEBUG off, with no other server in front (SPEC §9).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Staff read Portuguese; a browser or an API client asking for English gets English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username-and-address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Every page carries a Content-Security-Policy (SPEC §9). Sara's pages and Django's admin use
# no inline script or style: only files served from here run, and nothing may frame the admin.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "backoffice.context_processors.desk_waiting",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# A send holds its connection through the Graph request (the customer's row stays locked so an
# opt-out cannot commit in between), so a process sends at most ≈ pool ÷ Graph's latency a
# second: 20 at 0.3 s capped one process at 56/s, under Meta's 80; 30 reaches the limiter's
# 72.7/s (bench/RESULTS.md, issue 16).
#
# Each process gets the configuration that suits it without an operator setting anything: the
# web entry points (config/wsgi.py, config/asgi.py) mark their process as web before settings
# are read, and a gunicorn sync worker, serving one request at a time, keeps one persistent
# connection instead of taking one from a pool on every request (about 20 % more webhooks/s,
# bench/RESULTS.md). Every other process (Celery workers, beat, manage.py) gets the pool.
# DATABASE_POOL_MAX_SIZE, when set, decides for any process (0: no pool).
_WEB_PROCESS = os.environ.get("SARA_PROCESS") == "web"
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0 if _WEB_PROCESS else 30)
_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if _POSTGRES and DATABASE_POOL_MAX_SIZE:
    # A psycopg pool per process: a worker's threads share a bounded number of connections, so
    # web + workers stay under PostgreSQL's max_connections (a thread waits for a free
    # connection instead), and a thread lends its connection back during the OpenAI call.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": 30,
    }
elif _POSTGRES:
    # No pool (a web process, or DATABASE_POOL_MAX_SIZE=0): the process keeps its one
    # connection open between requests.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=300)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if _POSTGRES and env.bool("DATABASE_BEHIND_PGBOUNCER", default=False):
    # PgBouncer in transaction mode hands each transaction a server connection of its own: a
    # server-side cursor (QuerySet.iterator()) would outlive it (docs/scaling.md).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache and Celery ----------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The broker is Redis unless another is named (RabbitMQ: amqp://); Redis stays required for
# the send limiter and the cache either way. "memory://localhost/" rather than "memory://":
# without a host, kombu warns "No hostname was supplied" each time it opens a connection, i.e.
# on every abandonment in the embedded mode.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "memory://localhost/"
BROKER_IS_AMQP = CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://"))
_NO_BROKER = CELERY_BROKER_URL.startswith("memory://")
if not _NO_BROKER and not REDIS_URL:
    # Without Redis each process would keep its own send limiter: Meta's rate, times N.
    raise ImproperlyConfigured("REDIS_URL must be set with CELERY_BROKER_URL: it carries the send limiter.")
# No broker: tasks run in-process right after the transaction that queued them commits.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=_NO_BROKER)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged only when it finished: a worker killed mid-task leaves it queued.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Sends have their own queue: a backlog of customer messages to read never holds back the
# replies already written. A worker started without -Q consumes both, taking turns.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES: dict[str, dict[str, str]] = {"celery": {}, "send": {}}
CELERY_TASK_ROUTES = {"messaging.tasks.send_message": {"queue": "send"}}
# The work is I/O bound (OpenAI ≈ 1 s, Graph ≈ 0.3 s): threads keep up where prefork cannot.
CELERY_WORKER_POOL = env.str("CELERY_WORKER_POOL", default="threads")
# 60 threads a process: a message holds a thread ≈ 1.2 s (OpenAI, then Graph), so two processes
# can carry ≈ 100 messages/s; more threads only add memory (bench/RESULTS.md, issue 16).
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=60)
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
if BROKER_IS_AMQP:
    # RabbitMQ hands an unacknowledged task back the moment its worker's connection drops, so
    # there is no visibility timeout to wait out. Its consumer_timeout (30 min by default) must
    # stay longer than any task plus any retry countdown held by a worker (90 s + ≈10 s).
    # Publisher confirms: delay() returns only once RabbitMQ has the task. Queues are durable
    # and messages persistent (Celery's defaults), so a broker restart keeps them.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    CELERY_BROKER_HEARTBEAT = 60
else:
    # An unacknowledged task is redelivered after this long; every task finishes far sooner.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600)
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers keep Django's LOGGING (JSON lines with the trace id) instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck": {"task": "messaging.tasks.sweep_stuck", "schedule": 60.0},
    "sweep-windows": {"task": "compliance.tasks.sweep_windows", "schedule": 300.0},
    "sweep-source-checkouts": {"task": "recovery.tasks.sweep_source_checkouts", "schedule": 60.0},
    "poll-nuvemshop": {"task": "recovery.tasks.poll_nuvemshop", "schedule": 300.0},
    # Closed conversations' money kept for the money page, which only reads (SPEC §13).
    "settle-money": {"task": "recovery.tasks.settle_money", "schedule": 300.0},
    # Raw webhook payloads older than SARA_RAW_RETENTION_DAYS go (SPEC §14).
    "purge-raw-payloads": {"task": "messaging.tasks.purge_raw_payloads", "schedule": 3600.0},
}
CELERY_TIMEZONE = "UTC"

# --- WhatsApp (Meta Cloud API) --------------------------------------------------------------
WHATSAPP_APP_SECRET = _secret("WHATSAPP_APP_SECRET", "dev-app-secret")
WHATSAPP_VERIFY_TOKEN = _secret("WHATSAPP_VERIFY_TOKEN", "dev-verify-token")
WHATSAPP_ACCESS_TOKEN = env.str("WHATSAPP_ACCESS_TOKEN", default="")
WHATSAPP_PHONE_NUMBER_ID = env.str("WHATSAPP_PHONE_NUMBER_ID", default="console")
WHATSAPP_API_BASE_URL = env.str("WHATSAPP_API_BASE_URL", default="https://graph.facebook.com")
WHATSAPP_API_VERSION = env.str("WHATSAPP_API_VERSION", default="v21.0")
WHATSAPP_TEMPLATE_NAME = env.str("WHATSAPP_TEMPLATE_NAME", default="recovery_invitation")
WHATSAPP_TEMPLATE_LANGUAGE = env.str("WHATSAPP_TEMPLATE_LANGUAGE", default="pt_BR")
WHATSAPP_FOLLOWUP_TEMPLATE_NAME = env.str("WHATSAPP_FOLLOWUP_TEMPLATE_NAME", default="recovery_followup")
# The thank-you after a payment as a utility template (SPEC §15), once Meta approved it (a
# Template row says so, from its webhook or sync_templates); until then it goes as text.
WHATSAPP_THANK_YOU_TEMPLATE_NAME = env.str("WHATSAPP_THANK_YOU_TEMPLATE_NAME", default="recovery_thank_you")
# The WhatsApp Business Account whose templates `manage.py sync_templates` reads.
WHATSAPP_BUSINESS_ACCOUNT_ID = env.str("WHATSAPP_BUSINESS_ACCOUNT_ID", default="")
# The approved templates' body text, beside their names: the transcript shows what the customer
# read. {{1}} is the customer's first name, {{2}} the product (recovery.services.template_parameters).
WHATSAPP_TEMPLATE_BODIES = env.json(
    "WHATSAPP_TEMPLATE_BODIES",
    default={
        "recovery_invitation": (
            "Olá, {{1}}! Vi que você deixou {{2}} no carrinho. Posso ajudar a finalizar a compra? "
            "Se tiver alguma dúvida, é só responder esta mensagem."
        ),
        "recovery_followup": (
            "Oi, {{1}}! {{2}} ainda está reservado para você. Quer que eu envie o link de pagamento? "
            "Responda esta mensagem que eu te ajudo."
        ),
    },
)
WHATSAPP_MPS = env.int("WHATSAPP_MPS", default=80)
WHATSAPP_TIMEOUT_SECONDS = env.float("WHATSAPP_TIMEOUT_SECONDS", default=10.0)
# The read receipt with typing indicator is best effort: a slow Graph may hold a reply this long
# at most (it runs beside the AI's reading), never more.
WHATSAPP_READ_RECEIPT_TIMEOUT_SECONDS = env.float("WHATSAPP_READ_RECEIPT_TIMEOUT_SECONDS", default=2.0)
WHATSAPP_BACKEND = env.str(
    "WHATSAPP_BACKEND",
    default=(
        "messaging.whatsapp.cloud.CloudAPIBackend"
        if WHATSAPP_ACCESS_TOKEN
        else "messaging.whatsapp.console.ConsoleBackend"
    ),
)

# --- Checkout / payment platform ------------------------------------------------------------
PAYMENT_WEBHOOK_SECRET = _secret("PAYMENT_WEBHOOK_SECRET", "dev-payment-secret")

# --- Platform sources (SPEC §11): each platform is off while its secret is unset ------------
SHOPIFY_WEBHOOK_SECRET = env.str("SHOPIFY_WEBHOOK_SECRET", default="")
SHOPIFY_ABANDONED_AFTER_MINUTES = env.float("SHOPIFY_ABANDONED_AFTER_MINUTES", default=60)
NUVEMSHOP_APP_SECRET = env.str("NUVEMSHOP_APP_SECRET", default="")
NUVEMSHOP_STORE_ID = env.str("NUVEMSHOP_STORE_ID", default="")
NUVEMSHOP_ACCESS_TOKEN = env.str("NUVEMSHOP_ACCESS_TOKEN", default="")
NUVEMSHOP_API_BASE_URL = "https://api.nuvemshop.com.br/v1"
YAMPI_WEBHOOK_SECRET = env.str("YAMPI_WEBHOOK_SECRET", default="")
HOTMART_HOTTOK = env.str("HOTMART_HOTTOK", default="")
KIWIFY_WEBHOOK_TOKEN = env.str("KIWIFY_WEBHOOK_TOKEN", default="")

# --- OpenAI ---------------------------------------------------------------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=5.0)
OPENAI_TRANSCRIBE_MODEL = env.str("OPENAI_TRANSCRIBE_MODEL", default="gpt-4o-mini-transcribe")
# A voice note of a minute or two takes longer to transcribe than a reply takes to write.
OPENAI_TRANSCRIBE_TIMEOUT_SECONDS = env.float("OPENAI_TRANSCRIBE_TIMEOUT_SECONDS", default=15.0)
SARA_INTERPRETER = env.str("SARA_INTERPRETER", default="openai" if OPENAI_API_KEY else "rules")

# --- Domain knobs ---------------------------------------------------------------------------
SARA_QUIET_HOURS = env.str("SARA_QUIET_HOURS", default="21:00-08:00")
FOLLOWUP_AFTER_HOURS = env.float("FOLLOWUP_AFTER_HOURS", default=20)
SARA_EXPIRE_AFTER_HOURS = env.float("SARA_EXPIRE_AFTER_HOURS", default=72)
SARA_MAX_EXCHANGES = env.int("SARA_MAX_EXCHANGES", default=5)
# Messages from one customer this close together are read together and answered once (SPEC §5).
SARA_BURST_SECONDS = env.float("SARA_BURST_SECONDS", default=4)
SARA_MAX_DISCOUNT_OFFERS = 3
SARA_DISCOUNT_VALUE_THRESHOLD = Decimal(env.str("SARA_DISCOUNT_VALUE_THRESHOLD", default="500"))
# Work older than this that has not moved is re-driven by messaging.tasks.sweep_stuck.
SARA_STUCK_AFTER_SECONDS = env.int("SARA_STUCK_AFTER_SECONDS", default=120)
# A send claimed longer ago than this, still without a wamid, lost its worker mid-send.
SARA_CLAIM_LEASE_SECONDS = env.int("SARA_CLAIM_LEASE_SECONDS", default=120)
# Meta batches above this many updates are stored raw and fanned out by a task.
SARA_INLINE_BATCH_LIMIT = env.int("SARA_INLINE_BATCH_LIMIT", default=50)

# --- Proving the money (SPEC §13) ------------------------------------------------------------
# Share (0–100) of new carts drawn into the holdout group, never contacted, to measure what
# Sara adds. Each cart stores the share in force at its draw.
try:
    SARA_HOLDOUT_PERCENT = Decimal(env.str("SARA_HOLDOUT_PERCENT", default="0"))
except ArithmeticError:
    SARA_HOLDOUT_PERCENT = Decimal("NaN")
if not Decimal(0) <= SARA_HOLDOUT_PERCENT <= Decimal(100):
    raise ImproperlyConfigured("SARA_HOLDOUT_PERCENT must be between 0 and 100.")
# Meta's per-message rates for Brazil (+55), in SARA_META_PRICE_CURRENCY per delivered message.
# Source: Meta's rate card for Brazil in force from 1 October 2026 (developers.facebook.com/docs/
# whatsapp/pricing), read on 30 November 2026: marketing US$ 0.0625; utility, authentication
# and service US$ 0.0068. Set yours from the card your account is billed on.
SARA_META_PRICE_CURRENCY = env.str("SARA_META_PRICE_CURRENCY", default="USD")
SARA_META_PRICES = {
    category: Decimal(price)
    for category, price in env.dict(
        "SARA_META_PRICES",
        default={
            "marketing": "0.0625",
            "marketing_lite": "0.0625",
            "utility": "0.0068",
            "authentication": "0.0068",
            "authentication_international": "0.0068",
            "service": "0.0068",
        },
    ).items()
}
# The first this-many service messages per phone number per calendar month (UTC) are free.
SARA_META_FREE_SERVICE_PER_MONTH = env.int("SARA_META_FREE_SERVICE_PER_MONTH", default=1000)
# BRL per unit of the price tables' currency: set it to the rate your card is charged at.
SARA_FX_TO_BRL = Decimal(env.str("SARA_FX_TO_BRL", default="5.40"))
# Chat models' price in US$ per million tokens, input and output blended (Sara stores one total
# per call). gpt-4o-mini lists US$ 0.15 input / 0.60 output per 1M (openai.com/api/pricing,
# read 30 November 2026); Sara's calls run about ten input tokens to one output: ≈ 0.20.
SARA_MODEL_PRICES_USD = {
    model: Decimal(price)
    for model, price in env.dict(
        "SARA_MODEL_PRICES_USD", default={"gpt-4o-mini": "0.20", "gpt-4o": "3.20"}
    ).items()
}

# --- Observability --------------------------------------------------------------------------
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from core import sentry

    sentry.init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="development" if DEBUG else "production"),
        release=env.str("SENTRY_RELEASE", default=""),
    )

# /metrics answers a bearer token when METRICS_TOKEN is set, otherwise only these addresses.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

# Admin logins: this many failures for an address or a username lock it for this long.
SARA_RAW_RETENTION_DAYS = env.int("SARA_RAW_RETENTION_DAYS", default=30)
SARA_LOGIN_MAX_FAILURES = env.int("SARA_LOGIN_MAX_FAILURES", default=5)
SARA_LOGIN_LOCK_SECONDS = env.int("SARA_LOGIN_LOCK_SECONDS", default=900)
# How many proxies in front of the web process add themselves to X-Forwarded-For (the TLS proxy
# the README describes: 1). 0 reads the connection's own address.
SARA_TRUSTED_PROXIES = env.int("SARA_TRUSTED_PROXIES", default=0)

# django-axes: a lockout is per username AND address, so failures with invented usernames
# from one address (every staff member's, behind a proxy) never lock a real user out, while a
# user's own failures still lock that user at that address.
AXES_FAILURE_LIMIT = SARA_LOGIN_MAX_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=SARA_LOGIN_LOCK_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
# Axes logs each attempt's username and address; the password field never.
AXES_VERBOSE = False

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "filters": {"trace": {"()": "core.logging.TraceIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["trace"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers off (its plain console line in DEBUG, mail to ADMINS): its
        # records reach the JSON handler once, by the root, so a 4xx is one line.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # One line per HTTP request from the OpenAI SDK's client repeats Sara's own
        # "AI interpretation" line (with its latency); failures are still logged.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        # Celery's "Task … received" and "Task … succeeded" lines: two per task, four per
        # customer message, each repeating what Sara logs with its ids ("inbound processed",
        # "message sent"). Failures are still Celery's to log (ERROR); Sara logs its retries.
        "celery.app.trace": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
        "celery.worker.strategy": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
    },
}

# --- Web ------------------------------------------------------------------------------------
LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Brazilian dates with seconds where people compare times (sends, statuses, waits).
FORMAT_MODULE_PATH = ["config.formats"]
USE_THOUSAND_SEPARATOR = True
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies made by collectstatic; no manifest, so a page renders with or without
    # the collect step (tests, `scripts/run`), and WhiteNoise serves whatever was collected.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG

# The Meta webhook accepts batches of up to 5 MiB; every view checks its own limit first.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024 + 1

SPECTACULAR_SETTINGS = {
    "TITLE": "Sara integrations API",
    "DESCRIPTION": "Read, close, reply to and give back recovery conversations (token authentication).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema maps the API for an attacker too: staff (signed in) and the API's users only.
    "SERVE_PERMISSIONS": ["recovery.permissions.SchemaReader"],
    "SERVE_AUTHENTICATION": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    # Any token is not enough: only staff in the support or ops groups, or a user given the
    # API's permission (SPEC §9).
    "DEFAULT_PERMISSION_CLASSES": ["recovery.permissions.ConversationsAPIUser"],
    "EXCEPTION_HANDLER": "core.http.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
