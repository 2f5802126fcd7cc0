"""POST/PUT bodies into stored ``data`` documents (RFC 7643 §2, §7; RFC 7644 §3.3, §3.5.1).

The stored document (see :mod:`gateway.store.rows`) holds the resource with canonical attribute
names, extension attributes under their canonical schema URN key, and a ``schemas`` list derived
from what is present; it never holds ``id``, ``meta``, ``groups``, ``members`` or ``password``.

The value checks here (:func:`check_value`, :func:`enforce_single_primary`, :func:`derive_schemas`)
are shared with :mod:`gateway.core.patch` so both write paths accept and reject the same values.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from gateway.core.errors import InvalidValueError, MutabilityError
from gateway.core.schema import GROUP_SCHEMA, Attribute, ResourceType, group_type

__all__ = [
    "UNASSIGNED",
    "Prepared",
    "check_value",
    "check_members",
    "derive_schemas",
    "dedupe",
    "enforce_single_primary",
    "freeze",
    "merge_multi",
    "prepare_write",
    "is_unassigned",
]


class _Unassigned:
    """Sentinel for "no value": JSON null, ``[]`` and ``{}`` are all unassigned (RFC 7643 §2.5)."""

    _instance: "_Unassigned | None" = None

    def __new__(cls) -> "_Unassigned":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNASSIGNED"

    def __bool__(self) -> bool:
        return False


UNASSIGNED: Final = _Unassigned()

# Attributes the gateway keeps out of ``data``: id/meta are columns, groups is computed from
# membership rows, members are rows, password is never stored (only ``password_set`` is reported).
_NOT_STORED = frozenset({"id", "meta", "groups", "members", "password", "schemas"})

# Attributes clients echo back from a GET: readOnly and ignored, not worth reporting as ignored.
_ECHOED = frozenset({"id", "meta", "schemas", "groups"})

# xsd:dateTime as RFC 7643 §2.3.5 requires it: a full date and time; the zone is optional in xsd.
_DATETIME_RE = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


@dataclass(frozen=True, slots=True)
class Prepared:
    """The outcome of :func:`prepare_write`.

    ``data`` is the document to store.  ``members`` is ``None`` when the body did not mention
    ``members`` (a PUT then leaves the rows alone or clears them: the caller's policy), otherwise
    the validated member list (``[]`` for ``null``/``[]``: clear).  ``password_set`` tells whether
    the body carried a password (the caller hashes or forwards it; it is never stored here).
    """

    data: dict[str, Any]
    members: list[dict[str, Any]] | None
    password_set: bool
    ignored: tuple[str, ...] = ()  # attributes the schema does not define, or readOnly ones (RFC 7644 §3.3)


def is_unassigned(value: Any) -> bool:
    """True for JSON null, empty list, empty object: all mean "unassigned" (RFC 7643 §2.5)."""
    return value is None or value is UNASSIGNED or value == [] or value == {}


# Errors quote the offending value to help client developers, except where it may be a credential:
# error bodies and the activity log must never carry a password or a secret.
_SECRET_WORDS = ("password", "secret", "token", "credential", "apikey", "api_key", "privatekey")


def _shown(path: str, value: Any) -> str:
    leaf = path.rsplit(":", 1)[-1].lower()
    if any(word in leaf for word in _SECRET_WORDS):
        return f"{type(value).__name__} (value not shown)"
    return f"{type(value).__name__} {value!r:.60}"


def _fail(path: str, expected: str, value: Any) -> InvalidValueError:
    return InvalidValueError(f"Attribute '{path}' must be {expected}, got {_shown(path, value)}")


def _check_scalar(attr: Attribute, value: Any, path: str) -> Any:
    t = attr.type
    if t in ("string", "reference"):
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
        return value
    if t == "boolean":
        if isinstance(value, str):
            # RFC 7643 §2.3.2: a boolean is the JSON literal, so "True"/"false" strings are refused.
            raise InvalidValueError(
                f"Attribute '{path}' must be a JSON boolean (true or false, unquoted), got "
                f"{_shown(path, value)} (RFC 7643 §2.3.2)"
            )
        if not isinstance(value, bool):
            raise _fail(path, "a JSON boolean (true or false)", value)
        return value
    if t == "integer":
        # bool is an int subclass in Python but a distinct JSON type.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "an integer", value)
        return value
    if t == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, "a number", value)
        return value
    if t == "dateTime":
        if not isinstance(value, str) or not _DATETIME_RE.match(value):
            raise _fail(path, "an xsd:dateTime string", value)
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(path, "a valid xsd:dateTime", value) from None
        return value
    if t == "binary":
        if not isinstance(value, str):
            raise _fail(path, "a base64 string", value)
        try:
            base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _fail(path, "base64-encoded", value) from None
        return value
    # Unknown attribute types in a schema document: accept as given rather than refuse data.
    return value


def _complex_shape(attr: Attribute, path: str, value: Any) -> InvalidValueError:
    """A scalar or array where a single complex value belongs, e.g. a bare id for ``manager``."""
    if attr.name == "manager" and attr.sub("value") is not None:
        # RFC 7643 §4.3: the enterprise manager is complex; its id goes in "value".
        return InvalidValueError(
            f"Attribute '{path}' is complex and needs an object {{\"value\": \"<manager id>\"}}, "
            f"got {_shown(path, value)} (RFC 7643 §4.3)"
        )
    return InvalidValueError(
        f"Attribute '{path}' is complex and needs a JSON object of its sub-attributes, "
        f"got {_shown(path, value)} (RFC 7643 §2.3.8)"
    )


def _check_complex(attr: Attribute, value: Any, path: str, *, writable_only: bool) -> Any:
    if not isinstance(value, dict):
        raise _complex_shape(attr, path, value)
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None:
            # Unknown sub-attribute: ignored, for the same reason as unknown attributes (RFC 7644 §3.3,
            # "the server is free to alter and/or ignore POSTed content").
            continue
        if writable_only and sub.mutability == "readOnly":
            continue  # RFC 7643 §7: readOnly values in a request SHALL be ignored.
        checked = _check_single(sub, sub_value, f"{path}.{sub.name}")
        if sub.mutability == "writeOnly":
            continue  # validated, never kept: nothing could ever return it, and events must not carry it
        if checked is UNASSIGNED:
            continue
        if sub.name in out:
            raise InvalidValueError(f"Attribute '{path}.{sub.name}' is given twice (names are case-insensitive)")
        out[sub.name] = checked
    # Required sub-attributes are not enforced: none is required in the published schemas (RFC 7643
    # §8.7.1 makes manager.value and manager.$ref optional, and IdPs send only manager.value).
    return out if out else UNASSIGNED


def _check_single(attr: Attribute, value: Any, path: str, *, writable_only: bool = True) -> Any:
    if value is None:
        return UNASSIGNED
    if attr.is_complex:
        return _check_complex(attr, value, path, writable_only=writable_only)
    return _check_scalar(attr, value, path)


def check_value(attr: Attribute, value: Any, path: str, *, writable_only: bool = True) -> Any:
    """Validate ``value`` against ``attr`` and return it normalised, or :data:`UNASSIGNED`.

    Normalised means: canonical sub-attribute names, unknown and (with ``writable_only``) readOnly
    sub-attributes dropped, JSON nulls dropped, identical duplicate values of a multi-valued
    attribute collapsed.  A type mismatch raises :class:`InvalidValueError` naming ``path``;
    more than one ``primary: true`` in a multi-valued attribute is an error (RFC 7643 §2.4 "MUST
    appear no more than once").
    """
    if value is None:
        return UNASSIGNED
    if not attr.multi_valued:
        if isinstance(value, list):
            if attr.is_complex:
                raise _complex_shape(attr, path, value)
            raise _fail(path, "a single value", value)
        return _check_single(attr, value, path, writable_only=writable_only)
    if not isinstance(value, list):
        raise _fail(path, "an array", value)
    out: list[Any] = []
    seen: set[Any] = set()  # frozen values: the duplicate check is a set lookup, never a scan of ``out``
    for item in value:
        if isinstance(item, list):
            raise _fail(path, "an array of single values", item)
        checked = _check_single(attr, item, path, writable_only=writable_only)
        if checked is UNASSIGNED:
            continue
        key = freeze(checked)
        if key in seen:
            continue
        seen.add(key)
        out.append(checked)
    if attr.is_complex and sum(1 for e in out if e.get("primary") is True) > 1:
        raise InvalidValueError(f"Attribute '{path}' has more than one primary value")
    return out if out else UNASSIGNED


def freeze(value: Any) -> Any:
    """A hashable stand-in for a JSON value with the same equality as ``==`` (object key order ignored).

    Duplicate checks over multi-valued attributes use sets of these, so they stay linear in the
    number of values instead of comparing every value with every other.
    """
    if isinstance(value, dict):
        return (0, frozenset((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return (1, tuple(freeze(v) for v in value))
    return value


def dedupe(values: list[Any]) -> list[Any]:
    """``values`` without repeats (first occurrence kept) and without empty objects, in linear time."""
    return [v for v in dedupe_keep_empty(values) if v != {}]


def dedupe_keep_empty(values: list[Any]) -> list[Any]:
    """``values`` without repeats, first occurrence kept, using :func:`freeze` keys."""
    kept: set[Any] = set()
    out: list[Any] = []
    for v in values:
        key = freeze(v)
        if key not in kept:
            kept.add(key)
            out.append(v)
    return out


def enforce_single_primary(elements: list[Any], new_primary: Any) -> None:
    """Clear ``primary`` on every element except ``new_primary`` (RFC 7643 §2.4: at most one)."""
    for e in elements:
        if e is not new_primary and isinstance(e, dict) and e.get("primary") is True:
            del e["primary"]


def merge_multi(existing: list[Any], added: list[Any]) -> list[Any]:
    """Append ``added`` to ``existing`` without duplicating identical values (RFC 7644 §3.5.2.1).

    When an added element is primary, the previous primary loses the flag (RFC 7643 §2.4); when
    several added elements are, the last one wins, as if they had been added one by one.
    """
    out = list(existing)
    seen = {freeze(e) for e in out}
    last_primary: Any = None
    for item in added:
        key = freeze(item)
        if key in seen:
            continue
        seen.add(key)
        out.append(item)
        if isinstance(item, dict) and item.get("primary") is True:
            last_primary = item
    if last_primary is not None:
        enforce_single_primary(out, last_primary)
        # an element that lost its flag may now equal a later one: keep the first, as one-by-one adds would
        out = dedupe_keep_empty(out)
    return out


def check_members(value: Any, path: str = "members") -> list[dict[str, Any]]:
    """Validate a Group ``members`` value (array of ``{value, $ref, type, display}``) for the row store."""
    attr = group_type().attributes["members"]
    checked = check_value(attr, value, path, writable_only=False)
    if checked is UNASSIGNED:
        return []
    for m in checked:
        if not isinstance(m.get("value"), str) or not m["value"]:
            raise InvalidValueError(f"Each '{path}' element needs a non-empty 'value' (the member id)")
    return list(checked)


def derive_schemas(data: dict[str, Any], rtype: ResourceType, extra_urns: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The ``schemas`` value for ``data``: the core URN plus every extension URN present (RFC 7643 §3)."""
    urns = {rtype.schema: None}  # an ordered set: a body with thousands of extension keys stays linear
    for key in data:
        if key[:4].lower() == "urn:":
            urns.setdefault(key)
    for urn in (*rtype.required_extensions, *extra_urns):
        urns.setdefault(urn)
    return list(urns)


def _check_schemas(body: dict[str, Any], rtype: ResourceType) -> dict[str, str]:
    """Validate ``schemas`` and return ``{lowercased URN: URN as spelled}`` for every listed URN."""
    raw = None
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == "schemas":
            raw = value
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise InvalidValueError(f"'schemas' must be an array of URIs including '{rtype.schema}'")
    listed = {s.lower(): (rtype.canonical_urn(s) or s) for s in raw}
    if rtype.schema.lower() not in listed:
        raise InvalidValueError(f"'schemas' must include '{rtype.schema}'")
    for urn in rtype.required_extensions:
        if urn.lower() not in listed:
            raise InvalidValueError(f"'schemas' must include the required extension '{urn}'")
    return listed


def _longest_prefix_urn(low: str, urns: dict[str, str]) -> str | None:
    """The longest listed URN equal to ``low`` or followed in it by ``:``; one dict lookup per colon."""
    end = len(low)
    while end > 4:
        found = urns.get(low[:end])
        if found is not None:
            return found
        end = low.rfind(":", 0, end)
    return None


def _put(target: dict[str, Any], name: str, value: Any, path: str) -> None:
    if name in target:
        # Two keys differing only in case (or given plain and URN-qualified) name the same attribute.
        raise InvalidValueError(f"Attribute '{path}' is given more than once")
    target[name] = value


def prepare_write(body: dict[str, Any], rtype: ResourceType, *, existing: dict[str, Any] | None = None) -> Prepared:
    """Turn a POST or PUT body into the stored ``data`` document.

    ``existing`` is the stored ``data`` of the resource a PUT replaces; immutable attributes that
    already have a value must then be given unchanged (RFC 7644 §3.5.1) and are kept when omitted.

    Raises :class:`InvalidValueError` (wrong type, missing required attribute, bad ``schemas``)
    and :class:`MutabilityError` (changed immutable attribute).
    """
    if not isinstance(body, dict):
        raise InvalidValueError("The request body must be a JSON object")
    listed = _check_schemas(body, rtype)
    core: dict[str, Any] = {}
    exts: dict[str, dict[str, Any]] = {}  # canonical URN -> attributes
    password_set = False
    members: list[dict[str, Any]] | None = None
    ignored: list[str] = []

    def _core_attr(key: str, value: Any) -> None:
        nonlocal password_set, members
        attr = rtype.attributes.get(key.lower())
        if attr is None:
            # RFC 7644 §3.3 lets the server "alter and/or ignore POSTed content" (the response
            # shows what was kept), and IdPs routinely send attributes a target lacks: ignore
            # unknown attributes of known schemas instead of failing the whole provisioning call.
            ignored.append(key)
            return
        if attr.name == "schemas":
            return
        if attr.name == "password" and attr.mutability == "writeOnly":
            if value is not None:
                check_value(attr, value, attr.name)
                password_set = True
            return
        if attr.name == "members" and rtype.schema == GROUP_SCHEMA:
            members = check_members(value)
            return
        if attr.mutability == "readOnly":
            if attr.name not in _ECHOED:
                ignored.append(attr.name)
            return  # RFC 7643 §7 / RFC 7644 §3.3: readOnly values in a request SHALL be ignored.
        checked = check_value(attr, value, attr.name)
        if checked is not UNASSIGNED:
            _put(core, attr.name, checked, attr.name)

    def _ext_attr(urn: str, key: str, value: Any) -> None:
        attrs = rtype.extensions.get(urn)
        target = exts.setdefault(urn, {})
        if attrs is None:
            # A custom extension the gateway has no schema for: stored opaquely, as given.
            if value is not None:
                _put(target, key, value, f"{urn}:{key}")
            return
        attr = attrs.get(key.lower())
        if attr is None or attr.mutability == "readOnly":
            ignored.append(f"{urn}:{attr.name if attr else key}")
            return  # unknown (RFC 7644 §3.3, see above) or readOnly (RFC 7643 §7): ignored
        checked = check_value(attr, value, f"{urn}:{attr.name}")
        if checked is not UNASSIGNED and attr.mutability != "writeOnly":
            # a writeOnly value is validated and dropped, as password is: stored, it would reach events
            _put(target, attr.name, checked, f"{urn}:{attr.name}")

    def _listed_urn(urn: str, path: str) -> None:
        # RFC 7643 §3: "schemas" lists the URIs of the schemas that define the attributes present.
        if urn.lower() not in listed:
            raise InvalidValueError(f"'{path}' uses extension '{urn}', which is not listed in 'schemas'")

    custom_urns = {lu: u for lu, u in listed.items() if rtype.canonical_urn(u) is None}
    for key, value in body.items():
        if not isinstance(key, str):
            continue
        if key[:4].lower() != "urn:":
            _core_attr(key, value)
            continue
        urn, rest = rtype.split_urn(key)
        if urn is None:
            # Not a URN the resource type knows: a custom extension object, or an attribute
            # qualified by a custom extension URN listed in "schemas".
            low = key.lower()
            custom = _longest_prefix_urn(low, custom_urns)
            if custom is None:
                raise InvalidValueError(f"'{key}' uses a schema that is not listed in 'schemas'")
            if len(key) == len(custom):
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise _fail(key, "an object", value)
                for k, v in value.items():
                    _ext_attr(custom, k, v)
            else:
                _ext_attr(custom, key[len(custom) + 1 :], value)
            continue
        if urn == rtype.schema:
            if rest:
                _core_attr(rest, value)
            continue  # the core URN as a key carries nothing the gateway stores
        _listed_urn(urn, key)
        if rest:
            if "." in rest:
                _ext_dotted(rtype, exts, urn, rest, value)
            else:
                _ext_attr(urn, rest, value)
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            raise _fail(key, "an object", value)
        for k, v in value.items():
            if isinstance(k, str):
                _ext_attr(urn, k, v)

    data: dict[str, Any] = core
    for urn, attrs in exts.items():
        if attrs:
            data[urn] = attrs

    for attrs, prefix in [(rtype.attributes, ""), *((a, f"{u}:") for u, a in rtype.extensions.items())]:
        holder = data if not prefix else data.get(prefix[:-1])
        if holder is None:
            if prefix[:-1] not in rtype.required_extensions:
                continue  # an optional extension that is absent: its required attributes do not bind
            holder = {}
        for attr in attrs.values():
            if attr.required and attr.mutability != "readOnly" and attr.name not in _NOT_STORED:
                v = holder.get(attr.name)
                if v is None or (isinstance(v, str) and not v.strip()):
                    raise InvalidValueError(f"Attribute '{prefix}{attr.name}' is required")

    if existing is not None:
        _check_immutable(data, existing, rtype)
    data["schemas"] = derive_schemas(data, rtype)
    return Prepared(data=data, members=members, password_set=password_set, ignored=tuple(dict.fromkeys(ignored)))


def _ext_dotted(rtype: ResourceType, exts: dict[str, dict[str, Any]], urn: str, rest: str, value: Any) -> None:
    """``urn:...:manager.value`` as a top-level body key: set one sub-attribute of an extension attribute."""
    head, _, sub_name = rest.partition(".")
    attr = rtype.extensions[urn].get(head.lower())
    sub = attr.sub(sub_name) if attr is not None else None
    if attr is None or sub is None or attr.multi_valued or sub.mutability == "readOnly":
        return
    checked = check_value(sub, value, f"{urn}:{attr.name}.{sub.name}")
    if checked is UNASSIGNED:
        return
    target = exts.setdefault(urn, {}).setdefault(attr.name, {})
    _put(target, sub.name, checked, f"{urn}:{attr.name}.{sub.name}")


def _check_immutable(data: dict[str, Any], existing: dict[str, Any], rtype: ResourceType) -> None:
    """RFC 7644 §3.5.1: an immutable attribute with a value must be given unchanged (kept when omitted)."""
    containers: list[tuple[dict[str, Attribute], dict[str, Any], dict[str, Any], str]] = [
        (rtype.attributes, data, existing, "")
    ]
    for urn, attrs in rtype.extensions.items():
        old = existing.get(urn)
        if isinstance(old, dict):
            containers.append((attrs, data.setdefault(urn, {}), old, f"{urn}:"))
    for attrs, new, old, prefix in containers:
        for attr in attrs.values():
            if attr.name in _NOT_STORED:
                continue
            if attr.mutability == "immutable" and attr.name in old:
                if attr.name not in new:
                    new[attr.name] = old[attr.name]
                elif new[attr.name] != old[attr.name]:
                    raise MutabilityError(f"Attribute '{prefix}{attr.name}' is immutable")
            elif attr.is_complex and not attr.multi_valued and isinstance(old.get(attr.name), dict):
                for sub in attr.sub_attributes.values():
                    if sub.mutability != "immutable" or sub.name not in old[attr.name]:
                        continue
                    target = new.setdefault(attr.name, {})
                    if sub.name not in target:
                        target[sub.name] = old[attr.name][sub.name]
                    elif target[sub.name] != old[attr.name][sub.name]:
                        raise MutabilityError(f"Attribute '{prefix}{attr.name}.{sub.name}' is immutable")
    for urn in rtype.extensions:
        if data.get(urn) == {}:
            del data[urn]
