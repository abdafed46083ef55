"""keybin's configuration: read once from the environment into one frozen object."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite://./keybin.sqlite3"
SECRET_KEY_FILE = "keybin.secret"


class ConfigurationError(Exception):
    """The environment asks for something keybin refuses to run with."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def sqlite_path(database_url: str) -> str | None:
    """The database file of a sqlite:// URL; None for PostgreSQL or an in-memory database."""
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:8000"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "keybin@localhost"
    sms_backend: str = "console"
    sms_http_url: str = ""
    device_limit: int = 5
    max_grant_days: int = 30
    rate_limit_per_minute: int = 300
    # Per login, phone number, email or account, whatever address the attempts come from.
    rate_limit_per_account_per_minute: int = 20
    # Peers whose X-Forwarded-For names the client (addresses or networks); none by default.
    trusted_proxies: tuple[str, ...] = ()
    env: str = "development"
    # Outbox dispatcher pacing; tests shorten these.
    outbox_poll_seconds: float = 1.0
    outbox_backoff_base: float = 2.0
    outbox_backoff_max: float = 300.0
    # How long a dispatcher owns a row it is sending; after a crash mid-send the
    # row waits this long before another dispatcher takes it (longer than a send).
    outbox_claim_seconds: float = 60.0
    # The longest one delivery may take, whatever the provider does (then it is retried).
    outbox_deadline_seconds: float = 30.0
    # Deliveries at once in each channel's lane.
    outbox_email_concurrency: int = 4
    outbox_sms_concurrency: int = 4
    outbox_push_concurrency: int = 16
    # Provider timeouts: a relay or gateway that accepts and never answers costs this much.
    smtp_connect_timeout: float = 10.0  # the TCP connection and the relay's greeting
    smtp_timeout: float = 15.0  # each SMTP command
    sms_connect_timeout: float = 5.0
    sms_read_timeout: float = 10.0
    push_connect_timeout: float = 5.0  # FCM and APNs (TLS handshake included)
    push_read_timeout: float = 10.0
    keybin_data_dir: str = ""
    # Repeated queries answered from memory while the database is unchanged
    # (schema/fast/answer_cache.py). Off by default: under steady writes (any commit drops
    # every kept answer) it was hit about once in a thousand reads (bench/cases/traffic.py).
    answer_cache: bool = False
    # The bearer token a scraper sends for /metrics; without it /metrics does not exist.
    metrics_token: str = ""
    # Persisted documents (schema/persisted/). A manifest of trusted documents (id -> text,
    # as graphql-codegen, Relay or Apollo write it): checked and planned at start-up, and in
    # production the only documents answered. Apollo's automatic persisted queries: texts
    # registered by their SHA-256, kept per process in an LRU bounded by count and bytes.
    trusted_documents: str = ""
    apq: bool = True
    apq_max_documents: int = 1000
    apq_max_bytes: int = 4 * 1024 * 1024
    # Push to closed apps: Firebase Cloud Messaging (HTTP v1) and Apple's APNs.
    fcm_project_id: str = ""
    fcm_service_account_file: str = ""
    fcm_base_url: str = "https://fcm.googleapis.com"
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    apns_base_url: str = "https://api.push.apple.com"  # sandbox: https://api.sandbox.push.apple.com
    # Extra CA bundle to trust for APNs (a test server's self-signed certificate).
    apns_ca_file: str = ""
    # Getting the app: the store pages an invitation links to, and the apps allowed to open
    # keybin's links (iOS universal links: "TEAMID.bundle.id"; Android app links: the
    # package and its signing certificates' SHA-256 fingerprints).
    app_store_url: str = ""
    play_store_url: str = ""
    apple_app_ids: tuple[str, ...] = ()
    android_package: str = ""
    android_cert_sha256: tuple[str, ...] = ()
    # Staff sign-in through the company's OpenID Connect provider (console/oidc.py); off
    # without an issuer. The role claim, when named, decides each member's role at every
    # sign-in: a value among the SYSADMIN values makes a SYSADMIN, else one among the SUPPORT
    # values a SUPPORT member; without it only existing staff sign in, with their own role.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_name: str = "company sign-in"
    oidc_scopes: str = "openid email profile"
    oidc_role_claim: str = ""
    oidc_sysadmin_values: tuple[str, ...] = ("SYSADMIN",)
    oidc_support_values: tuple[str, ...] = ("SUPPORT",)
    # Billing of agents' key subscriptions through Stripe (resolvers/billing.py); off unless
    # both Stripe secrets and a price are set. The secret key is the API key (sk_...), the
    # webhook secret the signing secret of the /webhooks/stripe endpoint (whsec_...).
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    # Where the Stripe library sends its API calls: Stripe itself, or a loopback server in tests.
    stripe_api_base: str = "https://api.stripe.com"
    # The monthly price in cents per association (the roster's OriginatingSystemName); "*"
    # prices every association not named. An agent whose association has none is not billed.
    billing_prices: tuple[tuple[str, int], ...] = ()
    billing_currency: str = "usd"
    # Days an unpaid bill may stay past its due date before the account is PAST_DUE.
    billing_grace_days: int = 7
    # Days before the due date a bill is issued and its reminder sent.
    billing_reminder_days: int = 5
    # Seconds between two rounds of billing's periodic work (bills, reminders, PAST_DUE).
    billing_round_seconds: float = 60.0

    @property
    def billing_configured(self) -> bool:
        return bool(self.stripe_secret_key and self.stripe_webhook_secret and self.billing_prices)

    def monthly_price(self, association: str) -> int | None:
        """The association's monthly price in cents, else the "*" price, else None."""
        prices = dict(self.billing_prices)
        return prices.get(association, prices.get("*"))

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def fcm_configured(self) -> bool:
        return bool(self.fcm_project_id and self.fcm_service_account_file)

    @property
    def apns_configured(self) -> bool:
        return bool(
            self.apns_key_file and self.apns_key_id and self.apns_team_id and self.apns_topic
        )

    @property
    def push_configured(self) -> bool:
        return self.fcm_configured or self.apns_configured

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def data_dir(self) -> Path:
        """Where generated secrets live: KEYBIN_DATA_DIR, else beside a SQLite database,
        else the working directory."""
        if self.keybin_data_dir:
            return Path(self.keybin_data_dir).expanduser().resolve()
        path = sqlite_path(self.database_url)
        if path is not None:
            return Path(path).expanduser().resolve().parent
        return Path(".").resolve()

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the environment, then fill and check the secrets."""
    env = os.environ if environ is None else environ
    get = env.get
    settings = Settings(
        database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL),
        secret_key=get("SECRET_KEY", ""),
        public_url=get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        smtp_host=get("SMTP_HOST", ""),
        smtp_port=int(get("SMTP_PORT", "25")),
        smtp_username=get("SMTP_USERNAME", ""),
        smtp_password=get("SMTP_PASSWORD", ""),
        smtp_starttls=_bool(get("SMTP_STARTTLS", "false")),
        mail_from=get("MAIL_FROM", "keybin@localhost"),
        sms_backend=get("SMS_BACKEND", "console"),
        sms_http_url=get("SMS_HTTP_URL", ""),
        device_limit=int(get("DEVICE_LIMIT", "5")),
        max_grant_days=int(get("MAX_GRANT_DAYS", "30")),
        rate_limit_per_minute=int(get("RATE_LIMIT_PER_MINUTE", "300")),
        rate_limit_per_account_per_minute=int(get("RATE_LIMIT_PER_ACCOUNT_PER_MINUTE", "20")),
        trusted_proxies=parse_trusted_proxies(get("TRUSTED_PROXIES", "")),
        env=get("KEYBIN_ENV", "development"),
        outbox_claim_seconds=float(get("KEYBIN_OUTBOX_CLAIM_SECONDS", "60")),
        outbox_deadline_seconds=float(get("KEYBIN_OUTBOX_DEADLINE_SECONDS", "30")),
        outbox_email_concurrency=int(get("KEYBIN_OUTBOX_EMAIL_CONCURRENCY", "4")),
        outbox_sms_concurrency=int(get("KEYBIN_OUTBOX_SMS_CONCURRENCY", "4")),
        outbox_push_concurrency=int(get("KEYBIN_OUTBOX_PUSH_CONCURRENCY", "16")),
        smtp_connect_timeout=float(get("SMTP_CONNECT_TIMEOUT", "10")),
        smtp_timeout=float(get("SMTP_TIMEOUT", "15")),
        sms_connect_timeout=float(get("SMS_CONNECT_TIMEOUT", "5")),
        sms_read_timeout=float(get("SMS_READ_TIMEOUT", "10")),
        push_connect_timeout=float(get("PUSH_CONNECT_TIMEOUT", "5")),
        push_read_timeout=float(get("PUSH_READ_TIMEOUT", "10")),
        keybin_data_dir=get("KEYBIN_DATA_DIR", ""),
        answer_cache=_bool(get("KEYBIN_ANSWER_CACHE", "off")),
        metrics_token=get("METRICS_TOKEN", ""),
        trusted_documents=get("TRUSTED_DOCUMENTS", "").strip(),
        apq=_bool(get("KEYBIN_APQ", "on")),
        apq_max_documents=int(get("KEYBIN_APQ_MAX_DOCUMENTS", "1000")),
        apq_max_bytes=int(get("KEYBIN_APQ_MAX_BYTES", str(4 * 1024 * 1024))),
        fcm_project_id=get("FCM_PROJECT_ID", ""),
        fcm_service_account_file=get("FCM_SERVICE_ACCOUNT_FILE", ""),
        fcm_base_url=get("FCM_BASE_URL", "https://fcm.googleapis.com").rstrip("/"),
        apns_key_file=get("APNS_KEY_FILE", ""),
        apns_key_id=get("APNS_KEY_ID", ""),
        apns_team_id=get("APNS_TEAM_ID", ""),
        apns_topic=get("APNS_TOPIC", ""),
        apns_base_url=get("APNS_BASE_URL", "https://api.push.apple.com").rstrip("/"),
        apns_ca_file=get("APNS_CA_FILE", ""),
        app_store_url=get("APP_STORE_URL", "").strip(),
        play_store_url=get("PLAY_STORE_URL", "").strip(),
        apple_app_ids=_items(get("APPLE_APP_IDS", "")),
        android_package=get("ANDROID_PACKAGE", "").strip(),
        android_cert_sha256=tuple(f.upper() for f in _items(get("ANDROID_CERT_SHA256", ""))),
        oidc_issuer=get("OIDC_ISSUER", "").strip(),
        oidc_client_id=get("OIDC_CLIENT_ID", "").strip(),
        oidc_client_secret=get("OIDC_CLIENT_SECRET", ""),
        oidc_name=get("OIDC_NAME", "").strip() or "company sign-in",
        oidc_scopes=" ".join(get("OIDC_SCOPES", "openid email profile").split()),
        oidc_role_claim=get("OIDC_ROLE_CLAIM", "").strip(),
        oidc_sysadmin_values=_items(get("OIDC_SYSADMIN_VALUES", "SYSADMIN")),
        oidc_support_values=_items(get("OIDC_SUPPORT_VALUES", "SUPPORT")),
        stripe_secret_key=get("STRIPE_SECRET_KEY", "").strip(),
        stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET", "").strip(),
        stripe_api_base=get("STRIPE_API_BASE", "https://api.stripe.com").strip().rstrip("/"),
        billing_prices=parse_prices(get("BILLING_PRICES", "")),
        billing_currency=get("BILLING_CURRENCY", "usd").strip().lower(),
        billing_grace_days=int(get("BILLING_GRACE_DAYS", "7")),
        billing_reminder_days=int(get("BILLING_REMINDER_DAYS", "5")),
        billing_round_seconds=float(get("BILLING_ROUND_SECONDS", "60")),
    )
    return finalize(settings)


def _items(value: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def parse_prices(value: str) -> tuple[tuple[str, int], ...]:
    """`Association=cents` pairs separated by semicolons ("*=2500;Dayton REALTORS=2200"):
    association names hold commas and spaces, never a semicolon or an equals sign."""
    prices: dict[str, int] = {}
    for item in (part.strip() for part in value.split(";")):
        if not item:
            continue
        association, equals, amount = (piece.strip() for piece in item.rpartition("="))
        whole = amount.isascii() and amount.isdigit()  # isdigit() alone also takes "²"
        if not equals or not association or not whole or int(amount) <= 0:
            raise ConfigurationError(
                f"BILLING_PRICES: {item!r} is not Association=cents (a whole number above 0)"
            )
        if association in prices:
            raise ConfigurationError(f"BILLING_PRICES: {association!r} is priced twice")
        prices[association] = int(amount)
    return tuple(prices.items())


def parse_trusted_proxies(value: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks, each written the one way uvicorn reads it.

    Anything else is refused: uvicorn would take it as a literal host name that never
    matches, and the operator would believe the proxy trusted."""
    trusted: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            if "/" in item:
                trusted.append(str(ipaddress.ip_network(item, strict=False)))
            else:
                trusted.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ConfigurationError(
                f"TRUSTED_PROXIES: {item!r} is not an IP address or network"
            ) from None
    return tuple(trusted)


