"""Prefloop settings: every knob comes from an environment variable with a working default.

With no environment at all the site runs on a SQLite file and an embedded (filesystem) Celery
broker under ./var, which is what the README's demo command relies on. Production sets
DATABASE_URL, REDIS_URL, SECRET_KEY and ALLOWED_HOSTS (see docker-compose.yml).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_map, env_str
from config.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PREFLOOP_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# The fallback key only suits a laptop demo; `check --deploy` flags it, and production sets
# SECRET_KEY (or SECRET_KEY_FILE).
DEMO_SECRET_KEY = "insecure-demo-key-change-me"  # noqa: S105  (the documented demo key)
SECRET_KEY = env_str("SECRET_KEY", DEMO_SECRET_KEY)

# PREFLOOP_ENV=production turns every HTTPS protection on by default (each setting below can
# still be set on its own) and refuses to start with DEBUG on or a weak SECRET_KEY, so a
# forgotten variable fails loudly at start-up instead of running an open site.
PREFLOOP_ENV = env_str("PREFLOOP_ENV", "development")
if PREFLOOP_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"PREFLOOP_ENV must be development or production, not {PREFLOOP_ENV!r}")
PRODUCTION = PREFLOOP_ENV == "production"
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be False when PREFLOOP_ENV=production")
    # Django's own bar for a key (security.W009): at least 50 characters, 5 distinct ones.
    if SECRET_KEY == DEMO_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "PREFLOOP_ENV=production needs SECRET_KEY (or SECRET_KEY_FILE) set to a random value "
            "of at least 50 characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

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
    # Swagger UI's files from a package, so /api/docs/ loads nothing from another host.
    "drf_spectacular_sidecar",
    "django_htmx",
    "prefs",
    "tuning",
]

MIDDLEWARE = [
    # First, so every later layer (and its log lines) sees the request id, and the metrics
    # time the whole answer.
    "config.middleware.RequestIdMiddleware",
    "config.metrics.MetricsMiddleware",
    # Before anything reads a body: oversized ones get 413 unread (config/limits.py).
    "config.limits.BodySizeLimitMiddleware",
    # A lost database connection answers 503 with Retry-After (config/resilience.py).
    "config.resilience.DatabaseUnavailableMiddleware",
    # Only our own script files run in the browser (config/headers.py).
    "config.headers.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A login refused for too many failures answers 429 with Retry-After (prefs/login_throttle.py).
    "prefs.login_throttle.LoginThrottleMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

# Database: a SQLite file by default, PostgreSQL (or anything dj-database-url knows) when set.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE transactions take SQLite's write lock at BEGIN, so the check-then-claim in
    # assignment cannot interleave with another writer; WAL lets the web process read while
    # the worker writes progress.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that skips the round trip while the connection's
    # socket is quiet (config/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    # The review path's few statements are prepared once per connection (prefs/sql.py); the
    # ORM's client-side cursors never prepare, whatever this says. Set it false behind a
    # pooler in transaction mode that cannot keep prepared statements (PgBouncer < 1.21).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        2**31 - 1 if env_bool("DATABASE_PREPARED_STATEMENTS", True) else None
    )
if env_str("TEST_DATABASE_NAME"):
    # Lets several test runs share one PostgreSQL server without dropping each other's database.
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not SQLite's shared-cache memory database: concurrency tests open one connection
    # per thread, and worker processes started by tests must see the same data. The pid keeps
    # simultaneous test runs apart.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's four checks; they run in the admin's forms, the account page's password change and
# `create_user` (whose --force skips them for a known demo password).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Checks nothing: Django tells it about every password change, and it revokes the API tokens.
    {"NAME": "prefs.passwords.RevokeTokensOnPasswordChange"},
]
# The throttle comes first: it authenticates nobody, but refuses a name or account with too many
# failed log-ins before ModelBackend checks the password, on every login form (prefs/login_throttle.py).
AUTHENTICATION_BACKENDS = [
    "prefs.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Serving straight from the finders keeps the demo free of a collectstatic step; WhiteNoise
# still expects STATIC_ROOT to exist. Production images run collectstatic at build time and set
# STATIC_MANIFEST=True: hashed, compressed files served with far-future cache headers.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", False)
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Artifacts (adapters, exports) go through Django's storage API: a local folder by default, an
# S3-compatible bucket (AWS, MinIO, Ceph, R2 ...) with STORAGE_BACKEND=s3, so web and workers on
# several hosts see the same files. Credentials may also come from boto3's own chain (an
# instance role) when AWS_ACCESS_KEY_ID is left unset.
STORAGE_BACKEND = env_str("STORAGE_BACKEND", "local")
if STORAGE_BACKEND == "local":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif STORAGE_BACKEND == "s3":
    if not env_str("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME")
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            # A prefix inside the bucket, so one bucket can serve several installations.
            "location": env_str("AWS_LOCATION", ""),
            # Private objects; downloads go through the app (which checks who asks).
            "default_acl": None,
            "querystring_auth": True,
            # Adapter folders get unique names; never silently replace an object.
            "file_overwrite": False,
        },
    }
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be local or s3, not {STORAGE_BACKEND!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Redis serves as broker and cache in production; without it the demo uses Kombu's filesystem
# transport under var/broker, so one command still runs web and worker.
REDIS_URL = env_str("REDIS_URL", "")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_DIR = Path(env_str("CELERY_BROKER_DIR", str(VAR_DIR / "broker")))
CELERY_TASK_ALWAYS_EAGER = False

# Where dequantised base models are cached as safetensors (keyed by the source's hash).
PREFLOOP_MODEL_CACHE = Path(env_str("PREFLOOP_MODEL_CACHE", str(VAR_DIR / "models")))
# Largest import file accepted, in bytes.
PREFLOOP_IMPORT_MAX_BYTES = env_int("PREFLOOP_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
# Failed log-ins allowed per username (and per account) and client address within the window
# (seconds) before every login form answers 429 (prefs/login_throttle.py).
PREFLOOP_LOGIN_ATTEMPTS = env_int("PREFLOOP_LOGIN_ATTEMPTS", 5)
PREFLOOP_LOGIN_WINDOW_S = env_int("PREFLOOP_LOGIN_WINDOW_S", 15 * 60)

# Tuning jobs (tuning.services.jobs). A running job's worker writes a heartbeat every
# HEARTBEAT_S seconds; a job without one for STALE_S seconds lost its worker and is retried
# (from its last checkpoint) or failed. The worker's dispatcher resends, every DISPATCH_S
# seconds, queued jobs the broker never got, and after REDISPATCH_S (doubling each time) those
# it got but nobody claimed. Progress goes to the database at most every PROGRESS_FLUSH_MS.
PREFLOOP_JOB_HEARTBEAT_S = env_int("PREFLOOP_JOB_HEARTBEAT_S", 10)
PREFLOOP_JOB_STALE_S = env_int("PREFLOOP_JOB_STALE_S", 120)
PREFLOOP_JOB_DISPATCH_S = env_int("PREFLOOP_JOB_DISPATCH_S", 15)
PREFLOOP_JOB_REDISPATCH_S = env_int("PREFLOOP_JOB_REDISPATCH_S", 600)
PREFLOOP_JOB_PROGRESS_FLUSH_MS = env_int("PREFLOOP_JOB_PROGRESS_FLUSH_MS", 1000)
PREFLOOP_JOB_TIME_LIMIT_S = env_int("PREFLOOP_JOB_TIME_LIMIT_S", 48 * 3600)
PREFLOOP_JOB_MAX_ATTEMPTS = env_int("PREFLOOP_JOB_MAX_ATTEMPTS", 2)
# Scratch space of running jobs (staging outputs, checkpoints); workers on several hosts that
# should resume each other's checkpoints need it on shared storage.
PREFLOOP_JOB_DIR = Path(env_str("PREFLOOP_JOB_DIR", str(VAR_DIR / "jobs")))
# Which Celery queue a job goes to, by its base model's name ("Qwen2.5-7B=gpu-80g,..."); a
# base model not listed goes to `gpu`. Workers with big cards consume the big queues
# (`celery -A workers worker -Q gpu-80g`), see docs/deploy.md.
PREFLOOP_JOB_QUEUES = env_map("PREFLOOP_JOB_QUEUES", {})
# How a worker trains DPO (tuning.services.launcher). TRAIN_PROCESSES > 1: the job runs
# `python -m tuning.engine dpo --processes N` as a child, one rank per card of this host
# (data parallel; the CPU without CUDA). TRAIN_DEVICE: empty = the engine's choice (cuda if
# present), "auto" = one model spread over all of this host's cards, or cpu, cuda:1 ...
PREFLOOP_TRAIN_PROCESSES = env_int("PREFLOOP_TRAIN_PROCESSES", 1)
PREFLOOP_TRAIN_DEVICE = env_str("PREFLOOP_TRAIN_DEVICE", "")
if PREFLOOP_TRAIN_PROCESSES < 1:
    raise ImproperlyConfigured(f"PREFLOOP_TRAIN_PROCESSES must be 1 or more, not {PREFLOOP_TRAIN_PROCESSES}")
if PREFLOOP_TRAIN_PROCESSES > 1 and PREFLOOP_TRAIN_DEVICE == "auto":
    raise ImproperlyConfigured(
        "PREFLOOP_TRAIN_DEVICE=auto spreads one model over all cards; it cannot be combined with "
        "PREFLOOP_TRAIN_PROCESSES > 1 (each process takes a card of its own)"
    )

# /metrics (config/metrics.py): with a token, only `Authorization: Bearer <token>` may read it;
# without one, only this machine. gunicorn's processes share their counters through files in
# PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself; named here so it is documented).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "prefs.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "prefs.api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/min"),
        "user": env_str("API_THROTTLE_USER", "6000/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Prefloop API",
    "DESCRIPTION": "Blind preference collection, preference sets, and tuning jobs.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from drf-spectacular-sidecar's static files, not a CDN: the docs page runs on our
    # origin, under the same Content-Security-Policy as every page (config/headers.py).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL and env_bool("CACHE_USE_REDIS", True)
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Keeps deployments (or test runs) that share one Redis apart: throttle counters and the like.
CACHES["default"]["KEY_PREFIX"] = env_str("CACHE_KEY_PREFIX", "prefloop")

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Health probes come from inside the network over plain HTTP; a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
# One year of HSTS in production (seconds).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
# Production runs behind a TLS-terminating proxy that sets X-Forwarded-Proto (and must strip
# a client's own); without this the SSL redirect would loop.
if env_bool("USE_X_FORWARDED_PROTO", PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy on every page but the API docs (config/headers.py).
PREFLOOP_CSP = env_bool("PREFLOOP_CSP", True)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# LOG_FORMAT=json: one JSON object per line with request and job ids (config/logging.py), for
# a log shipper; plain: readable lines, the ids in brackets.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))
