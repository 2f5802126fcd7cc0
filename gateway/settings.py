"""Settings: environment variables (``SCIM_GATEWAY_*``), overridden by CLI flags.

Every field's ``description`` is the configuration reference (``docs/operations.md`` is generated
from this model by :mod:`gateway.configref`, and a test keeps the two in step): give every new
field one.
"""

from __future__ import annotations

import os
import importlib.util
from typing import Any, Literal, Mapping

from pydantic import BaseModel, Field, ValidationError, field_validator

ENV_PREFIX = "SCIM_GATEWAY_"
PLUGIN_ENV_PREFIX = ENV_PREFIX + "PLUGIN_"
_SECRET_PARTS = ("token", "secret", "password")


class SettingsError(ValueError):
    """An invalid setting; the message names the environment variable or flag that set it (never a secret value)."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class Settings(BaseModel):
    database: str = Field("scim-gateway.db", description="SQLite file path, sqlite:///absolute/path, or postgresql://...")
    public_url: str | None = Field(None, description="Public base URL used in scim_url and meta.location")
    host: str = Field("127.0.0.1", description="Address `serve` listens on")
    port: int = Field(8080, ge=0, le=65535, description="TCP port `serve` listens on (0 = any free port)")
    admin_token: str | None = Field(None, description="Bearer token of the admin API; unset = admin API refuses all")
    max_body_bytes: int = Field(1_048_576, ge=1, description="Largest request body accepted (413 beyond)")
    default_page_size: int = Field(100, ge=1, description="SCIM list page size when the client sends no count")
    max_page_size: int = Field(1000, ge=1, description="Largest SCIM list page served, whatever count asks")
    bulk_max_operations: int = Field(1000, ge=1, description="Most operations accepted in one SCIM Bulk request")
    log_json: bool | None = Field(None, description="JSON logs; default: when stderr is not a TTY")
    log_level: str = Field("INFO", pattern=r"(?i)^(debug|info|warning|error|critical)$",
                           description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    activity_max_age_days: int = Field(90, ge=1, description="Activity events older than this are pruned (tenants may override)")
    activity_max_events: int = Field(100_000, ge=1, description="Most activity events kept per tenant (tenants may override)")

    # --- operations: process lifecycle, database start-up, metrics (issue 11) ---
    workers: int = Field(1, ge=1, le=256, description="`serve` processes sharing the port; dead ones are restarted")
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM/SIGINT, how long in-flight requests get to finish before workers are stopped")
    database_connect_timeout: float = Field(
        30.0, ge=0, description="At start, how long to retry an unreachable PostgreSQL (with back-off) before giving up")
    loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio", description="Event loop of `serve`: asyncio, or uvloop (install the `uvloop` extra first)")

    @field_validator("loop")
    @classmethod
    def _loop_installed(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed: pip install 'scim-gateway[uvloop]', or use loop = asyncio")
        return value

    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics and count requests")
    metrics_token: str | None = Field(None, description="Bearer token /metrics requires; unset = /metrics is open")
    metrics_tenant_label: bool = Field(
        False, description="Add a tenant label to request metrics (one series per tenant: mind the cardinality)")
    # --- plugin settings (issue 8) ---
    plugin_config: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per-plugin settings: {plugin name: {key: value}}; from SCIM_GATEWAY_PLUGIN_<NAME>__<KEY>",
    )
    # --- change feed: events API and webhooks (issue 10) ---
    events_enabled: bool = Field(True, description="Write change-feed events (outbox) in each change's transaction")
    events_retention_days: float = Field(30, gt=0, description="Events older than this are pruned; older cursors get 410")
    events_retention_interval_seconds: float = Field(300, gt=0, description="How often retention runs")
    webhook_delivery: bool = Field(True, description="Run the webhook delivery worker in this process")
    webhook_timeout_seconds: float = Field(10, gt=0, description="A 2xx within this is a successful delivery")
    webhook_max_attempts: int = Field(12, ge=1, description="Attempts before a delivery is marked failed")
    webhook_retry_base_seconds: float = Field(5, gt=0, description="Delay before the first retry")
    webhook_retry_factor: float = Field(3, ge=1, description="Each retry waits this many times longer")
    webhook_retry_max_seconds: float = Field(21_600, gt=0, description="Longest wait between two attempts")
    webhook_poll_seconds: float = Field(1, gt=0, description="How often an idle worker looks for work")
    webhook_concurrency: int = Field(16, ge=1, description="Endpoints delivered to at once by one process")
    # --- admin portal (issue 9) ---
    portal_idle_minutes: int = Field(30, ge=1, le=24 * 60, description="A portal session ends after this long unused")
    portal_session_hours: int = Field(12, ge=1, le=24 * 30, description="A portal session ends this long after sign-in")

    # -- Hardening: rate limits and bounded work per request (docs/hardening.md) --------------------
    rate_limit_per_second: float = Field(200.0, ge=0, description="Sustained SCIM requests/s per API key; 0 = no limit")
    rate_limit_burst: int = Field(400, ge=1, description="Requests an API key may send at once before the rate applies")
    auth_failure_limit: int = Field(20, ge=0, description="Failed authentications per client address per window; 0 = no limit")
    auth_failure_window_seconds: float = Field(60.0, gt=0, description="Window (and cool-down) of auth_failure_limit")
    trusted_proxies: str = Field("", description="Comma-separated proxy addresses/CIDRs whose X-Forwarded-For is honoured")
    max_request_line_bytes: int = Field(8190, ge=256, description="Longest request line (414 beyond)")
    max_header_bytes: int = Field(8190, ge=256, description="Longest header field (431 beyond)")
    body_read_timeout_seconds: float = Field(30.0, gt=0, description="Time a client has to send its whole body (408 beyond)")
    max_connections: int = Field(1000, ge=0, description="Concurrent connections per process; 0 = no limit (503 beyond)")
    max_json_depth: int = Field(32, ge=4, le=512, description="Deepest nesting of a JSON body on any endpoint")
    max_filter_depth: int = Field(20, ge=1, le=50, description="Deepest parenthesis/value-path nesting of a filter")
    max_patch_operations: int = Field(1000, ge=0, description="Operations in one PATCH; 0 = no limit")
    max_elements_per_request: int = Field(50_000, ge=0, description="Array elements (members, emails...) in one body; 0 = no limit")
    activity_max_payload_bytes: int = Field(65_536, ge=1024, description="Largest request/response payload kept in one activity event (cut beyond, with a marker)")
    activity_max_bytes: int = Field(64 * 1024 * 1024, ge=0, description="Activity log size per tenant; oldest events pruned beyond; 0 = no limit")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, flags: dict[str, str] | None = None,
                 **overrides: Any) -> "Settings":
        """Settings from ``SCIM_GATEWAY_*`` variables, then ``overrides`` (None = not given).

        Raises :class:`SettingsError` naming the variable (or the flag in ``flags``, by field name)
        whose value is invalid.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        source: dict[str, str] = {}
        for name in cls.model_fields:
            raw = env.get(env_name(name))
            if raw is not None and raw != "":
                values[name] = raw
                source[name] = env_name(name)
        plugin_config = plugin_settings_from_env(env)
        if plugin_config:
            values["plugin_config"] = plugin_config
        for k, v in overrides.items():
            if v is not None:
                values[k] = v
                source[k] = (flags or {}).get(k, k)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc, source, values)) from None

    def plugin_settings(self, name: str) -> dict[str, str]:
        """The settings given to plugin ``name`` (its entry-point name); keys lower-case."""
        return dict(self.plugin_config.get(_plugin_key(name), {}))

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::", "127.0.0.1") else self.host
        return f"http://{host}:{self.port}"

    def secure_cookies(self) -> bool:
        return self.base_url().lower().startswith("https://")

    def scim_url(self, tenant_id: str) -> str:
        return f"{self.base_url()}/scim/v2/{tenant_id}"