def finalize(settings: Settings) -> Settings:
    """Check the settings and supply a kept SECRET_KEY where none was given."""
    if settings.sms_backend not in {"console", "http"}:
        raise ConfigurationError("SMS_BACKEND must be 'console' or 'http'")
    if settings.sms_backend == "http" and not settings.sms_http_url:
        raise ConfigurationError("SMS_BACKEND=http needs SMS_HTTP_URL")
    _check_push(settings)
    _check_app_links(settings)
    _check_outbox(settings)
    _check_oidc(settings)
    _check_billing(settings)
    if settings.apq_max_documents <= 0 or settings.apq_max_bytes <= 0:
        raise ConfigurationError(
            "KEYBIN_APQ_MAX_DOCUMENTS and KEYBIN_APQ_MAX_BYTES must be more than 0"
        )
    if settings.metrics_token and len(settings.metrics_token) < 16:
        raise ConfigurationError("METRICS_TOKEN must be 16 characters or more")
    if not urlsplit(settings.database_url).scheme:
        raise ConfigurationError("DATABASE_URL must be sqlite://... or postgres://...")
    if settings.production:
        if not settings.secret_key or len(settings.secret_key) < 32:
            raise ConfigurationError("production needs a SECRET_KEY of 32 characters or more")
        if not settings.smtp_host:
            raise ConfigurationError("production needs SMTP_HOST: mail is never only logged")
        if settings.sms_backend == "console":
            raise ConfigurationError(
                "production needs SMS_BACKEND=http and SMS_HTTP_URL: SMS codes are never only "
                "logged"
            )
        return settings
    if not settings.secret_key:
        settings = settings.with_(secret_key=_kept_secret(settings.data_dir))
    return settings


