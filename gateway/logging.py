"""structlog configuration: once at start-up, JSON when not on a TTY, stdlib loggers routed through it."""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import Any

import orjson
import structlog

_SECRET_KEYS = {"authorization", "password", "token", "key", "api_key", "secret", "admin_token"}


def _drop_secrets(logger: object, method: str, event: dict[str, object]) -> dict[str, object]:
    for k in list(event):
        if k.lower() in _SECRET_KEYS:
            event[k] = "[redacted]"
    return event


# Request lines waiting for the end of this event-loop iteration: one write for all of them. Every
# other line of ours writes them out first, so the order of the log is kept.
_pending: list[str] = []
_flush_scheduled = False


def flush_pending() -> None:
    global _flush_scheduled
    _flush_scheduled = False
    if _pending:
        text = "".join(_pending)
        _pending.clear()
        sys.stderr.write(text)


atexit.register(flush_pending)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (a test's capture, a replaced stream), never a stale one."""

    def emit(self, record: logging.LogRecord) -> None:
        flush_pending()
        super().emit(record)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _Stderr:
    """The same for the gateway's own events, which structlog writes itself."""

    def write(self, text: str) -> None:
        flush_pending()
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's own writer, with the logger's name (for ``add_logger_name``)."""

    def __init__(self, name: str) -> None:
        super().__init__(_Stderr())  # type: ignore[arg-type]
        self.name = name


def _named_logger(*args: Any) -> _NamedWriteLogger:
    return _NamedWriteLogger(str(args[0]) if args else "")


def _dumps(event: Any, **kw: Any) -> str:
    return orjson.dumps(event, default=str).decode()


class RequestLine:
    """The one INFO line per request, cheaply: the same JSON object the configured processors give a
    ``log.info(event, **fields)`` (fields, ``event``, the bound contextvars, ``level``, ``logger``, an
    ISO UTC ``timestamp``, secret-named fields masked), rendered with one dict and one orjson call, and
    written with the other request lines of the same event-loop iteration in one write. Console mode
    (a TTY), levels above INFO and a structlog configured since :func:`configure`
    (``structlog.testing.capture_logs``, an embedding application) take structlog's own path / nothing."""

    def __init__(self, logger: str) -> None:
        self.logger = logger
        self._log = structlog.get_logger(logger)
        self._second = -1
        self._prefix = ""

    @property
    def enabled(self) -> bool:
        return _line_level <= logging.INFO or not self._ours()

    @staticmethod
    def _ours() -> bool:
        # structlog.testing.capture_logs swaps the processors inside the same list: compare the renderer
        procs = structlog.get_config()["processors"]
        return _line_json and bool(procs) and procs[-1] is _line_renderer

    def _timestamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:  # the date and time change once a second: format them once
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        if not self._ours():
            self._log.info(event, **fields)
            return
        fields["event"] = event
        fields.update(structlog.contextvars.get_contextvars())
        fields["level"] = "info"
        fields["logger"] = self.logger
        fields["timestamp"] = self._timestamp()
        _drop_secrets(None, "info", fields)
        _pending.append(orjson.dumps(fields, default=str).decode() + "\n")
        global _flush_scheduled
        if not _flush_scheduled:
            try:
                asyncio.get_running_loop().call_soon(flush_pending)
            except RuntimeError:  # no event loop: now
                flush_pending()
                return
            _flush_scheduled = True


_line_json = False
_line_level = logging.INFO
_line_renderer: Any = None


def configure(*, json: bool | None = None, level: str = "INFO", cache: bool = True) -> None:
    """Configure structlog and the stdlib root logger once, at start-up.

    JSON mode renders exceptions as structured tracebacks (``exception``: frames, type, message) and
    keeps a stdlib record's ``extra`` fields (``log.warning("x", extra={"plugin": "okta"})``).
    ``cache`` False leaves loggers uncached (short CLI commands, tests that reconfigure later).

    The gateway's own (structlog) events are rendered by structlog itself, straight to stderr: level
    filtered before any work, a few processors, one orjson line, no stdlib LogRecord, handler or
    formatter on the way (that round through the stdlib cost about three times as much per request
    line). Stdlib loggers (aiohttp, plugins using ``logging``) go through the same processors via the
    root handler.
    """
    if json is None:
        json = not sys.stderr.isatty()
    global _line_json, _line_level, _line_renderer
    _line_json, _line_level = json, logging.getLevelName(level.upper())
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
        native_renderer = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer(serializer=_dumps)]
    else:
        renderer = native_renderer = [structlog.dev.ConsoleRenderer(colors=False)]
    _line_renderer = native_renderer[-1]
    structlog.configure(
        # a suppressed level costs a method call that returns at once (no dict, no timestamp)
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        processors=[p for p in shared if not isinstance(p, structlog.stdlib.ExtraAdder)] + native_renderer,
        logger_factory=_named_logger,
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