def _plugin_key(name: str) -> str:
    return name.lower().replace("-", "_")


def plugin_settings_from_env(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``SCIM_GATEWAY_PLUGIN_<NAME>__<KEY>=value`` -> ``{name: {key: value}}`` (names and keys lower-cased).

    The double underscore separates the plugin name from the key, so names and keys may contain
    single underscores (``SCIM_GATEWAY_PLUGIN_MY_IDP__API_REGION`` is key ``api_region`` of ``my_idp``,
    which is also how the plugin ``my-idp`` is spelt in a variable name).
    """
    out: dict[str, dict[str, str]] = {}
    for var, value in env.items():
        if not var.upper().startswith(PLUGIN_ENV_PREFIX):
            continue
        name, sep, key = var[len(PLUGIN_ENV_PREFIX):].partition("__")
        if not sep or not name or not key:
            raise ValueError(f"{var}: plugin settings are named {PLUGIN_ENV_PREFIX}<PLUGIN>__<KEY>")
        out.setdefault(_plugin_key(name), {})[key.lower()] = value
    return out


def _describe(exc: ValidationError, source: dict[str, str], values: dict[str, Any]) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        field = str(err["loc"][0]) if err["loc"] else ""
        where = source.get(field, field or "settings")
        shown = "" if any(p in field for p in _SECRET_PARTS) or field not in values else f"={values[field]!r}"
        parts.append(f"invalid {where}{shown}: {err['msg']}")
    return "; ".join(parts)
