"""Settings, read from the environment through django-environ.

With no environment at all the embedded default runs: SQLite, a local directory as the object store, Celery in eager
mode and a local-memory cache. `DATABASE_URL`, `REDIS_URL` and `S3_ENDPOINT_URL` switch to PostgreSQL, Redis and S3.
Any variable can also be given as `NAME_FILE` (a path whose content is the value), which suits Kubernetes secret
volumes.
"""

from pathlib import Path
from typing import Any

import environ

from archival.beat import archival_beat_schedule
from backups.beat import backup_beat_schedule
from billing.beat import CELERY_BEAT_SCHEDULE as BILLING_BEAT_SCHEDULE
from moves.beat import CELERY_BEAT_SCHEDULE as MOVES_BEAT_SCHEDULE
from overview.beat import overview_beat_schedule
from percolate_platform.broker import filesystem_broker_options
from percolate_platform.db_pool import configure_pool
from percolate_platform.master_key import decode_previous_keys, load_master_key
from percolate_platform.tier_policy import load_tier_policy

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.FileAwareEnv()
VAR_DIR = Path(env.str("PERCOLATE_VAR_DIR", default=str(BASE_DIR / "var")))

# Off unless asked for (#16): a deployment that misses a variable refuses to start below rather than running on the
# development secret key, service token and a locally generated master key. `make run` sets DJANGO_DEBUG=true; the
# test suite and the type checker use percolate_platform.settings_dev, which does the same.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="" if not DEBUG else "dev-only-insecure-key-" + "x" * 40)
if not SECRET_KEY:
    raise environ.ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false (the default; local development: DJANGO_DEBUG=true)"
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "core.api_errors.csrf_failure"  # JSON under /api/, Django's page elsewhere

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "core",
    "accounts",
    "tenants",
    "billing",
    "archival",
    "gateway",
    "backups",
    "overview",
    "moves",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a cookie, a parameter or the body: see core/middleware.py.
    "core.middleware.InputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "core.middleware.ApiCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:  # production serves the admin's collected static files itself; runserver does it locally
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "percolate_platform.urls"
WSGI_APPLICATION = "percolate_platform.wsgi.application"
ASGI_APPLICATION = "percolate_platform.asgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'platform.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default takes the web app, the gateway's lookups and three nodes' state reports at once. WAL lets
    # readers run beside the one writer; a writer waits up to 20 s for the lock instead of failing at once; and it
    # takes the lock when its transaction begins (IMMEDIATE), so a transaction that read first cannot fail with
    # "database is locked" when it comes to write (SQLite does not wait for a lock it would have to upgrade).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
# Connection pooling (docs/decisions.md, "Connection pooling"): Django's psycopg pool in each process, sized per process
# role, so the cluster's connection count is a sum the manifests fix. 0 (the default, and always on SQLite) keeps
# one persistent connection per thread.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
configure_pool(
    DATABASES["default"],
    max_size=DATABASE_POOL_MAX_SIZE,
    min_size=env.int("DATABASE_POOL_MIN_SIZE", default=1),
    timeout=env.float("DATABASE_POOL_TIMEOUT_SECONDS", default=10.0),
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Channels (the overview's WebSocket): channels-redis when Redis is configured, so a nudge reaches every ASGI process;
# the in-memory layer of one process otherwise.
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The overview page polls its snapshot this often (one snapshot per interval however many pages are open); its
# WebSocket is served by the ASGI process (`overview` in the Procfile) on this port of the page's host (0: the page's
# own port, when one ASGI server serves both).
OVERVIEW_REFRESH_SECONDS = env.float("OVERVIEW_REFRESH_SECONDS", default=1.0)
OVERVIEW_WEBSOCKET_PORT = env.int("OVERVIEW_WEBSOCKET_PORT", default=0)

# Object store: a local directory by default, S3 (django-storages + boto3) when S3_ENDPOINT_URL is set.
S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="")
OBJECT_STORE_ROOT = Path(env.str("OBJECT_STORE_ROOT", default=str(VAR_DIR / "objects")))
S3_BUCKET = env.str("S3_BUCKET", default="percolate")
OBJECT_STORE: dict[str, Any]
if S3_ENDPOINT_URL:
    OBJECT_STORE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": S3_ENDPOINT_URL,
            "bucket_name": S3_BUCKET,
            "access_key": env.str("S3_ACCESS_KEY_ID", default="percolate"),
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default="percolate"),
            "region_name": env.str("S3_REGION", default="us-east-1"),
            "file_overwrite": True,
            "default_acl": None,
            "addressing_style": "path",
            "signature_version": "s3v4",
        },
    }
