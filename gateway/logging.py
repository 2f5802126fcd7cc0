"""structlog configuration: once at start-up, JSON when not on a TTY, stdlib loggers routed through it."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

_SECRET_KEYS = {"authorization", "password", "token", "key", "api_key", "secret", "admin_token"}


def _drop_secrets(logger: object, method: str, event: dict[str, object]) -> dict[str, object]:
    for k in list(event):
        if k.lower() in _SECRET_KEYS:
            event[k] = "[redacted]"
    return event


class _Stderr:
    """Whatever ``sys.stderr`` is at write time (a test's capture, a replaced stream), never a stale one."""

    def write(self, text: str) -> None:
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _dumps(event: Any, **kw: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def configure(*, json: bool | None = None, level: str = "INFO") -> None:
    """Configure once at start-up. The gateway's own (structlog) events are rendered by structlog itself,
    straight to stderr: one dict, a few processors, one orjson line, no stdlib LogRecord, handler or
    formatter on the way (that round through the stdlib was a fifth of a GET's cost). Stdlib loggers
    (aiohttp, plugins using ``logging``) still go through the same processors via the root handler."""
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    renderer: Any = (structlog.processors.JSONRenderer(serializer=_dumps) if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        # a suppressed level costs a method call that returns at once (no dict, no timestamp)
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        logger_factory=structlog.WriteLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer() if json else renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # one canonical line per request comes from our middleware; aiohttp's access log would duplicate it
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
