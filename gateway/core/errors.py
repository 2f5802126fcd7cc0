"""SCIM errors (RFC 7644 §3.12): one class per ``scimType``; the HTTP layer renders them."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A SCIM protocol error with its HTTP status, optional ``scimType`` and a detail for humans."""

    status: int = 400
    scim_type: str | None = None

    def __init__(self, detail: str, *, status: int | None = None, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if scim_type is not None:
            self.scim_type = scim_type

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


class InvalidFilterError(ScimError):
    scim_type = "invalidFilter"


class TooManyError(ScimError):
    scim_type = "tooMany"


class UniquenessError(ScimError):
    status = 409
    scim_type = "uniqueness"


class MutabilityError(ScimError):
    scim_type = "mutability"


class InvalidSyntaxError(ScimError):
    scim_type = "invalidSyntax"


class InvalidPathError(ScimError):
    scim_type = "invalidPath"


class NoTargetError(ScimError):
    scim_type = "noTarget"


class InvalidValueError(ScimError):
    scim_type = "invalidValue"


class InvalidVersionError(ScimError):
    scim_type = "invalidVers"


class SensitiveError(ScimError):
    scim_type = "sensitive"


class NotFoundError(ScimError):
    status = 404


class UnauthorizedError(ScimError):
    status = 401


class ForbiddenError(ScimError):
    status = 403


class PreconditionFailedError(ScimError):
    status = 412


class PayloadTooLargeError(ScimError):
    status = 413


class NotImplementedScimError(ScimError):
    status = 501