else:
    OBJECT_STORE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(OBJECT_STORE_ROOT)},
    }
# Platform backups (management database dumps): their own bucket in production (versioned, object lock, another
# account's replica), the tenant bucket otherwise; a directory of their own locally.
if S3_ENDPOINT_URL:
    BACKUP_STORE = {
        **OBJECT_STORE,
        "OPTIONS": {**dict(OBJECT_STORE["OPTIONS"]), "bucket_name": env.str("BACKUP_S3_BUCKET", default=S3_BUCKET)},
    }
else:
    BACKUP_STORE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env.str("BACKUP_STORE_ROOT", default=str(VAR_DIR / "backups"))},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "objects": OBJECT_STORE,
    "backups": BACKUP_STORE,
    # Production serves the admin's static files with WhiteNoise from the image (collectstatic at build time).
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

TENANT_DATA_ROOT = Path(env.str("TENANT_DATA_ROOT", default=str(VAR_DIR / "tenant-data")))
# Tier moves (moves/): each tier's data root as the platform's workers see it (unset: TENANT_DATA_ROOT, shared by all
# tiers, and then a move copies nothing), and how long a move waits for a pod's evict or warm answer.
TIER_DATA_ROOTS = {tier: env.str(f"TENANT_DATA_ROOT_{tier}", default="") for tier in ("A", "B", "C")}
MOVE_EVICT_TIMEOUT_SECONDS = env.float("MOVE_EVICT_TIMEOUT_SECONDS", default=10.0)
MOVE_WARM_TIMEOUT_SECONDS = env.float("MOVE_WARM_TIMEOUT_SECONDS", default=30.0)
# An unfinished move untouched this long has lost its worker or its message: the beat sweep enqueues it again.
MOVE_STALLED_AFTER_SECONDS = env.int("MOVE_STALLED_AFTER_SECONDS", default=300)
# Mail to tenants (a completed tier move): the console locally, SMTP (EMAIL_HOST, ...) in production.
_MAIL = "django.core.mail.backends"
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default=f"{_MAIL}.console.EmailBackend" if DEBUG else f"{_MAIL}.smtp.EmailBackend"
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Percolate <no-reply@percolate.local>")

# Celery: Redis as broker when REDIS_URL is set; otherwise kombu's filesystem transport under var/celery, so that the
# embedded default runs a real worker and beat with no server (docs/decisions.md, "Background work locally"). Eager
# mode (tasks run inside the caller) is only for tests that ask for it with CELERY_TASK_ALWAYS_EAGER=true.
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Longer than the longest archive: a message unacknowledged for this long is handed to another worker.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=7200)
}
if not REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS.update(filesystem_broker_options(VAR_DIR / "celery"))
# Where beat keeps its last-run times (a file; one beat process per deployment).
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))
# zstd worker threads for archives (-1: one per core; about 55 MB more memory, about 1.5x the throughput).
ARCHIVE_ZSTD_THREADS = env.int("ARCHIVE_ZSTD_THREADS", default=-1)
ARCHIVE_EVICT_TIMEOUT_SECONDS = env.float("ARCHIVE_EVICT_TIMEOUT_SECONDS", default=10.0)
# The archive drill (beat): how often, and how many archives each run opens and checks in full.
ARCHIVE_DRILL_EVERY_DAYS = env.int("ARCHIVE_DRILL_EVERY_DAYS", default=7)
ARCHIVE_DRILL_SAMPLE = env.int("ARCHIVE_DRILL_SAMPLE", default=20)
# Archive objects superseded by a newer completed archive, and tenants deleted this long ago, are deleted (daily).
ARCHIVE_RETENTION_DAYS = env.int("ARCHIVE_RETENTION_DAYS", default=30)
# Platform backups (docs/runbooks/platform-restore.md): where pg_dump/pg_restore are (empty: PATH), how long backups
# are kept (and how many at least), and the scratch database the weekly restore drill recreates and drops.
PG_BIN_DIR = env.str("PG_BIN_DIR", default="")
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=35)
BACKUP_KEEP_AT_LEAST = env.int("BACKUP_KEEP_AT_LEAST", default=7)
BACKUP_DRILL_DATABASE_URL = env.str("BACKUP_DRILL_DATABASE_URL", default="")
# Or only a database name on the management database's server (needs CREATEDB): what the manifests set.
BACKUP_DRILL_DATABASE = env.str("BACKUP_DRILL_DATABASE", default="")
# Locally beat takes the backups (on PostgreSQL; the SQLite default has nothing to pg_dump); in Kubernetes a CronJob
# does (k8s/platform/backup-cronjob.yaml), so beat must not.
BACKUP_IN_BEAT = env.bool("BACKUP_IN_BEAT", default="postgresql" in DATABASES["default"]["ENGINE"])
# Per-tenant metrics: beat scrapes every tier pod's /metrics this often; rows older than the retention are pruned.
TENANT_METRICS_SCRAPE_SECONDS = env.float("TENANT_METRICS_SCRAPE_SECONDS", default=60.0)
TENANT_METRICS_RETENTION_HOURS = env.int("TENANT_METRICS_RETENTION_HOURS", default=48)
CELERY_BEAT_SCHEDULE = {
    **archival_beat_schedule(drill_every_days=ARCHIVE_DRILL_EVERY_DAYS),
    **BILLING_BEAT_SCHEDULE,
    **MOVES_BEAT_SCHEDULE,
    **backup_beat_schedule(enabled=BACKUP_IN_BEAT),
    **overview_beat_schedule(scrape_seconds=TENANT_METRICS_SCRAPE_SECONDS),
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))

