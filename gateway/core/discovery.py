"""RFC 7644 §4 discovery documents: ServiceProviderConfig, ResourceTypes, Schemas. They tell the truth."""

from __future__ import annotations

import copy
from typing import Any, Iterable

from gateway.core.errors import NotFoundError
from gateway.core.schema import (
    LIST_RESPONSE_SCHEMA,
    RESOURCE_TYPE_SCHEMA,
    SPC_SCHEMA,
    all_schema_documents,
    ResourceType,
    resource_types,
)


def service_provider_config(base: str, *, max_results: int, default_page_size: int, bulk_max_operations: int,
                            max_payload: int, bulk_supported: bool) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {"supported": bulk_supported, "maxOperations": bulk_max_operations, "maxPayloadSize": max_payload},
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        # RFC 9865; cursors encode a position, not server state, so they never time out (no cursorTimeout)
        "pagination": {"cursor": True, "index": True, "defaultPaginationMethod": "index",
                       "defaultPageSize": default_page_size, "maxPageSize": max_results},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer API key",
                "description": "A tenant API key sent as 'Authorization: Bearer <key>'",
                "specUri": "https://datatracker.ietf.org/doc/html/rfc6750",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


def resource_type_documents(base: str, types: Iterable[ResourceType] | None = None) -> list[dict[str, Any]]:
    """``/ResourceTypes``: the built-in types, or ``types`` (a tenant's, with its declared extensions)."""
    out = []
    for rt in types if types is not None else resource_types():
        out.append(
            {
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": rt.name,
                "name": rt.name,
                "endpoint": rt.endpoint,
                "description": rt.description,
                "schema": rt.schema,
                "schemaExtensions": [{"schema": urn, "required": urn in rt.required_extensions} for urn in rt.extensions],
                "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{rt.name}"},
            }
        )
    return out


def schema_documents(base: str, declared: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """``/Schemas``: the built-in schema documents, then the tenant's ``declared`` extension documents."""
    out = []
    for doc in [*all_schema_documents(), *declared]:
        d = copy.deepcopy(doc)
        d["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{doc['id']}"}
        out.append(d)
    return out


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }


def find(resources: list[dict[str, Any]], key: str, what: str) -> dict[str, Any]:
    for r in resources:
        if r["id"].lower() == key.lower():
            return r
    raise NotFoundError(f"{what} {key} not found")
