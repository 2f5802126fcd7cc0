"""Response attribute projection: RFC 7644 §3.9 ``attributes``/``excludedAttributes`` and RFC 7643 §7 ``returned``.

``project`` runs on every resource the gateway returns, so the common case (no parameters) is a
precomputed check that returns the input dict itself when nothing has to go.  Plans are cached
per (resource type, attributes, excludedAttributes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.core.schema import Attribute, ResourceType

__all__ = ["default_hidden", "parse_attribute_list", "project"]

_CORE = ""  # container key of the core schema's attributes in a plan


def parse_attribute_list(text: str | None) -> list[str] | None:
    """Split the comma-separated ``attributes``/``excludedAttributes`` query parameter (RFC 7644 §3.9).

    Blank entries are dropped; ``None`` or a blank parameter gives ``None`` (no projection asked).
    """
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    names = [n for n in names if n]
    return names or None


@dataclass(slots=True)
class _Names:
    """Attribute names selected in one container (core or one extension), lowercased."""

    whole: set[str] = field(default_factory=set)  # attributes named whole
    subs: dict[str, set[str]] = field(default_factory=dict)  # attribute -> named sub-attributes


@dataclass(slots=True)
class _Selection:
    containers: dict[str, _Names] = field(default_factory=dict)  # "" for core, lowercased URN for extensions
    whole_urns: set[str] = field(default_factory=set)  # whole extensions named by their URN

    def names(self, container: str) -> _Names | None:
        return self.containers.get(container)


def _selection(rtype: ResourceType, names: tuple[str, ...]) -> _Selection:
    sel = _Selection()
    for name in names:
        urn, rest = rtype.split_urn(name)
        if name[:4].lower() == "urn:" and urn is None:
            # A URN the gateway has no schema for (an opaque custom extension): the name is either
            # the URN itself or URN:attr; it is matched against the resource's keys when projecting.
            sel.whole_urns.add(name.lower())
            continue
        if urn is not None and not rest:
            sel.whole_urns.add(urn.lower())
            continue
        container = _CORE if urn is None or urn == rtype.schema else urn.lower()
        head, _, sub = rest.partition(".")
        if urn is None and head.lower() not in rtype.attributes:
            # As in filters and PATCH paths: a name only one extension defines may omit its URN (RFC 7644 §3.10).
            owners = [u for u, attrs in rtype.extensions.items() if head.lower() in attrs]
            if len(owners) == 1:
                container = owners[0].lower()
        entry = sel.containers.setdefault(container, _Names())
        if sub:
            entry.subs.setdefault(head.lower(), set()).add(sub.lower())
        else:
            entry.whole.add(head.lower())
    return sel


@dataclass(slots=True)
class _Plan:
    rtype: ResourceType  # kept so the id() in the cache key cannot be reused by another object
    include: _Selection | None
    exclude: _Selection | None
    fast_drop: tuple[str, ...]  # top-level keys to drop when there are no parameters
    fast_ext_drop: dict[str, tuple[str, ...]]  # extension URN -> keys to drop
    fast_ok: bool  # False when some sub-attribute is returned never/request: take the slow path


_PLANS: dict[tuple[int, tuple[str, ...] | None, tuple[str, ...] | None], _Plan] = {}
_MAX_PLANS = 4096


def _hidden_by_default(attr: Attribute) -> bool:
    return attr.returned in ("never", "request")


def _plan(rtype: ResourceType, attributes: tuple[str, ...] | None, excluded: tuple[str, ...] | None) -> _Plan:
    key = (id(rtype), attributes, excluded)
    plan = _PLANS.get(key)
    if plan is not None and plan.rtype is rtype:
        return plan
    fast_drop = tuple(a.name for a in rtype.attributes.values() if _hidden_by_default(a))
    fast_ext = {
        urn: drops
        for urn, attrs in rtype.extensions.items()
        if (drops := tuple(a.name for a in attrs.values() if _hidden_by_default(a)))
    }
    all_attrs = [*rtype.attributes.values(), *(a for attrs in rtype.extensions.values() for a in attrs.values())]
    fast_ok = not any(_hidden_by_default(s) for a in all_attrs for s in a.sub_attributes.values())
    plan = _Plan(
        rtype=rtype,
        include=_selection(rtype, attributes) if attributes else None,
        exclude=_selection(rtype, excluded) if excluded else None,
        fast_drop=fast_drop,
        fast_ext_drop=fast_ext,
        fast_ok=fast_ok,
    )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()  # attribute lists come from clients: bound the cache, simply
    _PLANS[key] = plan
    return plan


def default_hidden(rtype: ResourceType) -> tuple[str, ...] | None:
    """The top-level attributes a response with neither ``attributes`` nor ``excludedAttributes`` leaves
    out (``returned: never/request``), or None when that default projection needs more than dropping
    top-level keys (a hidden sub-attribute)."""
    plan = _plan(rtype, None, None)
    return plan.fast_drop if plan.fast_ok else None


def project(
    resource: dict[str, Any],
    rtype: ResourceType,
    *,
    attributes: list[str] | None = None,
    excluded: list[str] | None = None,
) -> dict[str, Any]:
    """Return ``resource`` as a response shows it.

    ``returned: always`` attributes (``id``, ``schemas``) are always present; ``never``
    (``password``) never; ``default`` unless excluded or another attribute list was asked for;
    ``request`` only when named in ``attributes``.  Names are case-insensitive and may be
    ``attr.sub``, URN-qualified, or a whole extension URN; ``excludedAttributes`` has no effect on
    ``always`` attributes (RFC 7644 §3.9).  Extension objects left empty are dropped.  With no
    parameters, the input dict itself is returned when nothing needs removing (do not mutate it).
    """
    plan = _plan(rtype, tuple(attributes) if attributes else None, tuple(excluded) if excluded else None)
    if plan.include is None and plan.exclude is None and plan.fast_ok:
        out = resource
        for name in plan.fast_drop:
            if name in out:
                if out is resource:
                    out = dict(resource)
                del out[name]
        for urn, drops in plan.fast_ext_drop.items():
            ext = out.get(urn)
            if isinstance(ext, dict) and any(d in ext for d in drops):
                if out is resource:
                    out = dict(resource)
                out[urn] = {k: v for k, v in ext.items() if k not in drops}
                if not out[urn]:
                    del out[urn]
        return out
    return _project_slow(resource, rtype, plan)


def _project_slow(resource: dict[str, Any], rtype: ResourceType, plan: _Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in resource.items():
        if key[:4].lower() == "urn:":
            urn = rtype.canonical_urn(key)
            if urn is not None and urn in rtype.extensions and isinstance(value, dict):
                projected = _container(value, rtype.extensions[urn], urn.lower(), plan)
            else:
                projected = _opaque(key, value, plan)
            if projected is not None and projected != {}:
                out[key] = projected
            continue
        attr = rtype.attributes.get(key.lower())
        kept = _attribute(key, value, attr, _CORE, plan, container_named=False)
        if kept is not _DROP:
            out[key] = kept
    schemas = out.get("schemas")
    if isinstance(schemas, list):
        # RFC 7643 §3: "schemas" names the schemas of the attributes present; drop extensions projected away.
        core = rtype.schema.lower()
        out["schemas"] = [s for s in schemas if not isinstance(s, str) or s.lower() == core or _present(s, out)]
    return out


def _present(urn: str, out: dict[str, Any]) -> bool:
    low = urn.lower()
    return any(k.lower() == low for k in out)


class _Drop:
    pass


_DROP = _Drop()


def _opaque(key: str, value: Any, plan: _Plan) -> Any:
    """A custom extension without schema: default-returned, named only by its URN or URN:attr."""
    low = key.lower()
    if plan.exclude is not None and low in plan.exclude.whole_urns:
        return None
    if plan.include is None:
        if plan.exclude is not None and isinstance(value, dict):
            return {k: v for k, v in value.items() if f"{low}:{k.lower()}" not in plan.exclude.whole_urns}
        return value
    if low in plan.include.whole_urns:
        return value
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if f"{low}:{k.lower()}" in plan.include.whole_urns}
    return None


def _container(value: dict[str, Any], attrs: dict[str, Attribute], container: str, plan: _Plan) -> dict[str, Any]:
    named = plan.include is not None and container in plan.include.whole_urns
    excluded_whole = plan.exclude is not None and container in plan.exclude.whole_urns
    out: dict[str, Any] = {}
    for key, v in value.items():
        attr = attrs.get(key.lower())
        if excluded_whole and (attr is None or attr.returned != "always"):
            continue
        kept = _attribute(key, v, attr, container, plan, container_named=named)
        if kept is not _DROP:
            out[key] = kept
    return out


def _attribute(key: str, value: Any, attr: Attribute | None, container: str, plan: _Plan, *, container_named: bool) -> Any:
    returned = attr.returned if attr is not None else "default"
    if returned == "never":
        return _DROP
    low = key.lower()
    if returned == "always":
        return _subs(value, attr, None, None)
    inc = plan.include.names(container) if plan.include is not None else None
    if plan.include is not None:
        if container_named and returned != "request":
            pass
        elif inc is not None and low in inc.whole:
            pass
        elif inc is not None and low in inc.subs:
            return _subs(value, attr, inc.subs[low], None) if attr is not None else _DROP
        else:
            return _DROP
    elif returned == "request":
        return _DROP
    exc = plan.exclude.names(container) if plan.exclude is not None else None
    if exc is not None:
        if low in exc.whole:
            return _DROP
        if low in exc.subs:
            return _subs(value, attr, None, exc.subs[low])
    return _subs(value, attr, None, None)


def _subs(value: Any, attr: Attribute | None, only: set[str] | None, without: set[str] | None) -> Any:
    """Apply sub-attribute selection to a complex value (or each element of a multi-valued one)."""
    if attr is None or not attr.sub_attributes:
        return value
    hidden = {n for n, s in attr.sub_attributes.items() if s.returned == "never"}
    on_request = any(s.returned == "request" for s in attr.sub_attributes.values())
    if only is None and not hidden and not on_request and not without:
        return value

    def keep(name: str) -> bool:
        low = name.lower()
        sub = attr.sub(low) if attr is not None else None
        if low in hidden:
            return False
        if sub is not None and sub.returned == "always":
            return True
        if only is not None:
            return low in only
        if sub is not None and sub.returned == "request":
            return False
        return not (without and low in without)

    def one(obj: Any) -> Any:
        if not isinstance(obj, dict):
            return obj
        return {k: v for k, v in obj.items() if keep(k)}

    if isinstance(value, list):
        items = [one(e) for e in value]
        items = [e for e in items if e != {}]
        return items if items else _DROP
    projected = one(value)
    return projected if projected != {} else _DROP