def _check_push(settings: Settings) -> None:
    """Half a push configuration is a mistake worth stopping for, not a silent no-push."""
    fcm = {
        "FCM_PROJECT_ID": settings.fcm_project_id,
        "FCM_SERVICE_ACCOUNT_FILE": settings.fcm_service_account_file,
    }
    apns = {
        "APNS_KEY_FILE": settings.apns_key_file,
        "APNS_KEY_ID": settings.apns_key_id,
        "APNS_TEAM_ID": settings.apns_team_id,
        "APNS_TOPIC": settings.apns_topic,
    }
    for group in (fcm, apns):
        missing = [name for name, value in group.items() if not value]
        if 0 < len(missing) < len(group):
            raise ConfigurationError(f"push is half configured: set {', '.join(missing)} too")


_APPLE_APP_ID = re.compile(r"[A-Z0-9]{10}\.[A-Za-z0-9][A-Za-z0-9.-]*")
_ANDROID_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
_CERT_SHA256 = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2}){31}")


def _check_app_links(settings: Settings) -> None:
    """Store links end up in an invitation's href, app ids in what phones trust: both exact."""
    for name, url in (
        ("APP_STORE_URL", settings.app_store_url),
        ("PLAY_STORE_URL", settings.play_store_url),
    ):
        if url and not url.startswith("https://"):
            raise ConfigurationError(f"{name} must be an https:// URL")
    for app_id in settings.apple_app_ids:
        if not _APPLE_APP_ID.fullmatch(app_id):
            raise ConfigurationError(f"APPLE_APP_IDS: {app_id!r} is not TEAMID.bundle.id")
    if bool(settings.android_package) != bool(settings.android_cert_sha256):
        raise ConfigurationError(
            "Android app links need both ANDROID_PACKAGE and ANDROID_CERT_SHA256"
        )
    if settings.android_package and not _ANDROID_PACKAGE.fullmatch(settings.android_package):
        raise ConfigurationError("ANDROID_PACKAGE is not a package name (com.example.app)")
    for fingerprint in settings.android_cert_sha256:
        if not _CERT_SHA256.fullmatch(fingerprint):
            raise ConfigurationError(
                f"ANDROID_CERT_SHA256: {fingerprint!r} is not a SHA-256 fingerprint (AB:CD:...)"
            )


