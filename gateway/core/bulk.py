"""Bulk operations (RFC 7644 §3.7): bulkId references, failOnErrors, maxOperations.

Each operation runs as its own request through the normal pipeline (hooks included) and its own
transaction, as the RFC specifies: a bulk request is not atomic, each operation is.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any, Awaitable, Callable

from gateway.core import routes
from gateway.core.errors import InvalidSyntaxError, InvalidValueError, PayloadTooLargeError, ScimError
from gateway.core.schema import BULK_REQUEST_SCHEMA, BULK_RESPONSE_SCHEMA
from gateway.core.service import Result
from gateway.types import ScimRequest, Stash

RunOne = Callable[[ScimRequest], Awaitable[tuple[int, dict[str, Any] | None, dict[str, str]]]]
_BULK_REF = re.compile(r"^bulkId:(.+)$")
_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _refs(value: Any, out: set[str]) -> set[str]:
    if isinstance(value, str):
        m = _BULK_REF.match(value)
        if m:
            out.add(m.group(1))
    elif isinstance(value, dict):
        for v in value.values():
            _refs(v, out)
    elif isinstance(value, list):
        for v in value:
            _refs(v, out)
    return out


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        m = _BULK_REF.match(value)
        return ids.get(m.group(1), value) if m else value
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    return value


def _path_refs(path: str) -> set[str]:
    out: set[str] = set()
    for part in path.split("/"):
        _refs(part, out)
    return out


def _resolve_path(path: str, ids: dict[str, str]) -> str:
    return "/".join(_resolve(p, ids) for p in path.split("/"))


def _validate(body: Any, max_operations: int) -> tuple[list[dict[str, Any]], int | None]:
    if not isinstance(body, dict):
        raise InvalidSyntaxError("Bulk body must be a JSON object")
    if not any(isinstance(s, str) and s.lower() == BULK_REQUEST_SCHEMA.lower() for s in body.get("schemas") or ()):
        raise InvalidSyntaxError(f"Bulk body must list the schema {BULK_REQUEST_SCHEMA}")
    ops = body.get("Operations")
    if not isinstance(ops, list) or not ops:
        raise InvalidSyntaxError("Bulk body needs a non-empty 'Operations' array")
    if len(ops) > max_operations:
        raise PayloadTooLargeError(
            f"the bulk request has {len(ops)} operations; maxOperations is {max_operations}"
        )
    fail = body.get("failOnErrors")
    if fail is not None and (not isinstance(fail, int) or isinstance(fail, bool) or fail < 1):
        raise InvalidValueError("failOnErrors must be a positive integer")
    seen: set[str] = set()
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise InvalidSyntaxError(f"Operations[{i}] must be an object")
        method = op.get("method")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise InvalidSyntaxError(f"Operations[{i}].method must be one of POST, PUT, PATCH, DELETE")
        if not isinstance(op.get("path"), str) or not op["path"].startswith("/"):
            raise InvalidSyntaxError(f"Operations[{i}].path must be a resource path such as /Users")
        if op["path"].strip("/").split("/")[0].lower() not in routes.RESOURCE_ENDPOINTS:
            raise InvalidSyntaxError(f"Operations[{i}].path must address /Users or /Groups")
        bulk_id = op.get("bulkId")
        if method.upper() == "POST" and not isinstance(bulk_id, str):
            raise InvalidSyntaxError(f"Operations[{i}] is a POST and needs a bulkId")
        if isinstance(bulk_id, str):
            if bulk_id in seen:
                raise InvalidSyntaxError(f"bulkId {bulk_id!r} is used twice")
            seen.add(bulk_id)
    return ops, fail


async def run_bulk(parent: ScimRequest, run_one: RunOne, *, max_operations: int) -> Result:
    ops, fail_on_errors = _validate(parent.body, max_operations)
    ids: dict[str, str] = {}
    defined = {op["bulkId"] for op in ops if isinstance(op.get("bulkId"), str)}
    results: dict[int, dict[str, Any]] = {}
    pending = list(range(len(ops)))
    errors = 0
    failed_ids: set[str] = set()
    while pending:
        progressed = False
        for i in list(pending):
            op = ops[i]
            needs = _refs(op.get("data"), set()) | _path_refs(op["path"])
            if needs - ids.keys() - failed_ids and (needs - ids.keys()) & (defined - failed_ids):
                continue  # wait for a later operation to define the bulkId
            pending.remove(i)
            progressed = True
            results[i] = await _run(parent, op, ids, needs, failed_ids, run_one)
            if int(results[i]["status"]) >= 400:
                errors += 1
                if isinstance(op.get("bulkId"), str):
                    failed_ids.add(op["bulkId"])
            if fail_on_errors is not None and errors >= fail_on_errors:
                pending.clear()
                break
        if not progressed:  # the remaining operations reference each other in a cycle
            for i in pending:
                err = InvalidValueError("circular bulkId reference could not be resolved", status=409)
                results[i] = _op_result(ops[i], err.status, err.to_body(), {})
                errors += 1
            pending.clear()
    body = {"schemas": [BULK_RESPONSE_SCHEMA], "Operations": [results[i] for i in sorted(results)]}
    return Result(200, body)


async def _run(
    parent: ScimRequest, op: dict[str, Any], ids: dict[str, str], needs: set[str], failed: set[str], run_one: RunOne
) -> dict[str, Any]:
    missing = needs - ids.keys()
    if missing:
        reason = "failed" if missing & failed else "is not defined in this request"
        err = ScimError(f"bulkId {sorted(missing)[0]} {reason}", status=409, scim_type="invalidValue")
        return _op_result(op, err.status, err.to_body(), {})
    method = op["method"].upper()
    path = _resolve_path(op["path"], ids)
    route = routes.match(path)
    headers = dict(parent.headers)
    if isinstance(op.get("version"), str):
        headers["if-match"] = op["version"]
    sub = dataclasses.replace(
        parent,
        method=method,
        path=path,
        resource_type=route.resource_type if route else None,
        resource_id=route.resource_id if route else None,
        query={},
        headers=headers,
        body=_resolve(copy.deepcopy(op.get("data")), ids),
        stash=Stash(),
    )
    status, body, out_headers = await run_one(sub)
    if method == "POST" and status == 201 and body and isinstance(op.get("bulkId"), str):
        ids[op["bulkId"]] = body["id"]
    return _op_result(op, status, body if status >= 400 else None, out_headers, body)


def _op_result(
    op: dict[str, Any], status: int, error: dict[str, Any] | None, headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"method": op.get("method", "").upper()}
    if isinstance(op.get("bulkId"), str):
        out["bulkId"] = op["bulkId"]
    if body and isinstance(body.get("meta"), dict):
        out["location"] = body["meta"].get("location")
        out["version"] = body["meta"].get("version")
    elif headers.get("ETag"):
        out["version"] = headers["ETag"]
    out["status"] = str(status)
    if error is not None:
        out["response"] = error
    return out
