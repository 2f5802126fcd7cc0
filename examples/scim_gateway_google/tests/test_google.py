"""Tests for the Google Workspace example plugin, written only against ``gateway.testing``.

Run them with ``pytest examples/scim_gateway_google`` after
``pip install --no-deps -e examples/scim_gateway_google``.
"""

from __future__ import annotations

import json
import urllib.parse
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import scim_gateway_google as google
from gateway.testing import USER_SCHEMA, ScimClient, load_sample, make_request, run_hook

HERE = Path(__file__).parent
SAMPLES = sorted(p.stem for p in (HERE / "samples").glob("*.json"))


@pytest.fixture
def gateway_plugins() -> list[Any]:
    """Installed, the entry point loads the plugin; from a bare checkout, hand it over explicitly."""
    installed = any(ep.name == "google" for ep in entry_points(group="scim_gateway"))
    return [] if installed else [("google", google)]


async def send(scim: ScimClient, sample: dict[str, Any], ids: dict[str, str]) -> tuple[int, Any]:
    """Send a recorded request, with ``{placeholders}`` filled from earlier captures."""
    req = json.loads(json.dumps(sample["request"]).replace("{user_id}", ids.get("user_id", "{user_id}")))
    path, _, qs = req["path"].partition("?")
    params = dict(urllib.parse.parse_qsl(qs)) if qs else None
    status, body, _ = await scim.request(req["method"], path, req["body"], headers=req["headers"], params=params)
    return status, body


async def test_google_replay_samples_in_order(scim: ScimClient) -> None:
    """SNIPE + AUTHN: probe, lookup, create with mixed SCIM 1.0/2.0 schemas, lookup again."""
    ids: dict[str, str] = {}
    for name in SAMPLES:
        sample = load_sample(HERE, name)
        status, body = await send(scim, sample, ids)
        assert status == sample["expected"]["status"], (name, body)
        for var, field in (sample.get("capture") or {}).items():
            ids[var] = body[field]
    _, found = await send(scim, load_sample(HERE, "04_lookup_finds_user"), ids)
    assert [u["id"] for u in found["Resources"]] == [ids["user_id"]]


async def test_google_create_mixed_schemas_answers_scim2_only(scim: ScimClient) -> None:
    status, body = await send(scim, load_sample(HERE, "03_create_user_mixed_scim1_scim2_schemas"), {})
    assert status == 201 and body["schemas"] == [USER_SCHEMA]


def test_hook_scim_identify_client_google() -> None:
    body = load_sample(HERE, "03_create_user_mixed_scim1_scim2_schemas")["request"]["body"]
    assert run_hook(google, "scim_identify_client", request=make_request("POST", "/Users", body=body)) == "google"
    assert run_hook(google, "scim_identify_client", request=make_request()) is None


def test_hook_scim_normalize_resource_google_drops_scim1_uris() -> None:
    payload = load_sample(HERE, "03_create_user_mixed_scim1_scim2_schemas")["request"]["body"]
    run_hook(google, "scim_normalize_resource", request=make_request("POST", "/Users"), payload=payload)
    assert payload["schemas"] == [USER_SCHEMA]
    only_v1 = {"schemas": [google.SCIM1_CORE], "userName": "a"}
    run_hook(google, "scim_normalize_resource", request=make_request("POST", "/Users"), payload=only_v1)
    assert only_v1["schemas"] == [USER_SCHEMA]
