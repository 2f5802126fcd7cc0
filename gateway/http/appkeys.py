"""Typed AppKeys and RequestKeys: the only way state is reached from handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.runtime import Gateway
from gateway.store.base import TenantRow
from gateway.types import ScimRequest

if TYPE_CHECKING:
    from gateway.metrics import Metrics

gateway_key: web.AppKey[Gateway] = web.AppKey("gateway_key")
metrics_key: web.AppKey["Metrics"] = web.AppKey("metrics_key")
request_id_key = web.RequestKey("request_id_key", str)
tenant_key = web.RequestKey("tenant_key", TenantRow)
scim_request_key = web.RequestKey("scim_request_key", ScimRequest)
# the request body exactly as received, for the activity log (what the IdP really sent)
raw_body_key = web.RequestKey("raw_body_key", bytes)
client_key = web.RequestKey("client_key", str)
outcome_key: web.RequestKey[Any] = web.RequestKey("outcome_key", object)