def _check_outbox(settings: Settings) -> None:
    """Every wait bounded, every lane able to send, and no row sent twice at once."""
    waits = {
        "KEYBIN_OUTBOX_DEADLINE_SECONDS": settings.outbox_deadline_seconds,
        "SMTP_CONNECT_TIMEOUT": settings.smtp_connect_timeout,
        "SMTP_TIMEOUT": settings.smtp_timeout,
        "SMS_CONNECT_TIMEOUT": settings.sms_connect_timeout,
        "SMS_READ_TIMEOUT": settings.sms_read_timeout,
        "PUSH_CONNECT_TIMEOUT": settings.push_connect_timeout,
        "PUSH_READ_TIMEOUT": settings.push_read_timeout,
    }
    lanes = {
        "KEYBIN_OUTBOX_EMAIL_CONCURRENCY": settings.outbox_email_concurrency,
        "KEYBIN_OUTBOX_SMS_CONCURRENCY": settings.outbox_sms_concurrency,
        "KEYBIN_OUTBOX_PUSH_CONCURRENCY": settings.outbox_push_concurrency,
    }
    for name, value in {**waits, **lanes}.items():
        if value <= 0:
            raise ConfigurationError(f"{name} must be more than 0")
    # A claim that ran out while its delivery still waited would let a second
    # instance send the same row.
    if settings.outbox_claim_seconds <= settings.outbox_deadline_seconds:
        raise ConfigurationError(
            "KEYBIN_OUTBOX_CLAIM_SECONDS must be longer than KEYBIN_OUTBOX_DEADLINE_SECONDS"
        )


