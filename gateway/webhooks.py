"""Webhook signatures, for the application that receives the gateway's webhooks (and for the gateway).

Every delivery carries ``Scim-Gateway-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256 keyed with the endpoint's secret over ``"<t>.<raw body>"``. A receiver checks it with::

    from gateway.webhooks import verify

    if not verify(secret, request.headers["Scim-Gateway-Signature"], raw_body):
        return 400  # not from the gateway, altered, or replayed later than the tolerance

Verify the raw bytes as received, before parsing the JSON. This module needs nothing but the
standard library, so a receiver may also copy it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Scim-Gateway-Signature"
EVENT_ID_HEADER = "Scim-Gateway-Event-Id"
EVENT_TYPE_HEADER = "Scim-Gateway-Event-Type"
DEFAULT_TOLERANCE_SECONDS = 300


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def signature(secret: str, body: bytes | str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    return hmac.new(secret.encode(), str(int(timestamp)).encode() + b"." + _as_bytes(body), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes | str, timestamp: int | None = None) -> str:
    """The ``Scim-Gateway-Signature`` header value for ``body`` (now, unless ``timestamp`` is given)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={signature(secret, body, t)}"


def verify(
    secret: str,
    signature_header: str | None,
    body: bytes | str,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``signature_header`` is the gateway's signature of ``body`` under ``secret``, made recently.

    False for a missing or malformed header, a timestamp more than ``tolerance_seconds`` away from
    now (a replay), or no ``v1`` signature matching. Signatures are compared in constant time.
    """
    if not secret or not signature_header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in signature_header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    moment = time.time() if now is None else now
    if abs(moment - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, body, timestamp).encode()
    matched = False
    for candidate in candidates:  # every candidate is compared: no early exit to time
        matched |= hmac.compare_digest(expected, candidate.encode("ascii", "replace"))
    return matched


__all__ = ["EVENT_ID_HEADER", "EVENT_TYPE_HEADER", "SIGNATURE_HEADER", "sign", "signature", "verify"]
