"""Contact Sheet settings: one module, driven by environment variables.

A fresh clone runs with no variables set: SQLite and media under ./data, a
development secret key generated once and kept there, the offline renderer.
Production sets DEBUG=0 and everything else through the environment (see the
README's table and docker-compose.yml).
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_limit(name: str, default: str = "") -> int | None:
    """A positive whole number from NAME, or None (no limit) when it is empty.

    Quotas and pool sizes that are 0, negative or not a number would either
    stop a lane for good or mean nothing, so they are refused at start.
    """
    text = os.environ.get(name, default).strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"{name} must be a whole number of at least 1 (or empty for no limit); got {text!r}."
        )
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named by NAME_FILE (docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", "1")

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off.")
    # Development only: generate once and keep it, so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "studio.apps.StudioAdminConfig",  # django.contrib.admin, sign-in throttled
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "studio",
    "generation",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the body (CSRF checking parses forms).
    "studio.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "studio.middleware.HtmxRefusalMiddleware",
    "studio.middleware.ContentSecurityPolicyMiddleware",
    "studio.middleware.OutageMiddleware",
]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"
ASGI_APPLICATION = "studio.asgi.application"

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
                "studio.context_processors.current_team",
            ],
        },
    },
    {
        # Only the hot partials (grid tiles, drawn 150 to a page and 50 to a poll)
        # are Jinja2 templates: the same markup through Django's engine costs
        # several times as much. They are named *.jinja and rendered by tiles.py.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "autoescape": True,
            "auto_reload": DEBUG,
            "trim_blocks": True,
            "lstrip_blocks": True,
        },
    },
]

# Database: SQLite under the data folder unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'studio.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside one writer; IMMEDIATE takes the write lock
    # when a transaction starts, so concurrent writers queue on the busy
    # timeout instead of failing with "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
        ),
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A host that drops off the network mid-transaction leaves its session
    # open on the server, holding its row locks (a team's wallet among them)
    # until TCP gives up on the peer: two hours by default. Every session
    # asks the server to end it after sitting idle inside a transaction
    # (our transactions never wait on anything slow), and to probe a quiet
    # peer every few seconds, so a lost host's locks are freed in seconds.
    idle = env_int("DB_IDLE_IN_TRANSACTION_SECONDS", 30)
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = " ".join(
        f"-c {name}={value}"
        for name, value in {
            "idle_in_transaction_session_timeout": idle * 1000,
            "tcp_keepalives_idle": 10,
            "tcp_keepalives_interval": 5,
            "tcp_keepalives_count": 3,
            "tcp_user_timeout": idle * 1000,
        }.items()
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "signin"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "signin"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at start-up when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
MEDIA_URL = "/media/"  # never served directly: images go through a view that checks the team

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
if os.environ.get("S3_BUCKET"):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["S3_BUCKET"],
            "endpoint_url": os.environ.get("S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("S3_REGION") or None,
            "access_key": env_secret("S3_ACCESS_KEY") or None,
            "secret_key": env_secret("S3_SECRET_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
        },
    }

# Uploads: references may be up to 20 MB; a larger body is refused by its
# Content-Length before it is read (studio.middleware). Everything that is not
# a file (form fields, JSON, webhooks) is far smaller: a prompt is at most
# 10,000 characters. Files above 5 MB are spooled to disk while they arrive.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(2.5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", "0")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Contact Sheet <studio@localhost>")

# Security. Production (DEBUG off) gets secure cookies, HSTS and the rest of
# `check --deploy`; TLS may end at a proxy that sets X-Forwarded-Proto.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", "1")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# Redis is the Celery broker and the shared cache (rate limits, lane state).
# The launcher starts an embedded one and sets REDIS_URL when none is given.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cs",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# Celery: at-least-once delivery. A task is acknowledged after it ran, is
# re-delivered when its worker dies, and each of a worker's threads takes one
# job at a time so a slow render never holds a second job hostage. Lane
# workers run the threads pool, which cannot kill a task: TASK_TIME_LIMIT is
# enforced by each render's own deadline (RENDER_DEADLINE_SECONDS, below).
# The broker's visibility timeout must exceed it or Redis re-delivers jobs
# that are still running.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Threads, not processes: a lane worker spends its time waiting on remote
# models, so it keeps FLASH_IN_FLIGHT / PRO_IN_FLIGHT renders open at once
# (studio/celery.py sizes the pool by the lane it serves). Threads rather
# than gevent: no monkey-patching under Django, psycopg and Pillow, and the
# CPU-bound steps release the GIL inside Pillow.
CELERY_WORKER_POOL = "threads"
CELERY_TASK_TIME_LIMIT = env_int("TASK_TIME_LIMIT", 420)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 180,
    "socket_connect_timeout": 3,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "flash"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events (sent, received, started, succeeded…) go to the broker, so
# Flower or `celery events` can follow the lanes; nothing stores them.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# Generation lanes and providers.
FLASH_PROVIDER = os.environ.get("FLASH_PROVIDER", "offline")
PRO_PROVIDER = os.environ.get("PRO_PROVIDER", "offline")
FLASH_MODEL = os.environ.get("FLASH_MODEL", "gemini-nano-banana-2.1")
PRO_MODEL = os.environ.get("PRO_MODEL", "gemini-3-pro-image")
# What team owners may route their tiers to, as tier:provider:model entries;
# empty offers each tier's default above and the offline renderer.
BACKEND_CHOICES = env_list("BACKEND_CHOICES", "")
GEMINI_API_KEY = env_secret("GEMINI_API_KEY")
GEMINI_API_BASE = os.environ.get(
    "GEMINI_API_BASE", "https://generativelanguage.googleapis.com"
).rstrip("/")
OPENAI_API_KEY = env_secret("OPENAI_API_KEY")
OPENAI_API_BASE = os.environ.get("OPENAI_API_BASE", "https://api.openai.com").rstrip("/")
# gpt-image quality per tier: low | medium | high | auto, and xhigh | max on 2.5 models.
# Drafts are cheap, heroes are not.
OPENAI_FLASH_QUALITY = os.environ.get("OPENAI_FLASH_QUALITY", "low")
OPENAI_PRO_QUALITY = os.environ.get("OPENAI_PRO_QUALITY", "high")
# A studio's own ComfyUI servers and the API-format workflow each tier runs.
# Each lane has its own servers, so a draft never queues behind a Pro render;
# COMFYUI_URL alone (the older setting) serves both lanes from one server.
COMFYUI_URL = os.environ.get("COMFYUI_URL", "http://127.0.0.1:8188").rstrip("/")
COMFYUI_FLASH_URLS = env_list("COMFYUI_FLASH_URLS", COMFYUI_URL)
COMFYUI_PRO_URLS = env_list("COMFYUI_PRO_URLS", COMFYUI_URL)
# Prompts in flight per server across all workers (one GPU runs one at a time).
COMFYUI_SERVER_SLOTS = env_int("COMFYUI_SERVER_SLOTS", 1)
# How long a render waits for an unreachable server (a restart, a reboot)
# before it fails. Keep it below RENDER_DEADLINE_SECONDS.
COMFYUI_OUTAGE_MINUTES = float(os.environ.get("COMFYUI_OUTAGE_MINUTES", "5"))
# Keep a copy of every render in ComfyUI's output folder (normally they go to
# its temp folder, which ComfyUI empties each time it starts).
COMFYUI_KEEP_OUTPUTS = env_bool("COMFYUI_KEEP_OUTPUTS", "false")
COMFYUI_FLASH_WORKFLOW = os.environ.get(
    "COMFYUI_FLASH_WORKFLOW", str(BASE_DIR / "generation/providers/comfyui_workflows/draft.json")
)
COMFYUI_PRO_WORKFLOW = os.environ.get(
    "COMFYUI_PRO_WORKFLOW", str(BASE_DIR / "generation/providers/comfyui_workflows/quality.json")
)
# The inpainting template region edits (a painted mask) run on, for both lanes;
# empty means ComfyUI takes no mask and masked edits on it are refused.
COMFYUI_INPAINT_WORKFLOW = os.environ.get(
    "COMFYUI_INPAINT_WORKFLOW",
    str(BASE_DIR / "generation/providers/comfyui_workflows/inpaint.json"),
)
# The img2img template other edits and variations run on, for both lanes;
# empty means ComfyUI renders them from their words alone, without the image.
COMFYUI_IMG2IMG_WORKFLOW = os.environ.get(
    "COMFYUI_IMG2IMG_WORKFLOW",
    str(BASE_DIR / "generation/providers/comfyui_workflows/img2img.json"),
)
COMFYUI_POLL_SECONDS = float(os.environ.get("COMFYUI_POLL_SECONDS", "1"))
# Extra seconds the offline renderer waits per image, to behave like the real models.
OFFLINE_FLASH_LATENCY = float(os.environ.get("OFFLINE_FLASH_LATENCY", "0"))
OFFLINE_PRO_LATENCY = float(os.environ.get("OFFLINE_PRO_LATENCY", "0"))
FLASH_MAX_COUNT = env_int("FLASH_MAX_COUNT", 50)
PRO_MAX_COUNT = env_int("PRO_MAX_COUNT", 8)
# Edits in a row on one image: each turn resends the whole conversation, so
# a long chain grows slow and expensive and drifts from the subject.
EDIT_CHAIN_MAX_TURNS = env_int("EDIT_CHAIN_MAX_TURNS", 8)
LANE_MEMBER_OUTSTANDING_CAP = env_int("LANE_MEMBER_OUTSTANDING_CAP", 200)
# Most images one permutation prompt or campaign CSV may expand into.
PERMUTATIONS_MAX = env_int("PERMUTATIONS_MAX", 2000)
# The batch lane: images sent to the provider's batch endpoint, priced at
# this percentage of the list price, collected by the scheduler.
BATCH_PRICE_PERCENT = env_int("BATCH_PRICE_PERCENT", 50)
BATCH_LANE_POLL_SECONDS = env_int("BATCH_LANE_POLL_SECONDS", 30)
# How long the offline renderer's batch mode takes before its results are ready.
OFFLINE_BATCH_DELAY = float(os.environ.get("OFFLINE_BATCH_DELAY", "5"))
GENERATION_MAX_ATTEMPTS = env_int("GENERATION_MAX_ATTEMPTS", 4)
GENERATION_RETRY_BASE_SECONDS = float(os.environ.get("GENERATION_RETRY_BASE_SECONDS", "2"))
GENERATION_LEASE_SECONDS = env_int("GENERATION_LEASE_SECONDS", CELERY_TASK_TIME_LIMIT + 30)

# Renders in flight per lane worker (its threads). A render is mostly waiting
# on a remote model, so this is not bounded by the cores; the CPU-bound steps
# (decoding, thumbnails, the offline renderer's drawing) share
# RENDER_CPU_SLOTS per worker process, which also bounds full-size decodes in
# memory.
FLASH_IN_FLIGHT = env_limit("FLASH_IN_FLIGHT", "50")
PRO_IN_FLIGHT = env_limit("PRO_IN_FLIGHT", "16")
RENDER_CPU_SLOTS = env_limit("RENDER_CPU_SLOTS", str(os.cpu_count() or 2))
# Every render ends (succeeded, or failed/retried and released) within this.
RENDER_DEADLINE_SECONDS = env_limit("RENDER_DEADLINE_SECONDS", str(CELERY_TASK_TIME_LIMIT - 60))
# Provider quotas, per credential (an API key, a ComfyUI server list), shared
# by every worker on every host through Redis. Empty means no limit of ours.
PROVIDER_QUOTAS = {
    "gemini": {
        "in_flight": env_limit("GEMINI_MAX_IN_FLIGHT"),
        "requests_per_minute": env_limit("GEMINI_REQUESTS_PER_MINUTE"),
        "images_per_minute": env_limit("GEMINI_IMAGES_PER_MINUTE"),
    },
    "openai": {
        "in_flight": env_limit("OPENAI_MAX_IN_FLIGHT"),
        "requests_per_minute": env_limit("OPENAI_REQUESTS_PER_MINUTE"),
        "images_per_minute": env_limit("OPENAI_IMAGES_PER_MINUTE"),
    },
    "comfyui": {
        "in_flight": env_limit("COMFYUI_MAX_IN_FLIGHT"),
        "requests_per_minute": env_limit("COMFYUI_REQUESTS_PER_MINUTE"),
        "images_per_minute": env_limit("COMFYUI_IMAGES_PER_MINUTE"),
    },
    "offline": {
        "in_flight": env_limit("OFFLINE_MAX_IN_FLIGHT"),
        "requests_per_minute": env_limit("OFFLINE_REQUESTS_PER_MINUTE"),
        "images_per_minute": env_limit("OFFLINE_IMAGES_PER_MINUTE"),
    },
}

# Billing.
TOP_UP_CEILING = env_int("TOP_UP_CEILING", 10_000_000)
STRIPE_SECRET_KEY = env_secret("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_secret("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
# New wallets warn owners and admins below this many credits (editable per team).
LOW_BALANCE_THRESHOLD = env_int("LOW_BALANCE_THRESHOLD", 5_000)

# Throttles (per minute).
SIGNIN_ATTEMPTS_PER_MINUTE = env_int("SIGNIN_ATTEMPTS_PER_MINUTE", 5)
# Reverse proxies in front of the web server that append to X-Forwarded-For.
# 0 trusts no header and keys limits on the connecting address; behind one
# proxy that address is the proxy's, shared by every visitor.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
SUBMITS_PER_MINUTE = env_int("SUBMITS_PER_MINUTE", 30)

INVITE_VALID_DAYS = env_int("INVITE_VALID_DAYS", 7)

# The operator's metrics (studio/metrics.py): /metrics answers only with
# "Authorization: Bearer <METRICS_TOKEN>", and not at all when it is empty.
METRICS_TOKEN = env_secret("METRICS_TOKEN")

# plain: "LEVEL logger: message"; json: one object per line, with the batch,
# generation, team and provider on every line logged during a render.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json; got {LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "filters": {"expected_refusals": {"()": "studio.log_filters.ExpectedRefusalFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own default config gives `django` a second console handler
        # (under DEBUG), so every line it logged was printed twice: route it to
        # ours alone.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {"filters": ["expected_refusals"]},
        "django.db.backends": {"level": "WARNING"},
    },
}
# The console's format, and the render a line belongs to (studio/logs.py).
LOGGING["formatters"]["json"] = {"()": "studio.logs.JsonLines"}
LOGGING.setdefault("filters", {})["render_context"] = {"()": "studio.logs.RenderContext"}
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT
LOGGING["handlers"]["console"].setdefault("filters", []).append("render_context")
if LOG_FORMAT == "json":
    # gunicorn gives its error and access logs handlers of its own; its
    # workers send them through ours instead, so they are JSON lines too
    # (the master's few start-up lines stay plain).
    for name in ("gunicorn.error", "gunicorn.access"):
        LOGGING["loggers"][name] = {"handlers": ["console"], "propagate": False}