# The one body-size limit: the input guard refuses larger bodies (413) from Content-Length before reading them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)

REST_FRAMEWORK = {
    # Staff endpoints by default; internal endpoints set the service credential as their only scheme
    # (core.api_auth), so each endpoint names the one scheme it accepts in WWW-Authenticate and in the schema.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": ["core.api_parsers.GuardedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api_permissions.HasModelPermission"],
    "DEFAULT_SCHEMA_CLASS": "core.api_schema.ApiAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.api_pagination.KeysetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "core.api_errors.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Percolate Platform API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["core.api_auth.IsStaffUser"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api_schema.add_error_responses",
        "core.api_schema.add_links",
    ],
}

# Shared credential for tier pods and the gateway calling the internal API (Bearer token).
PLATFORM_SERVICE_TOKEN = env.str("PLATFORM_SERVICE_TOKEN", default="dev-service-token" if DEBUG else "")
if not PLATFORM_SERVICE_TOKEN or len(PLATFORM_SERVICE_TOKEN) < 16:
    raise environ.ImproperlyConfigured("PLATFORM_SERVICE_TOKEN must be set (16 characters or more)")

# Per-tenant data keys are stored only wrapped by this key (32 bytes, base64 or hex).
PLATFORM_MASTER_KEY = load_master_key(env.str("PLATFORM_MASTER_KEY", default=""), VAR_DIR, allow_local=DEBUG)
# During a master key rotation: the old key(s), accepted for unwrapping until `rotate_master_key` has re-wrapped every
# tenant key (and for opening platform backups sealed under them). Comma-separated, same encoding.
PLATFORM_MASTER_KEY_PREVIOUS = decode_previous_keys(env.list("PLATFORM_MASTER_KEY_PREVIOUS", default=[]))

# Billing (Stripe). Webhook secrets are a list so a rolled secret and its successor both verify during the roll;
# with none the webhook refuses every delivery, and production refuses to start (fail closed).
# STRIPE_WEBHOOK_SECRET (one or comma-separated, as Kubernetes mounts the sealed secret) adds to the list.
STRIPE_WEBHOOK_SECRETS = [
    s.strip()
    for s in [*env.list("STRIPE_WEBHOOK_SECRETS", default=[]), *env.list("STRIPE_WEBHOOK_SECRET", default=[])]
    if s.strip()
]
LOCAL_STRIPE_WEBHOOK_SECRET_FILE = VAR_DIR / "stripe-webhook-secret"
if DEBUG and not STRIPE_WEBHOOK_SECRETS and LOCAL_STRIPE_WEBHOOK_SECRET_FILE.exists():
    # `make run` only: bootstrap_local writes a random secret here (the webhook still refuses what it does not sign).
    STRIPE_WEBHOOK_SECRETS = [LOCAL_STRIPE_WEBHOOK_SECRET_FILE.read_text().strip()]
