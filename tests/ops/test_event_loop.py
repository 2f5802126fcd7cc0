"""`serve` on the configured event loop: asyncio by default, uvloop when asked for and installed; asked
for without being installed, start-up refuses with a message naming the fix."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError
from gateway.testing import free_port


def _serve(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], int, Path]:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env={**os.environ, "SCIM_GATEWAY_DATABASE": str(tmp_path / "g.db"), "SCIM_GATEWAY_LOG_JSON": "true", **env},
        stdout=subprocess.DEVNULL, stderr=log.open("w"), text=True,
    )
    return proc, port, log


def _serving_event(proc: subprocess.Popen[str], log: Path) -> dict[str, object]:
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        for line in log.read_text().splitlines():
            if '"worker_serving"' in line:
                return dict(json.loads(line))
        time.sleep(0.05)
    raise AssertionError(f"serve never logged worker_serving:\n{log.read_text()}")


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_serve_runs_on_the_configured_loop(tmp_path: Path, kind: str) -> None:
    if kind == "uvloop" and importlib.util.find_spec("uvloop") is None:
        pytest.skip("uvloop is not installed (pip install 'scim-gateway[uvloop]')")
    proc, port, log = _serve(tmp_path, **({"SCIM_GATEWAY_LOOP": kind} if kind != "asyncio" else {}))
    try:
        event = _serving_event(proc, log)
        assert str(event["loop"]).startswith(kind), event
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_uvloop_asked_for_but_missing_is_a_clear_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a))
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"SCIM_GATEWAY_LOOP": "uvloop"})
    assert "pip install 'scim-gateway[uvloop]'" in str(err.value)
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"SCIM_GATEWAY_LOOP": "trio"})
    assert "SCIM_GATEWAY_LOOP" in str(err.value) or "loop" in str(err.value)
