"""``scim-gateway serve``: bind first, then prepare the database, then serve (one process or supervised workers).

Order matters to an operator: a port that is taken or a host that does not exist fails before
anything is created (no database file, no migration, no demo key). Under ``--workers N`` the
parent binds the socket, forks N workers that share it, restarts a worker that dies, and on
SIGTERM or SIGINT stops every worker: each finishes its in-flight requests within the grace
period and stops its background tasks; stragglers are killed; no worker outlives the parent
(each watches its parent and stops if the parent is gone).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from gateway.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_RESTART_WINDOW_S = 60.0
_KILL_MARGIN_S = 5.0
log = structlog.get_logger("scim_gateway.serve")


class ListenError(Exception):
    """The server cannot listen where it was asked to (one line for an operator)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (inheritable by forked workers), or :class:`ListenError`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"invalid host {host!r}: {exc.strerror}") from None
    except (OverflowError, UnicodeError) as exc:
        raise ListenError(f"invalid host or port {host!r}:{port}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only; a live listener still refuses
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


# --- one worker -----------------------------------------------------------------------------------
def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the configured kind (Settings has checked that uvloop is installed)."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_worker(settings: Settings, sock: socket.socket, *, parent: int | None = None) -> None:
    """Serve ``create_app(settings)`` on ``sock`` until SIGTERM/SIGINT; under a supervisor (``parent``
    its pid) until SIGTERM from it, or until it is gone."""
    from aiohttp import web

    from gateway.app import create_app
    from gateway.logging import configure

    configure(json=settings.log_json, level=settings.log_level)
    app = create_app(settings)
    app.on_startup.append(_announce)
    if parent is not None:
        app.on_startup.append(_supervised_signals)
        app.cleanup_ctx.append(_parent_watcher(parent))
    app.on_shutdown.append(_shutting_down)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=settings.shutdown_grace_seconds,
                loop=new_loop(settings.loop))
    if parent is not None and os.getppid() != parent:
        log.warning("parent_gone", pid=os.getpid(), parent=parent)  # stopped by PR_SET_PDEATHSIG or the watcher
    log.info("worker_stopped", pid=os.getpid())


async def _announce(app: Any) -> None:
    loop = type(asyncio.get_running_loop())
    log.info("worker_serving", pid=os.getpid(), loop=f"{loop.__module__}.{loop.__qualname__}")


async def _shutting_down(app: Any) -> None:
    from gateway.http.appkeys import gateway_key

    log.info("worker_shutting_down", pid=os.getpid(), grace_s=app[gateway_key].settings.shutdown_grace_seconds)


async def _supervised_signals(app: Any) -> None:
    # The parent turns a terminal's Ctrl-C (sent to the whole process group) into one SIGTERM per
    # worker; a worker reacting to SIGINT too would race the parent's restart logic.
    loop = asyncio.get_running_loop()
    loop.remove_signal_handler(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _parent_watcher(parent: int) -> Any:
    # ``parent`` is the pid recorded before the fork: asking getppid() here would race a parent that
    # died while this worker was still starting (it would already answer 1).
    async def watch_parent(app: Any) -> Any:
        async def watch() -> None:
            while os.getppid() == parent:
                await asyncio.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)  # the graceful path, as if the parent had asked

        task = asyncio.create_task(watch())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return watch_parent


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM when the parent dies (the watcher covers other systems)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# --- the supervisor -------------------------------------------------------------------------------
def _worker_main(settings: Settings, sock: socket.socket, parent: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's flag-setting handler is not ours
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        return
    run_worker(settings, sock, parent=parent)


def supervise(settings: Settings, sock: socket.socket, workers: int) -> int:
    """Run ``workers`` processes on ``sock`` until SIGTERM/SIGINT; restart any that dies. Returns an exit code."""
    ctx = multiprocessing.get_context("fork")
    procs: dict[int, BaseProcess] = {}
    stop: list[int] = []
    restarts: collections.deque[float] = collections.deque()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def start() -> None:
        p = ctx.Process(target=_worker_main, args=(settings, sock, os.getpid()), name="scim-gateway-worker")
        p.start()
        assert p.pid is not None
        procs[p.pid] = p
        log.info("worker_started", pid=p.pid)

    code = 0
    try:
        for _ in range(workers):
            start()
        log.info("supervisor_started", pid=os.getpid(), workers=workers)
        while not stop:
            multiprocessing.connection.wait([p.sentinel for p in procs.values()], timeout=1.0)
            for pid, p in list(procs.items()):
                if p.is_alive() or stop:
                    continue
                p.join()
                del procs[pid]
                _forget_metrics(pid)
                log.error("worker_died", pid=pid, exitcode=p.exitcode)
                now = time.monotonic()
                restarts.append(now)
                while restarts and restarts[0] < now - _RESTART_WINDOW_S:
                    restarts.popleft()
                if len(restarts) > 5 * workers:
                    log.error("workers_crash_looping", restarts=len(restarts), window_s=_RESTART_WINDOW_S)
                    code = 1
                    stop.append(0)
                    break
                start()
                log.info("worker_restarted", replaced=pid)
    finally:
        _stop_all(procs, settings.shutdown_grace_seconds, stop[0] if stop else 0)
        for s, h in previous.items():
            signal.signal(s, h)
    return code


def _stop_all(procs: dict[int, BaseProcess], grace: float, signum: int) -> None:
    name = signal.Signals(signum).name if signum else "none"
    log.info("shutdown_started", signal=name, workers=len(procs), grace_s=grace)
    for p in procs.values():
        if p.is_alive() and p.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace + _KILL_MARGIN_S
    for p in procs.values():
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for pid, p in procs.items():
        if p.is_alive():
            log.warning("worker_killed", pid=pid, after_s=grace + _KILL_MARGIN_S)
            p.kill()
            p.join()
        _forget_metrics(pid)
    log.info("shutdown_complete", workers=len(procs))


# --- multiprocess metrics -------------------------------------------------------------------------
def prepare_multiprocess_metrics() -> Path | None:
    """Give forked workers one shared prometheus-client directory (before prometheus_client is imported).

    Uses ``PROMETHEUS_MULTIPROC_DIR`` when the operator set it (emptied of a previous run's files),
    else a fresh temporary directory; returns the directory to remove at exit (None: the operator's).
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    made = Path(tempfile.mkdtemp(prefix="scim-gateway-metrics-"))
    os.environ[MULTIPROC_ENV] = str(made)
    return made


def remove_multiprocess_metrics(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)


def _forget_metrics(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
