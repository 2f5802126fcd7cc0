"""structlog configuration: once at start-up, JSON when not on a TTY, stdlib loggers routed through it."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SECRET_KEYS = {"authorization", "password", "token", "key", "api_key", "secret", "admin_token"}


def _drop_secrets(logger: object, method: str, event: dict[str, object]) -> dict[str, object]:
    for k in list(event):
        if k.lower() in _SECRET_KEYS:
            event[k] = "[redacted]"
    return event


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (a test's capture, a replaced stream), never a stale one."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(*, json: bool | None = None, level: str = "INFO", cache: bool = True) -> None:
    """Configure structlog and the stdlib root logger once, at start-up.

    JSON mode renders exceptions as structured tracebacks (``exception``: frames, type, message) and
    keeps a stdlib record's ``extra`` fields (``log.warning("x", extra={"plugin": "okta"})``).
    ``cache`` False leaves loggers uncached (short CLI commands, tests that reconfigure later).
    """
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    renderer: Any
    if json:
        renderer = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=False)]
    structlog.configure(
        # filter first: a suppressed level must cost nothing (no timestamp, no context merge)
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=cache,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # one canonical line per request comes from our middleware; aiohttp's access log would duplicate it
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
