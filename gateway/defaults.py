"""Core default hook implementations; ``trylast`` so any plugin's answer comes first."""

from __future__ import annotations

import json
from typing import Any

from gateway import hookimpl
from gateway.types import Client, ScimRequest


@hookimpl(trylast=True)
def scim_correlation_filter(client: Client, request: ScimRequest, resource: dict[str, Any]) -> str | None:
    if request.resource_type == "User" and isinstance(resource.get("userName"), str):
        return f"userName eq {json.dumps(resource['userName'])}"
    return ""