if not DEBUG and not STRIPE_WEBHOOK_SECRETS:
    raise environ.ImproperlyConfigured("STRIPE_WEBHOOK_SECRETS must be set when DJANGO_DEBUG is false")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
STRIPE_WEBHOOK_MAX_BYTES = env.int("STRIPE_WEBHOOK_MAX_BYTES", default=128 * 1024)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_API_VERSION = env.str("STRIPE_API_VERSION", default="2026-10-28.endive")  # the shapes stripe 16.1.0 pins
# Stripe price id -> tier; locally three made-up prices so `manage.py stripe_send_test_event` works under `make run`.
_LOCAL_PRICES = {"price_local_a": "A", "price_local_b": "B", "price_local_c": "C"}
STRIPE_PRICE_TIERS: dict[str, str] = env.json("STRIPE_PRICE_TIERS", default=_LOCAL_PRICES if DEBUG else {})
STRIPE_FREE_TIER = env.str("STRIPE_FREE_TIER", default="C")
STRIPE_DUNNING_GRACE_HOURS = env.float("STRIPE_DUNNING_GRACE_HOURS", default=7 * 24.0)
STRIPE_DUNNING_ACTION = env.str("STRIPE_DUNNING_ACTION", default="downgrade")  # or "suspend"
if STRIPE_DUNNING_ACTION not in ("downgrade", "suspend"):
    raise environ.ImproperlyConfigured("STRIPE_DUNNING_ACTION must be 'downgrade' or 'suspend'")
STRIPE_EVENT_MAX_ATTEMPTS = env.int("STRIPE_EVENT_MAX_ATTEMPTS", default=10)
STRIPE_EVENT_STUCK_SECONDS = env.int("STRIPE_EVENT_STUCK_SECONDS", default=300)
# After a move was refused because another one runs, ask again this many seconds later (billing.follow_tier).
STRIPE_TIER_FOLLOW_SECONDS = env.int("STRIPE_TIER_FOLLOW_SECONDS", default=30)

TIER_POLICY = load_tier_policy(env.json("TIER_POLICY_JSON", default={}))
ARCHIVE_COLD_AFTER_DAYS = env.int("ARCHIVE_COLD_AFTER_DAYS", default=60)

