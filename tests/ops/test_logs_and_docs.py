"""JSON logs render tracebacks and keep extra fields; the hook trace is debug events; the configuration
reference in docs/operations.md is generated from the settings model and lists every setting."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from gateway.configref import END, START, reference, rewrite
from gateway.logging import configure
from gateway.settings import Settings, env_name

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    err = capsys.readouterr().err
    return [json.loads(x) for x in err.splitlines() if x.startswith("{")]


def test_json_logs_render_tracebacks_from_structlog_and_stdlib(capsys: pytest.CaptureFixture[str]) -> None:
    configure(json=True, level="INFO", cache=False)
    capsys.readouterr()
    try:
        raise ValueError("the cause")
    except ValueError:
        structlog.get_logger("t").exception("unhandled_error", path="/x")
        logging.getLogger("t.stdlib").exception("stdlib_failure")
    native, foreign = _lines(capsys)
    for line in (native, foreign):
        assert "exc_info" not in line
        (exc,) = line["exception"]
        assert exc["exc_type"] == "ValueError" and exc["exc_value"] == "the cause"
        assert any(f["name"] == "test_json_logs_render_tracebacks_from_structlog_and_stdlib" for f in exc["frames"])
    assert native["event"] == "unhandled_error" and native["path"] == "/x"


def test_json_logs_keep_stdlib_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure(json=True, level="INFO", cache=False)
    capsys.readouterr()
    logging.getLogger("scim_gateway_okta").warning("quirk_normalized", extra={"plugin": "okta", "op_count": 3})
    (line,) = _lines(capsys)
    assert line["plugin"] == "okta" and line["op_count"] == 3 and line["logger"] == "scim_gateway_okta"


def test_hook_trace_is_debug_events(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.plugin_manager import PluginHost

    monkeypatch.setenv("SCIM_GATEWAY_TRACE_HOOKS", "1")
    host = PluginHost(load_entrypoints=False)
    configure(json=True, level="INFO", cache=False)
    capsys.readouterr()
    host.hook.scim_correlation_filter(client="generic", request=SimpleNamespace(resource_type="Group"), resource={})
    assert _lines(capsys) == []  # nothing at INFO
    configure(json=True, level="DEBUG", cache=False)
    host.hook.scim_correlation_filter(client="generic", request=SimpleNamespace(resource_type="Group"), resource={})
    events = [e for e in _lines(capsys) if e["event"].startswith("hook_")]
    assert [e["event"] for e in events] == ["hook_call", "hook_done"]
    assert all(e["level"] == "debug" and e["hook"] == "scim_correlation_filter" for e in events)
    assert events[0]["plugins"] == ["core"] and events[1]["failed"] is False
    configure(json=True, level="INFO", cache=False)


def test_configuration_reference_is_generated_and_current() -> None:
    text = DOCS.read_text()
    assert START in text and END in text
    assert rewrite(text) == text, "run: python -m gateway.configref --write docs/operations.md"
    table = reference()
    for name, info in Settings.model_fields.items():
        assert f"`{env_name(name)}`" in table
        assert info.description, f"Settings.{name} needs a description= (it is the configuration reference)"
    assert "| `SCIM_GATEWAY_PORT` | `serve --port` | `8080` |" in table


def test_request_line_renders_what_structlog_renders(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.logging import RequestLine

    configure(json=True, level="INFO", cache=False)
    capsys.readouterr()
    line = RequestLine("scim_gateway.http")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="abc123", api_key="scimgw_secret")
    try:
        fields = {"method": "GET", "path": "/scim/v2/t/Users", "status": 200, "tenant": "t", "client": "okta",
                  "duration_ms": 0.5, "token": "hidden"}
        assert line.enabled
        line.emit("request", dict(fields))
        structlog.get_logger("scim_gateway.http").info("request", **fields)
        fast, reference = _lines(capsys)
    finally:
        structlog.contextvars.clear_contextvars()
    assert list(fast) == list(reference)  # the same members, in the same order
    assert {k: v for k, v in fast.items() if k != "timestamp"} == {k: v for k, v in reference.items() if k != "timestamp"}
    assert fast["api_key"] == fast["token"] == "[redacted]" and "scimgw_secret" not in str(fast)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", fast["timestamp"])
    assert fast["timestamp"][:19] == reference["timestamp"][:19] or fast["timestamp"] < reference["timestamp"]
    configure(json=True, level="WARNING", cache=False)
    assert not line.enabled
    configure(json=True, level="INFO", cache=False)


async def test_request_lines_of_one_iteration_go_out_together_and_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from gateway.logging import RequestLine

    configure(json=True, level="INFO", cache=False)
    capsys.readouterr()
    line = RequestLine("scim_gateway.http")
    line.emit("request", {"n": 1})
    line.emit("request", {"n": 2})
    assert _lines(capsys) == []  # held until this iteration ends
    await asyncio.sleep(0)
    assert [e["n"] for e in _lines(capsys)] == [1, 2]
    line.emit("request", {"n": 3})
    structlog.get_logger("t").warning("after")  # any other line of ours writes the pending ones first
    assert [e.get("n", e["event"]) for e in _lines(capsys)] == [3, "after"]
