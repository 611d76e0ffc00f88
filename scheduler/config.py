"""Configuration read from the environment (and a ``.env`` file)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from scheduler.channels.sms.base import settings as sms_settings


def _instance_secret(instance_path: Path) -> str:
    """Return the secret key kept in the instance folder, creating it on first use."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def secure_cookies(config: dict[str, object]) -> None:
    """Mark the session cookie ``Secure`` when the site is served over HTTPS (``BASE_URL``)."""
    config["SESSION_COOKIE_SECURE"] = str(config["BASE_URL"]).startswith("https://")


class Config:
    """Settings of a running application, from environment variables."""

    def __init__(self, instance_path: Path) -> None:
        env = os.environ.get
        self.SQLALCHEMY_DATABASE_URI = env("DATABASE_URL") or f"sqlite:///{instance_path / 'scheduler.db'}"
        self.SECRET_KEY = env("SECRET_KEY") or _instance_secret(instance_path)
        #: Fernet keys sealing webhook and robot secrets in the database (the first seals, all
        #: open); empty: a key derived from SECRET_KEY. See scheduler/util/sealed.py.
        self.SECRETS_KEYS = _csv(env("SECRETS_KEYS", ""))
        #: Key of the keyed hashes that stand for phone numbers (opt-outs, verifications, a person's
        #: calendar); empty: derived from SECRET_KEY. Changing it forgets every opt-out.
        self.PHONE_HASH_KEY = env("PHONE_HASH_KEY", "")
        self.BASE_URL = env("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        self.TIMEZONE = env("TIMEZONE", "Asia/Shanghai")
        self.SCHEDULER_MODE = env("SCHEDULER_MODE", "embedded")
        #: Sender threads inside the web process in embedded mode (``flask worker run`` has its own).
        self.SENDER_THREADS = int(env("SENDER_THREADS", "4"))
        #: Seconds a sender's claim on a delivery lasts before another may take it back.
        self.DELIVERY_LEASE_SECONDS = float(env("DELIVERY_LEASE_SECONDS", "60"))
        #: Days finished deliveries stay in the log (0: for ever); purged nightly at 03:30.
        self.DELIVERY_RETENTION_DAYS = int(env("DELIVERY_RETENTION_DAYS", "180"))
        #: Days after an event's end its registrations keep the name and number (0: for ever); then
        #: they are anonymized, nightly at 03:40 (see scheduler/privacy/retention.py).
        self.REGISTRATION_RETENTION_DAYS = int(env("REGISTRATION_RETENTION_DAYS", "365"))
        #: Level of the serving and engine processes' log (scheduler/logs.py): WARNING leaves out the
        #: clock's routine lines; INFO or DEBUG shows them.
        self.LOG_LEVEL = env("LOG_LEVEL", "WARNING").strip().upper()
        self.ADMIN_EMAIL = env("ADMIN_EMAIL", "admin@example.org")
        #: ORGANIZER address of calendar events (a mailbox that answers, ideally).
        self.ORGANIZER_EMAIL = env("ORGANIZER_EMAIL", "noreply@example.org")
        #: Seconds one process may answer feeds from its cache before re-reading the feeds' version.
        self.FEED_VERSION_TTL = float(env("FEED_VERSION_TTL", "1"))
        #: Days past events stay in the public feeds after their last occurrence ends (0: for ever);
        #: the yearly archive feeds keep them.
        self.FEED_PAST_DAYS = int(env("FEED_PAST_DAYS", "400"))
        self.OUTBOUND_ALLOWLIST = _csv(env("OUTBOUND_ALLOWLIST", ""))
        #: Seconds one outgoing request (webhook, robot, SMS provider, calendar import by URL) may take
        #: in all: connecting, sending, headers and body; then it is cut and counts as unanswered.
        self.OUTBOUND_TIMEOUT = float(env("OUTBOUND_TIMEOUT", "10"))
        #: Requests one webhook or robot endpoint gets at once at most (per sender process), so that
        #: a slow endpoint cannot hold every sender thread while other endpoints' messages wait.
        self.OUTBOUND_PER_ENDPOINT = int(env("OUTBOUND_PER_ENDPOINT", "2"))
        self.SMS_PROVIDER = env("SMS_PROVIDER", "console")
        # every provider's own settings (SMS_ALIYUN_*, SMS_TENCENT_*, SMS_HTTP_*, SMS_TIMEOUT)
        for group in sms_settings().values():
            for setting in group:
                if setting.name.startswith("SMS_") and setting.name != "SMS_PROVIDER":
                    setattr(self, setting.name, env(setting.name, setting.default))
        #: The 【签名】 our texts show (the provider's approved signature name).
        self.SMS_SIGN_NAME = env("SMS_SIGN_NAME") or env("SMS_ALIYUN_SIGN_NAME") or env("SMS_TENCENT_SIGN_NAME") or "江门科技"
        #: Texts one number gets per day at most.
        self.SMS_DAILY_CAP = int(env("SMS_DAILY_CAP", "5"))
        #: The secret path part of the providers' reply callback (/api/v1/sms/replies/<token>); empty: off.
        self.SMS_REPLY_TOKEN = env("SMS_REPLY_TOKEN", "")
        self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_REGISTRATIONS = env("RATELIMIT_REGISTRATIONS", "20 per minute;200 per hour")
        #: ``sms``: registering needs a code texted to the number (it proves the number); ``off``: it
        #: does not (anyone may type any number; links still open only their own registration).
        self.REGISTRATION_VERIFY_PHONE = env("REGISTRATION_VERIFY_PHONE", "sms").strip().lower()
        #: Verification codes texted per client address (each number has its own fixed limits too).
        self.RATELIMIT_VERIFICATION = env("RATELIMIT_VERIFICATION", "5 per minute;30 per hour")
        #: Sign-in attempts per address (Flask-Limiter syntax).
        self.RATELIMIT_LOGIN = env("RATELIMIT_LOGIN", "5 per minute;30 per hour")
        #: Calendar import: size cap (bytes), nesting of BEGIN blocks, number of events.
        self.IMPORT_MAX_BYTES = int(env("IMPORT_MAX_BYTES", str(5 * 1024 * 1024)))
        self.IMPORT_MAX_DEPTH = int(env("IMPORT_MAX_DEPTH", "4"))
        self.IMPORT_MAX_EVENTS = int(env("IMPORT_MAX_EVENTS", "5000"))
        #: Seconds reading an imported calendar may take (slow recurrence rules).
        self.IMPORT_MAX_SECONDS = float(env("IMPORT_MAX_SECONDS", "20"))
        #: How far ahead an imported series without an end (RRULE without COUNT or UNTIL) is kept.
        self.IMPORT_OPEN_RULE_DAYS = int(env("IMPORT_OPEN_RULE_DAYS", "365"))
        #: Uploads up to this size are imported while the browser waits; URLs and larger files in the background.
        self.IMPORT_INLINE_BYTES = int(env("IMPORT_INLINE_BYTES", str(256 * 1024)))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        #: How passwords are hashed (werkzeug's methods); the tests use a fast one.
        self.PASSWORD_HASH_METHOD = env("PASSWORD_HASH_METHOD", "scrypt")
        #: Hours a sign-in lasts (the server ends it then, and on signing out).
        self.SESSION_HOURS = float(env("SESSION_HOURS", "12"))
        #: Bearer token Prometheus sends to scrape /metrics; empty: /metrics is off (404).
        self.METRICS_TOKEN = env("METRICS_TOKEN", "")
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        #: ``Secure`` exactly when ``BASE_URL`` is https: set by :func:`secure_cookies`, after any overrides.
        self.SESSION_COOKIE_SECURE = False
        self.JSON_SORT_KEYS = False
        self.MAX_CONTENT_LENGTH = 2 * 1024 * 1024

    def as_dict(self) -> dict[str, object]:
        """Return the settings as a mapping for ``app.config.update``."""
        return {k: v for k, v in vars(self).items() if k.isupper()}


class TestingConfig(Config):
    """Settings for the test suite: its own database, no background scheduler."""

    def __init__(self, instance_path: Path, database_url: str) -> None:
        super().__init__(instance_path)
        self.TESTING = True
        self.SQLALCHEMY_DATABASE_URI = database_url
        self.SECRET_KEY = "test-secret"
        self.SCHEDULER_MODE = "off"
        self.WTF_CSRF_ENABLED = True
        self.RATELIMIT_STORAGE_URI = "memory://"