# Gateway: tier pods (static list locally, headless Service DNS in Kubernetes), timeouts and limits. A pod listens
# twice: client requests go to its public port, the gateway's own calls (warm, deliver) to its internal port; a
# static entry is `host:port` or `host:port/internal_port` (the local nodes share one host).
# The local nodes are the default only for a tier found by no DNS name: in the cluster a tier starts with no pods
# until its headless Service resolves (so /readyz says "no tier pods" rather than routing to 127.0.0.1).
GATEWAY_TIER_DNS = {tier: env.str(f"GATEWAY_DNS_{tier}", default="") for tier in ("A", "B", "C")}
GATEWAY_TIER_PODS = {
    tier: env.list(f"GATEWAY_PODS_{tier}", default=[] if GATEWAY_TIER_DNS[tier] else [f"127.0.0.1:{port}/{port + 100}"])
    for tier, port in (("A", 8101), ("B", 8102), ("C", 8103))
}
GATEWAY_POD_PORT = env.int("GATEWAY_POD_PORT", default=8000)
GATEWAY_POD_INTERNAL_PORT = env.int("GATEWAY_POD_INTERNAL_PORT", default=8001)
# With Redis, changes reach the gateway by pub/sub at once and the TTL is only a backstop; without it (the embedded
# default) nothing invalidates, so entries live only briefly.
GATEWAY_ROUTE_TTL_SECONDS = env.float("GATEWAY_ROUTE_TTL_SECONDS", default=30.0 if REDIS_URL else 2.0)
GATEWAY_EJECT_SECONDS = env.float("GATEWAY_EJECT_SECONDS", default=10.0)
GATEWAY_CONNECT_TIMEOUT_SECONDS = env.float("GATEWAY_CONNECT_TIMEOUT_SECONDS", default=2.0)
GATEWAY_RESPONSE_HEADER_TIMEOUT_SECONDS = env.float("GATEWAY_RESPONSE_HEADER_TIMEOUT_SECONDS", default=30.0)
GATEWAY_IDLE_TIMEOUT_SECONDS = env.float("GATEWAY_IDLE_TIMEOUT_SECONDS", default=300.0)
# Idle pod connections older than this are not reused: below the pods' own keep-alive timeout (uvicorn: 5 s).
GATEWAY_POOL_KEEPALIVE_SECONDS = env.float("GATEWAY_POOL_KEEPALIVE_SECONDS", default=4.0)
# Proxies whose X-Forwarded-For/-Proto the gateway believes ("*", or addresses and networks); none by default.
GATEWAY_TRUSTED_PROXIES = env.str("GATEWAY_TRUSTED_PROXIES", default="")
# Young-generation threshold of the gateway's garbage collector (Python's default is 700). Higher collects less
# often but pauses longer: 20,000 put 1-2 ms pauses into cold-start answers (docs/decisions.md).
GATEWAY_GC_THRESHOLD = env.int("GATEWAY_GC_THRESHOLD", default=5_000)
GATEWAY_BODY_READ_TIMEOUT_SECONDS = env.float("GATEWAY_BODY_READ_TIMEOUT_SECONDS", default=30.0)
GATEWAY_MAX_BODY_BYTES = env.int("GATEWAY_MAX_BODY_BYTES", default=1024 * 1024)
GATEWAY_MAX_HEADER_BYTES = env.int("GATEWAY_MAX_HEADER_BYTES", default=16 * 1024)
GATEWAY_MAX_HEADER_COUNT = env.int("GATEWAY_MAX_HEADER_COUNT", default=100)
# Edge deadlines (gateway.server.deadlines): the first request's head within this of connecting, a later head
# within this of its first byte, a body within the grace plus a second per GATEWAY_BODY_MIN_BYTES_PER_SECOND bytes.
GATEWAY_FIRST_REQUEST_TIMEOUT_SECONDS = env.float("GATEWAY_FIRST_REQUEST_TIMEOUT_SECONDS", default=10.0)
GATEWAY_HEADER_TIMEOUT_SECONDS = env.float("GATEWAY_HEADER_TIMEOUT_SECONDS", default=10.0)
GATEWAY_BODY_TIMEOUT_SECONDS = env.float("GATEWAY_BODY_TIMEOUT_SECONDS", default=10.0)
GATEWAY_BODY_MIN_BYTES_PER_SECOND = env.float("GATEWAY_BODY_MIN_BYTES_PER_SECOND", default=1024.0)
# Admission control (gateway.limits.admission), per process: new requests get 503 while this many are admitted and
# not yet answering, or, while the event loop runs later than GATEWAY_MAX_LOOP_LAG_SECONDS, the lagging bound.
GATEWAY_MAX_IN_FLIGHT = env.int("GATEWAY_MAX_IN_FLIGHT", default=4096)
GATEWAY_MAX_LOOP_LAG_SECONDS = env.float("GATEWAY_MAX_LOOP_LAG_SECONDS", default=0.1)
GATEWAY_MAX_IN_FLIGHT_LAGGING = env.int("GATEWAY_MAX_IN_FLIGHT_LAGGING", default=1024)
# Cold path: answer a cold tenant from its context blob while its pod warms (docs/decisions.md, "Cold start").
GATEWAY_COLD_PATH_ENABLED = env.bool("GATEWAY_COLD_PATH_ENABLED", default=True)
GATEWAY_BLOB_CACHE_BYTES = env.int("GATEWAY_BLOB_CACHE_BYTES", default=64 * 1024 * 1024)
GATEWAY_WARM_TIMEOUT_SECONDS = env.float("GATEWAY_WARM_TIMEOUT_SECONDS", default=30.0)
GATEWAY_WARM_QUEUE_SIZE = env.int("GATEWAY_WARM_QUEUE_SIZE", default=32)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # TLS ends at the load balancer and the ingress. In the cluster, kubelet (/healthz) and the tier pods (the internal
    # API, through the web Service) call the pods over plain HTTP: a redirect to https:// on that port cannot work.
    # The internal API is reachable only inside the namespace (NetworkPolicy web-ingress) and needs the service token.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^api/internal/"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
