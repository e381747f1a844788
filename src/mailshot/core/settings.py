"""Settings for every mailshot process, read from environment variables and a config file.

Environment variables use the prefix ``MAILSHOT_`` (``MAILSHOT_PORT=9000``). An optional TOML
file named by ``MAILSHOT_CONFIG`` (or ``mailshot.toml`` in the working directory) supplies
defaults that the environment overrides. The defaults need no server: SQLite files in the
data directory.
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mailshot.core.smtp_relays import RelaySettings


class _TomlSource(PydanticBaseSettingsSource):
    """Reads settings from the TOML file named by MAILSHOT_CONFIG, if any."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None and path.is_file():
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
            self._data = dict(raw.get("mailshot", raw))

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


def _config_path() -> Path | None:
    import os

    named = os.environ.get("MAILSHOT_CONFIG")
    if named:
        return Path(named)
    local = Path("mailshot.toml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Everything a mailshot process can be told. Validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="MAILSHOT_", extra="ignore")

    data_dir: Path = Field(
        default=Path("mailshot-data"),
        description="Folder for the SQLite files and the provisioned credentials.",
    )
    crm_database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the CRM database (default: SQLite file)."
    )
    esp_database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the ESP database (default: SQLite file)."
    )
    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port the server listens on.")
    crm_url: str | None = Field(
        default=None, description="Base URL of the CRM, for the bridge and the CLI."
    )
    esp_url: str | None = Field(
        default=None, description="Base URL of the ESP, for the bridge and the CLI."
    )
    bridge_crm_key: SecretStr | None = Field(
        default=None, description="CRM API key the bridge uses (default: provisioned file)."
    )
    bridge_esp_key: SecretStr | None = Field(
        default=None, description="ESP API key the bridge uses (default: provisioned file)."
    )
    api_key: SecretStr | None = Field(
        default=None, description="CRM API key the CLI uses (default: provisioned file)."
    )
    esp_api_key: SecretStr | None = Field(
        default=None, description="ESP API key `mailshot send` uses (default: provisioned file)."
    )
    chunk_size: int = Field(default=20_000, ge=1, le=100_000, description="Recipients per chunk.")
    lease_seconds: float = Field(default=30.0, gt=0, description="How long a lease lasts.")
    heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a worker renews its lease."
    )
    max_attempts: int = Field(
        default=8, ge=1, description="Tries of one chunk (transient faults) before a sync fails."
    )
    max_takeovers: int = Field(
        default=5, ge=1, description="Expired leases of one chunk before its sync fails."
    )
    worker_concurrency: int = Field(default=2, ge=1, le=64, description="Syncs at once.")
    embedded_worker: bool = Field(
        default=True, description="Whether `serve` also runs bridge workers."
    )
    esp_process: bool = Field(
        default=True,
        description="Whether `serve`'s bridge workers write to an ESP served by a second "
        "process (faster: see mailshot.app.esp_process); ignored when `esp_url` is set.",
    )
    log_json: bool = Field(default=False, description="Log one JSON object per line.")
    log_level: str = Field(default="INFO", description="Logging level.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of the reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (default none: the headers are ignored, and the "
        "client's address is the connection's).",
    )
    key_refusal_retention_days: float = Field(
        default=30, gt=0, description="Days a refused request stays in key_refusals."
    )
    web_session_hours: float = Field(
        default=12.0, gt=0, le=24 * 31, description="A page session ends this long after sign-in."
    )
    web_session_idle_minutes: float = Field(
        default=120.0, gt=0, description="A page session ends after this long without a request."
    )
    web_cookie_secure: bool = Field(
        default=False,
        description="Mark the pages' cookies Secure even on plain HTTP requests (they are "
        "whenever a request came over HTTPS); for a proxy that ends HTTPS without saying so.",
    )
    login_account_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins to one address (in the window) before each further "
        "attempt waits, longer after every failure.",
    )
    login_address_failures: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins from one client address (in the window) before each "
        "further attempt waits, longer after every failure.",
    )
    login_failure_window_minutes: float = Field(
        default=15.0,
        gt=0,
        description="How long a failed sign-in counts; also the longest wait it can cause.",
    )
    login_hash_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Password checks (argon2, about 19 MiB each) one process runs at once.",
    )
    login_hash_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a sign-in waits for a password check before it is refused (503).",
    )
    max_body_bytes: int = Field(
        default=8 * 2**20,
        ge=1024,
        description="Largest request body accepted (JSON, forms), in bytes; larger ones "
        "are refused with 413 before they are read.",
    )
    max_upload_bytes: int = Field(
        default=256 * 2**20,
        ge=1024,
        description="Largest CSV file accepted by an import (streamed to a file), in bytes.",
    )
    max_chunk_bytes: int = Field(
        default=64 * 2**20,
        ge=1024,
        description="Largest chunk of recipients the ESP accepts in one request, in bytes.",
    )
    http_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A connection whose request line and headers are not all in within this "
        "many seconds (of connecting, or of the request's first byte) is closed.",
    )
    http_keep_alive_seconds: int = Field(
        default=5, ge=1, description="An idle kept-alive connection is closed after this long."
    )
    http_max_concurrency: int = Field(
        default=500,
        ge=1,
        description="Connections and requests at once; past this, new requests get 503.",
    )
    # ---- sending (the ESP; see mailshot.esp.sending.config) ------------------------------
    smtp_relays: list[RelaySettings] = Field(
        default_factory=list,
        description="The SMTP relays sends go out through (JSON in the environment, a list "
        "of tables in TOML); none: the embedded Outbox capture server.",
    )
    outbox_smtp_host: str = Field(
        default="127.0.0.1", description="Address the Outbox capture server listens on."
    )
    outbox_smtp_port: int = Field(
        default=2525,
        ge=0,
        le=65535,
        description="Port of the Outbox capture server (0 picks a free one); with no relay "
        "configured, sends go there.",
    )
    public_esp_url: str | None = Field(
        default=None,
        description="The ESP's address as recipients reach it (tracking links, unsubscribe); "
        "default: the ESP's own URL.",
    )
    bounce_domain: str | None = Field(
        default=None,
        description="Domain of the VERP Return-Path (bounces); default: the public URL's host.",
    )
    message_id_domain: str | None = Field(
        default=None, description="Domain of the Message-IDs; default: the bounce domain."
    )
    sending_secret: SecretStr | None = Field(
        default=None,
        description="Signs tracking tokens, VERP addresses and Message-IDs (default: made on "
        "first use in <data_dir>/sending-secret).",
    )
    dkim_domain: str | None = Field(default=None, description="DKIM signing domain (d=).")
    dkim_selector: str | None = Field(default=None, description="DKIM selector (s=).")
    dkim_private_key_file: Path | None = Field(
        default=None, description="PEM file of the DKIM private key."
    )
    dkim_algorithm: str = Field(default="rsa-sha256", description="rsa-sha256 or ed25519-sha256.")
    dkim_required: bool = Field(
        default=False, description="Refuse to send when no DKIM key is configured."
    )
    send_batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Recipients per leased unit of a send."
    )
    send_window: int = Field(
        default=250,
        ge=1,
        le=10_000,
        description="Recipients a send worker marks 'sending' at once before their data goes "
        "out (at most this many, twice, can end in doubt when a worker dies).",
    )
    send_retry_initial_seconds: float = Field(
        default=60.0, gt=0, description="First wait before a deferred recipient is retried."
    )
    send_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between retries of a deferred recipient."
    )
    send_give_up_seconds: float = Field(
        default=3 * 86400.0,
        gt=0,
        description="A recipient still deferred this long after its first attempt fails.",
    )
    send_workers: int = Field(
        default=1, ge=0, le=64, description="Send workers `serve` runs in the background."
    )

    outbox_keep_messages: int = Field(
        default=10_000, ge=1, description="Messages the Outbox keeps; older ones are deleted."
    )
    outbox_keep_bytes: int = Field(
        default=256 * 2**20,
        ge=1024,
        description="Bytes of messages the Outbox keeps; older messages are deleted.",
    )
    outbox_max_message_bytes: int = Field(
        default=10 * 2**20, ge=1024, description="Largest message the Outbox accepts (552 past)."
    )
    outbox_max_recipients: int = Field(
        default=1000, ge=1, description="Recipients of one message the Outbox accepts (452 past)."
    )
    outbox_max_connections: int = Field(
        default=20,
        ge=1,
        description="SMTP connections the Outbox serves at once (421 past); with the largest "
        "message size this bounds its memory.",
    )

    @field_validator("dkim_algorithm")
    @classmethod
    def _dkim_algorithm(cls, v: str) -> str:
        if v not in ("rsa-sha256", "ed25519-sha256"):
            raise ValueError("dkim_algorithm must be rsa-sha256 or ed25519-sha256")
        return v

    @field_validator("log_level")
    @classmethod
    def _upper(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be one of DEBUG, INFO, WARNING, ERROR")
        return v

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        """A TOML list, or in the environment JSON or a comma-separated list."""
        if isinstance(v, str):
            if v.strip().startswith("["):
                return json.loads(v)
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {net!r} is not an IP address or network"
                ) from None
        return v

    @model_validator(mode="after")
    def _check_heartbeat(self) -> Settings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                "heartbeat_seconds must be shorter than lease_seconds, "
                "or leases expire while their worker is alive"
            )
        if self.outbox_keep_bytes < self.outbox_max_message_bytes:
            raise ValueError(
                "outbox_keep_bytes must be at least outbox_max_message_bytes, "
                "or the Outbox would delete a message as soon as it keeps it"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, _config_path()))

    # ---- derived values -------------------------------------------------------------
    def crm_db_url(self) -> str:
        return self.crm_database_url or f"sqlite:///{(self.data_dir / 'crm.db').resolve()}"

    def esp_db_url(self) -> str:
        return self.esp_database_url or f"sqlite:///{(self.data_dir / 'esp.db').resolve()}"

    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        return f"http://{host}:{self.port}"

    def crm_base_url(self) -> str:
        return (self.crm_url or f"{self.base_url()}/crm").rstrip("/")

    def esp_base_url(self) -> str:
        return (self.esp_url or f"{self.base_url()}/esp").rstrip("/")

    def proxy_options(self) -> dict[str, Any]:
        """uvicorn's proxy-header options: the headers are read only from the trusted
        proxies, and not at all without any (uvicorn's own default trusts 127.0.0.1)."""
        if not self.trusted_proxies:
            return {"proxy_headers": False}
        return {"proxy_headers": True, "forwarded_allow_ips": list(self.trusted_proxies)}

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials.json"