def _check_oidc(settings: Settings) -> None:
    """The company sign-in is all there or not there; its issuer is where ID tokens come from,
    so in production it must be reached over TLS (loopback aside: a provider on the host)."""
    parts = {
        "OIDC_ISSUER": settings.oidc_issuer,
        "OIDC_CLIENT_ID": settings.oidc_client_id,
        "OIDC_CLIENT_SECRET": settings.oidc_client_secret,
    }
    missing = [name for name, value in parts.items() if not value]
    if not missing:
        issuer = urlsplit(settings.oidc_issuer)
        if issuer.scheme not in {"https", "http"} or not issuer.hostname:
            raise ConfigurationError("OIDC_ISSUER must be an https:// URL")
        if issuer.query or issuer.fragment:
            raise ConfigurationError("OIDC_ISSUER takes no query or fragment")
        if issuer.scheme == "http" and settings.production and not _loopback(issuer.hostname):
            raise ConfigurationError("OIDC_ISSUER must be https:// in production")
        if "openid" not in settings.oidc_scopes.split():
            raise ConfigurationError("OIDC_SCOPES must include openid")
        if set(settings.oidc_sysadmin_values) & set(settings.oidc_support_values):
            raise ConfigurationError(
                "OIDC_SYSADMIN_VALUES and OIDC_SUPPORT_VALUES must not share a value"
            )
    elif len(missing) < len(parts):
        raise ConfigurationError(f"OpenID Connect is half configured: set {', '.join(missing)} too")


_CURRENCY = re.compile(r"[a-z]{3}")


def _check_billing(settings: Settings) -> None:
    """Billing is all there or not there: half of Stripe's secrets would take money and never
    hear about it, or hear about payments it cannot take."""
    parts = {
        "STRIPE_SECRET_KEY": settings.stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret,
        "BILLING_PRICES": settings.billing_prices,
    }
    missing = [name for name, value in parts.items() if not value]
    if 0 < len(missing) < len(parts):
        raise ConfigurationError(f"billing is half configured: set {', '.join(missing)} too")
    if not _CURRENCY.fullmatch(settings.billing_currency):
        raise ConfigurationError("BILLING_CURRENCY must be a three-letter ISO code (usd)")
    if settings.billing_grace_days < 0 or settings.billing_reminder_days < 0:
        raise ConfigurationError("BILLING_GRACE_DAYS and BILLING_REMINDER_DAYS must be 0 or more")
    if settings.billing_round_seconds <= 0:
        raise ConfigurationError("BILLING_ROUND_SECONDS must be more than 0")
    if settings.billing_reminder_days > 25:
        raise ConfigurationError("BILLING_REMINDER_DAYS must be 25 or less (bills are monthly)")
    base = urlsplit(settings.stripe_api_base)
    if base.scheme not in {"https", "http"} or not base.hostname:
        raise ConfigurationError("STRIPE_API_BASE must be an https:// URL")
    if base.scheme == "http" and not _loopback(base.hostname):
        # Only a test server on this host is spoken to in clear: the API key rides in it.
        raise ConfigurationError("STRIPE_API_BASE must be https:// unless it is on loopback")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _kept_secret(data_dir: Path) -> str:
    """A secret generated on first run and kept beside the database."""
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must not each write their own.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
