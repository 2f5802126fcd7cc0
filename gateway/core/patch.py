"""RFC 7644 §3.5.2 PATCH applied to a stored ``data`` document.

The request is atomic: operations run in order on a deep copy, and any error propagates before
anything is returned, so the caller's dict is never touched.  Group ``members`` live in rows, not
in ``data``: member operations are folded into a :class:`MemberChanges` the store applies as
row DELETE/INSERTs without reading the member list first.

Where the RFC leaves room, the choices taken are (each also commented where it is made):

* filtered add/replace of a sub-attribute that matches nothing creates the element from the
  filter's ``eq`` comparisons (Entra ID and Okta send ``emails[type eq "work"].value`` to set a
  first work email); RFC 7644 §3.5.2.3 would answer ``noTarget`` for replace.  A filtered replace
  *without* sub-attribute, and a filtered remove, that match nothing are ``noTarget``
  (§3.5.2.3, §3.12).
* removing an unassigned attribute without filter is a successful no-op (idempotent retries).
* readOnly attributes named in a path are ``mutability`` errors (§3.5.2); inside a path-less
  value object they are ignored like in a POST body (RFC 7643 §7), so clients that echo ``id`` or
  ``meta`` back (Okta does) keep working.
* removing a required attribute is ``mutability`` (§3.5.2.2, last paragraph); replacing it with
  null/empty is ``invalidValue`` like a POST without it.
* ``remove`` of a multi-valued attribute (``members`` too) with a ``value`` is ``invalidValue``:
  §3.5.2.2 selects values with a filter in ``path``, and guessing either "remove these" or
  "remove all" could silently drop data.
* values are type-checked as sent: a string for a boolean (RFC 7643 §2.3.2) and a bare id or
  array for a single complex attribute such as ``manager`` (§4.3) are ``invalidValue``.  Only
  RFC-level leniency is kept for every client: case-insensitive names and ``op``, a single
  element for an array, and no-path values whose keys are dotted or URN-qualified paths.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable

from gateway.core.errors import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
)
from gateway.core.errors import InvalidFilterError
from gateway.core.filter import And, AttrPath, Compare, Node, Or, matches_value, parse_patch_path
from gateway.core.resource import (
    UNASSIGNED,
    check_members,
    check_value,
    dedupe,
    derive_schemas,
    enforce_single_primary,
    merge_multi,
)
from gateway.core.schema import GROUP_SCHEMA, Attribute, ResourceType

__all__ = ["MemberChanges", "PatchOutcome", "apply_patch", "element_matches", "member_matches"]

_OPS = ("add", "replace", "remove")


@dataclass(slots=True)
class MemberChanges:
    """Group membership edits of one PATCH, normalised so the store can apply them in this order:

    1. when ``remove_all`` or ``replace_all is not None``: delete every member row;
    2. insert ``replace_all``;
    3. delete the rows whose id is in ``remove_ids`` or that match a node of ``remove_filter``
       (inner filters of ``members[...]``, evaluated against ``{value, type, display}``);
    4. insert ``add`` (ignoring rows that already exist).

    Operations are folded as they come, so this order gives the same result as applying them
    one by one: a remove drops matching pending inserts, and after a clear-all, later removes
    only edit the pending lists.
    """

    add: list[dict[str, Any]] = field(default_factory=list)
    remove_ids: list[str] = field(default_factory=list)
    remove_filter: list[Node] = field(default_factory=list)
    replace_all: list[dict[str, Any]] | None = None
    remove_all: bool = False

    @property
    def cleared(self) -> bool:
        return self.remove_all or self.replace_all is not None


@dataclass(frozen=True, slots=True)
class PatchOutcome:
    """``data``: the patched document to store; ``members``: membership edits (Groups, or None when the
    request had no member operation); ``changed``: whether ``data`` differs from the input;
    ``password_set``: whether an operation set ``password`` (never stored in ``data``)."""

    data: dict[str, Any]
    members: MemberChanges | None
    changed: bool
    password_set: bool = False
    ignored: tuple[str, ...] = ()  # attributes of no-path values the schema does not define, or readOnly ones


class _MemberFold:
    """Member operations folded as they come, keyed by member id so each operation costs its own size.

    The semantics are :class:`MemberChanges`' (a remove drops matching pending inserts; after a
    clear-all, later removes only edit the pending lists); dicts instead of lists keep a PATCH of
    thousands of members, or of thousands of one-member operations, linear.
    """

    __slots__ = ("add", "replace_all", "removed", "remove_filter", "remove_all")

    def __init__(self) -> None:
        self.add: dict[str, dict[str, Any]] = {}
        self.replace_all: dict[str, dict[str, Any]] | None = None
        self.removed: dict[str, None] = {}
        self.remove_filter: list[Node] = []
        self.remove_all = False

    @property
    def cleared(self) -> bool:
        return self.remove_all or self.replace_all is not None

    def add_members(self, items: list[dict[str, Any]]) -> None:
        target = self.replace_all if self.replace_all is not None else self.add
        for m in items:
            target.setdefault(m["value"], m)

    def replace_with(self, items: list[dict[str, Any]]) -> None:
        self.replace_all = {}
        for m in items:
            self.replace_all.setdefault(m["value"], m)
        self.add, self.removed, self.remove_filter, self.remove_all = {}, {}, [], False

    def clear(self) -> None:
        self.remove_all, self.replace_all = True, None
        self.add, self.removed, self.remove_filter = {}, {}, []

    def remove_ids(self, ids: list[str]) -> None:
        for i in ids:
            self.add.pop(i, None)
            if self.replace_all is not None:
                self.replace_all.pop(i, None)
            if not self.cleared:
                self.removed[i] = None

    def remove_matching(self, node: Node, test: Any) -> None:
        self.add = {k: m for k, m in self.add.items() if not test(m)}
        if self.replace_all is not None:
            self.replace_all = {k: m for k, m in self.replace_all.items() if not test(m)}
        if not self.cleared:
            self.remove_filter.append(node)

    def result(self) -> MemberChanges:
        return MemberChanges(
            add=list(self.add.values()),
            remove_ids=list(self.removed),
            remove_filter=list(self.remove_filter),
            replace_all=list(self.replace_all.values()) if self.replace_all is not None else None,
            remove_all=self.remove_all,
        )


# ----------------------------------------------------------------------------------------------
# element-level filter evaluation (the inner filter of a value path, against one element)


def _sub_name(path: AttrPath, parent: Attribute | None) -> str:
    """The element key a filter path names: ``type`` in ``emails[type eq "work"]`` (or ``emails.type``)."""
    if path.sub and parent is not None and path.attr.lower() == parent.name.lower():
        return path.sub
    return f"{path.attr}.{path.sub}" if path.sub else path.attr


def element_matches(node: Node, element: Any, attr: Attribute) -> bool:
    """Whether one value of ``attr`` matches the inner filter of a value path (``emails[type eq "work"]``).

    Delegates to :func:`gateway.core.filter.matches_value`, so PATCH selects values with exactly the
    semantics of ``GET ?filter=``; a filter the RFC rules out is reported as ``invalidPath``
    (RFC 7644 §3.12: the path is invalid), not ``invalidFilter``.
    """
    if not isinstance(element, dict):
        return False
    try:
        return matches_value(node, element, attr)
    except InvalidFilterError as exc:
        raise InvalidPathError(exc.detail) from None


def member_matches(node: Node, member: dict[str, Any], rtype: ResourceType) -> bool:
    """Whether a stored member (``{value, type, display}``) matches a :attr:`MemberChanges.remove_filter` node.

    The nodes are the inner filters of ``members[...]``, so their paths are relative to a member
    (``type eq "Group"``); evaluate them with this, not with :func:`gateway.core.filter.matches`.
    """
    return element_matches(node, member, rtype.attributes["members"])


def _operands(node: Node, cls: type[And] | type[Or]) -> list[Node]:
    if isinstance(node, (And, Or)) and isinstance(node, cls):
        return [*_operands(node.left, cls), *_operands(node.right, cls)]
    return [node]


def _equalities(node: Node, attr: Attribute) -> dict[str, Any] | None:
    """The ``{sub: value}`` an element needs to match ``node``; None unless ``node`` is ``eq``s joined by ``and``."""
    out: dict[str, Any] = {}
    for part in _operands(node, And):
        if not isinstance(part, Compare) or part.op.lower() != "eq" or part.value is None:
            return None
        sub = attr.sub(_sub_name(part.path, attr))
        if sub is None:
            return None
        value: Any = part.value
        if sub.type == "boolean" and isinstance(value, str):
            # RFC 7643 §2.3.2: the new element would get a string where a boolean belongs.
            raise InvalidValueError(
                f"'{attr.name}.{sub.name}' is a boolean: compare it with unquoted true or false "
                f"({sub.name} eq true), not the string {value!r:.20} (RFC 7643 §2.3.2)"
            )
        out[sub.name] = value
    return out


def _member_ids(node: Node) -> list[str] | None:
    """Ids named by ``value eq "id"`` (or an ``or`` of them), the filter IdPs send to remove members."""
    out: list[str] = []
    for part in _operands(node, Or):
        if not (
            isinstance(part, Compare)
            and part.op.lower() == "eq"
            and isinstance(part.value, str)
            and _sub_name(part.path, None).lower() in ("value", "members.value")
        ):
            return None
        out.append(part.value)
    return out


# ----------------------------------------------------------------------------------------------
# target resolution


@dataclass(slots=True)
class _Target:
    container: str | None  # None: core attributes at the top level; else the extension URN key
    attr: Attribute | None  # None for an attribute of an opaque custom extension
    name: str  # key in the container
    filter: Node | None = None
    sub: Attribute | None = None
    label: str = ""


# Attributes clients echo back from a GET (ignored as readOnly without being worth reporting).
_ECHOED = frozenset({"id", "meta", "schemas", "groups"})


class _Patcher:
    def __init__(self, data: dict[str, Any], rtype: ResourceType, resource_id: str) -> None:
        self.doc = copy.deepcopy(data)
        self.doc.pop("schemas", None)  # derived again at the end from the attributes present
        self.rtype = rtype
        self.resource_id = resource_id
        self.is_group = rtype.schema == GROUP_SCHEMA
        self.members: _MemberFold | None = None
        self.password_set = False
        self.ignored: list[str] = []

    # -- paths -----------------------------------------------------------------------------
    def _custom_urn(self, text: str) -> str | None:
        low = text.lower()
        for key in self.doc:
            if key[:4].lower() == "urn:" and self.rtype.canonical_urn(key) is None:
                if low == key.lower() or low.startswith(key.lower() + ":"):
                    return key
        return None

    def resolve(self, text: str, value: Any = None) -> _Target:
        """Resolve a PATCH path.  A target with ``attr`` None is in an extension without schema, or is
        a whole extension object when ``name`` is empty.  ``value`` disambiguates a URN the
        gateway does not know: with an object value it names a whole extension."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidPathError("'path' must be a non-empty string")
        text = text.strip()
        urn, rest = self.rtype.split_urn(text)
        if text[:4].lower() == "urn:" and urn is None:
            custom = self._custom_urn(text)
            if custom is None:
                # An extension the gateway has no schema for and the resource does not have: the
                # attribute name is what follows the last colon (before any filter).
                if isinstance(value, dict):
                    return _Target(text, None, "", label=text)
                head = text.split("[", 1)[0]
                if ":" not in head[4:]:
                    raise InvalidPathError(f"Unknown schema in path '{text}'")
                custom = head.rsplit(":", 1)[0]
            if len(text) == len(custom):
                return _Target(custom, None, "", label=custom)
            rest = text[len(custom) + 1 :]
            pp = parse_patch_path(rest)
            if pp.filter is not None or pp.sub or pp.path.sub:
                raise InvalidPathError(f"Path '{text}' goes inside an extension the gateway stores opaquely")
            return _Target(custom, None, pp.path.attr, label=text)
        if urn is not None and not rest:
            if urn == self.rtype.schema:
                raise InvalidPathError(f"Path '{text}' names the core schema, not an attribute")
            return _Target(urn, None, "", label=urn)
        pp = parse_patch_path(rest)
        attrs = self.rtype.attributes if urn is None or urn == self.rtype.schema else self.rtype.extensions[urn]
        container = None if urn is None or urn == self.rtype.schema else urn
        attr = attrs.get(pp.path.attr.lower())
        if attr is None and urn is None:
            # RFC 7644 §3.10: clients SHOULD (not must) qualify extension attributes with their
            # schema URN, so an unqualified name ("path": "manager") is accepted when exactly one
            # extension of the resource type defines it (Entra ID sends such paths).
            found = [(u, a[pp.path.attr.lower()]) for u, a in self.rtype.extensions.items() if pp.path.attr.lower() in a]
            if len(found) == 1:
                container, attr = found[0]
        if attr is None:
            raise InvalidPathError(f"Unknown attribute in path '{text}'")
        sub_name = pp.path.sub or pp.sub
        if pp.path.sub and (pp.sub or pp.filter is not None):
            raise InvalidPathError(f"Malformed path '{text}'")
        sub = None
        if sub_name:
            if not attr.is_complex:
                raise InvalidPathError(f"'{attr.name}' has no sub-attributes (path '{text}')")
            sub = attr.sub(sub_name)
            if sub is None:
                raise InvalidPathError(f"Unknown sub-attribute in path '{text}'")
        if pp.filter is not None and not attr.multi_valued:
            raise InvalidPathError(f"A value filter needs a multi-valued attribute (path '{text}')")
        label = (f"{container}:" if container else "") + attr.name + (f".{sub.name}" if sub else "")
        return _Target(container, attr, attr.name, pp.filter, sub, label)

    def holder(self, container: str | None, create: bool) -> dict[str, Any] | None:
        if container is None:
            return self.doc
        found = self.doc.get(container)
        if found is None:
            if not create:
                return None
            found = self.doc[container] = {}
        if not isinstance(found, dict):
            raise InvalidValueError(f"'{container}' is not an object")
        return found

    # -- operations ------------------------------------------------------------------------
    def run(self, index: int, op: Any) -> None:
        if not isinstance(op, dict):
            raise InvalidSyntaxError(f"Operations[{index}] must be an object")
        keys = {k.lower(): v for k, v in op.items() if isinstance(k, str)}
        name = keys.get("op")
        if not isinstance(name, str) or name.lower() not in _OPS:
            raise InvalidSyntaxError(f"Operations[{index}].op must be one of add, replace, remove; got {name!r}")
        kind = name.lower()
        path = keys.get("path")
        value = keys.get("value")
        if path is None or (isinstance(path, str) and not path.strip()):
            if kind == "remove":
                raise NoTargetError(f"Operations[{index}]: remove needs a 'path' (RFC 7644 §3.5.2.2)")
            if not isinstance(value, dict):
                raise InvalidSyntaxError(f"Operations[{index}]: {kind} without 'path' needs an object 'value'")
            self.pathless(kind, value)
            return
        if not isinstance(path, str):
            raise InvalidPathError(f"Operations[{index}].path must be a string")
        if kind != "remove" and "value" not in keys:
            raise InvalidSyntaxError(f"Operations[{index}]: {kind} needs a 'value'")
        target = self.resolve(path, value)
        self.apply(kind, target, value, has_value="value" in keys)

    def pathless(self, kind: str, value: dict[str, Any]) -> None:
        """RFC 7644 §3.5.2.1/§3.5.2.3 without path: each key of ``value`` is a path into the resource."""
        for key, v in value.items():
            if not isinstance(key, str):
                continue
            urn, rest = self.rtype.split_urn(key)
            if key[:4].lower() == "urn:" and urn is None and isinstance(v, dict):
                self.apply_opaque(kind, _Target(self._custom_urn(key) or key, None, "", label=key), v)
                continue
            if urn is not None and not rest and urn != self.rtype.schema:
                if v is None:
                    if kind == "replace":
                        self.doc.pop(urn, None)
                    continue
                if not isinstance(v, dict):
                    raise InvalidValueError(f"'{urn}' must be an object")
                self.pathless(kind, {f"{urn}:{k}": sv for k, sv in v.items() if isinstance(k, str)})
                continue
            if key.lower() == "schemas":
                continue  # derived from the attributes present
            try:
                target = self.resolve(key, v)
            except InvalidPathError:
                # Unknown attributes in a value object are ignored, as in a POST body (RFC 7644 §3.3).
                self.ignored.append(key)
                continue
            attr = target.attr
            if attr is not None and target.container is None and attr.name == "id":
                if v != self.resource_id:
                    raise MutabilityError(f"'id' is readOnly: the value {v!r} does not match the resource")
                continue
            if attr is not None and (attr.mutability == "readOnly" or (target.sub and target.sub.mutability == "readOnly")):
                if target.container is not None or attr.name not in _ECHOED:
                    self.ignored.append(target.label)
                continue  # RFC 7643 §7: readOnly values in a request SHALL be ignored (clients echo "meta")
            self.apply(kind, target, v, has_value=True)

    def apply(self, kind: str, t: _Target, value: Any, *, has_value: bool) -> None:
        if t.attr is None:
            if t.container in self.rtype.extensions and not t.name:
                self.apply_extension(kind, t.container, value)
            else:
                self.apply_opaque(kind, t, value)
            return
        attr = t.attr
        if attr.name == "schemas" and t.container is None:
            raise MutabilityError("'schemas' is derived from the attributes present and cannot be patched")
        if attr.name == "id" and t.container is None:
            if value == self.resource_id and kind != "remove":
                return
            raise MutabilityError("'id' is readOnly")
        if attr.mutability == "readOnly" or (t.sub is not None and t.sub.mutability == "readOnly"):
            raise MutabilityError(f"'{t.label}' is readOnly")
        if attr.name == "password" and attr.mutability == "writeOnly" and t.container is None:
            if kind == "remove":
                raise MutabilityError("'password' cannot be removed")
            check_value(attr, value, "password")
            self.password_set = True
            return
        if t.container is not None and "writeOnly" in (attr.mutability, t.sub.mutability if t.sub else None):
            # as in a POST body: a declared writeOnly extension value is validated and never stored
            if kind != "remove" and t.filter is None and value is not None:
                check_value(t.sub or attr, value, t.label)
            return
        if self.is_group and attr.name == "members" and t.container is None:
            self.apply_members(kind, t, value, has_value=has_value)
            return
        holder = self.holder(t.container, create=kind != "remove")
        if holder is None:
            return  # remove from an absent extension: nothing to do
        if kind == "remove":
            self.remove(holder, t, value, has_value=has_value)
        elif t.filter is not None:
            self.set_filtered(kind, holder, t, value)
        elif t.sub is not None:
            self.set_sub(kind, holder, t, value)
        else:
            self.set_whole(kind, holder, t, value)
        if t.container is not None and not holder:
            self.doc.pop(t.container, None)

    # -- whole attributes ------------------------------------------------------------------
    def _coerce(self, attr: Attribute, value: Any) -> Any:
        """A single element where RFC 7644 wants an array, wrapped before the strict type check.

        Nothing else is coerced: "True"/"False" strings for booleans (RFC 7643 §2.3.2) and a bare
        id or one-element array for a complex attribute such as ``manager`` (§4.3) are refused by
        :func:`check_value`; IdPs that send them are normalised in their plugin.
        """
        if attr.multi_valued and isinstance(value, dict):
            return [value]
        return value

    def _check_immutable(self, holder: dict[str, Any], attr: Attribute, new: Any, label: str) -> None:
        # RFC 7644 §3.5.2: an immutable attribute may be added when it has no value, never changed.
        if attr.mutability == "immutable" and holder.get(attr.name) not in (None, new):
            raise MutabilityError(f"'{label}' is immutable")

    def set_whole(self, kind: str, holder: dict[str, Any], t: _Target, value: Any) -> None:
        attr = t.attr
        assert attr is not None
        checked = check_value(attr, self._coerce(attr, value), t.label)
        current = holder.get(attr.name)
        if checked is UNASSIGNED:
            if kind == "add":
                raise InvalidValueError(f"add to '{t.label}' needs a value")
            self._unassign(holder, attr, t.label, error=InvalidValueError)
            return
        if attr.multi_valued:
            if kind == "add":
                # §3.5.2.1: "a new value is added"; identical values are not duplicated.
                checked = merge_multi(current if isinstance(current, list) else [], checked)
            self._check_immutable(holder, attr, checked, t.label)
            holder[attr.name] = checked
        elif attr.is_complex:
            # §3.5.2.1/§3.5.2.3: the given sub-attributes replace or add; the others are left unchanged.
            merged = dict(current) if isinstance(current, dict) else {}
            for sub_name, sub_value in checked.items():
                sub = attr.sub(sub_name)
                if sub is not None and sub.mutability == "immutable" and merged.get(sub_name) not in (None, sub_value):
                    raise MutabilityError(f"'{t.label}.{sub_name}' is immutable")
                merged[sub_name] = sub_value
            holder[attr.name] = merged
        else:
            self._check_immutable(holder, attr, checked, t.label)
            holder[attr.name] = checked

    def _unassign(self, holder: dict[str, Any], attr: Attribute, label: str, *, error: type[Exception]) -> None:
        if attr.required:
            raise error(f"'{label}' is required and cannot be unassigned")
        if attr.mutability == "immutable" and holder.get(attr.name) is not None:
            raise MutabilityError(f"'{label}' is immutable")
        holder.pop(attr.name, None)

    # -- sub-attributes without filter ------------------------------------------------------
    def set_sub(self, kind: str, holder: dict[str, Any], t: _Target, value: Any) -> None:
        attr, sub = t.attr, t.sub
        assert attr is not None and sub is not None
        checked = check_value(sub, self._coerce(sub, value), t.label)
        current = holder.get(attr.name)
        if attr.multi_valued:
            # "emails.type" without filter: every element (or a first element when there is none).
            elements = current if isinstance(current, list) else []
            if not elements:
                if checked is UNASSIGNED:
                    return
                holder[attr.name] = [{sub.name: checked}]
                return
            if checked is True and sub.name == "primary" and len(elements) > 1:
                raise InvalidValueError(f"'{t.label}' would make several values primary")
            for e in elements:
                if isinstance(e, dict):
                    self._set_in(e, sub, checked, t.label)
            holder[attr.name] = [e for e in elements if e != {}] or None
            if holder[attr.name] is None:
                del holder[attr.name]
            return
        obj = dict(current) if isinstance(current, dict) else {}
        self._set_in(obj, sub, checked, t.label)
        if obj:
            holder[attr.name] = obj
        else:
            holder.pop(attr.name, None)

    def _set_in(self, element: dict[str, Any], sub: Attribute, checked: Any, label: str) -> None:
        if sub.mutability == "immutable" and element.get(sub.name) not in (None, checked):
            raise MutabilityError(f"'{label}' is immutable")
        if checked is UNASSIGNED:
            if sub.required:
                raise InvalidValueError(f"'{label}' is required")
            element.pop(sub.name, None)
        else:
            element[sub.name] = checked

    # -- value filters -----------------------------------------------------------------------
    def set_filtered(self, kind: str, holder: dict[str, Any], t: _Target, value: Any) -> None:
        attr, node = t.attr, t.filter
        assert attr is not None and node is not None
        current = holder.get(attr.name)
        elements: list[Any] = list(current) if isinstance(current, list) else []
        hits = [i for i, e in enumerate(elements) if element_matches(node, e, attr)]
        if t.sub is not None:
            sub = t.sub
            checked = check_value(sub, self._coerce(sub, value), t.label)
            if not hits:
                if checked is UNASSIGNED:
                    return
                # Not in RFC 7644 (§3.5.2.3 says noTarget for replace): IdPs set a first work email
                # with replace emails[type eq "work"].value, so create the element the filter
                # describes.  Later ops with the same filter then match it and merge into it.
                base = _equalities(node, attr)
                if base is None:
                    raise NoTargetError(f"No value matches '{t.label}' and the filter does not describe a new one")
                new = check_value(attr, [{**base, sub.name: checked}], t.label)
                assert isinstance(new, list)
                elements.append(new[0])
                if new[0].get("primary") is True:
                    enforce_single_primary(elements, new[0])
            else:
                if checked is True and sub.name == "primary" and len(hits) > 1:
                    raise InvalidValueError(f"'{t.label}' matches several values; only one can be primary")
                last_primary: Any = None
                for i in hits:
                    element = dict(elements[i]) if isinstance(elements[i], dict) else {"value": elements[i]}
                    self._set_in(element, sub, checked, t.label)
                    elements[i] = element
                    if element.get("primary") is True:
                        last_primary = element
                if last_primary is not None:  # once, not per hit: linear however many values match
                    enforce_single_primary(elements, last_primary)
        else:
            checked = check_value(attr, self._coerce(attr, value), t.label)
            if checked is UNASSIGNED:
                raise InvalidValueError(f"{kind} of '{t.label}' needs a value")
            if len(checked) != 1:
                raise InvalidValueError(f"{kind} of '{t.label}' takes one value")
            replacement = checked[0]
            if not hits:
                if kind == "replace":
                    # RFC 7644 §3.5.2.3: a value filter that matches nothing is noTarget.
                    raise NoTargetError(f"No value matches '{t.label}'")
                base = _equalities(node, attr) or {}
                new_element = {**base, **replacement} if isinstance(replacement, dict) else replacement
                elements = merge_multi(elements, [new_element])
            else:
                last: Any = None
                for i in hits:
                    if kind == "add" and isinstance(elements[i], dict) and isinstance(replacement, dict):
                        elements[i] = {**elements[i], **replacement}  # add: given sub-attributes set
                    else:
                        elements[i] = replacement  # replace: "all matching record values SHALL be replaced"
                    if isinstance(elements[i], dict) and elements[i].get("primary") is True:
                        last = elements[i]  # the last primary wins, as if enforced after each hit
                if last is not None:
                    enforce_single_primary(elements, last)
                if sum(1 for e in elements if isinstance(e, dict) and e.get("primary") is True) > 1:
                    raise InvalidValueError(f"'{t.label}' would make several values primary")
        deduped = dedupe(elements)
        if deduped:
            holder[attr.name] = deduped
        else:
            holder.pop(attr.name, None)

    # -- remove -----------------------------------------------------------------------------
    def remove(self, holder: dict[str, Any], t: _Target, value: Any, *, has_value: bool) -> None:
        attr = t.attr
        assert attr is not None
        current = holder.get(attr.name)
        if t.filter is None and t.sub is None:
            if attr.required:
                # RFC 7644 §3.5.2.2: removing a required attribute is a "mutability" error.
                raise MutabilityError(f"'{t.label}' is required and cannot be removed")
            if attr.multi_valued and has_value and value is not None:
                # Ambiguous ("remove these" or "remove all"?), so neither is guessed.
                raise _remove_with_value(t.label)
            if attr.mutability == "immutable" and current is not None:
                raise MutabilityError(f"'{t.label}' is immutable")
            holder.pop(attr.name, None)  # removing an unassigned attribute is a no-op
            return
        if t.filter is None:
            sub = t.sub
            assert sub is not None
            if sub.required:
                raise MutabilityError(f"'{t.label}' is required and cannot be removed")
            if attr.multi_valued:
                if isinstance(current, list):
                    elements = [{k: v for k, v in e.items() if k != sub.name} if isinstance(e, dict) else e for e in current]
                    self._store_list(holder, attr, [e for e in elements if e != {}])
                return
            if isinstance(current, dict):
                if sub.mutability == "immutable" and sub.name in current:
                    raise MutabilityError(f"'{t.label}' is immutable")
                obj = {k: v for k, v in current.items() if k != sub.name}
                if obj:
                    holder[attr.name] = obj
                else:
                    holder.pop(attr.name, None)
            return
        elements = list(current) if isinstance(current, list) else []
        hits = {i for i, e in enumerate(elements) if element_matches(t.filter, e, attr)}
        if not hits:
            # RFC 7644 §3.12: noTarget "occurs when the specified path value contains a filter that yields no match".
            raise NoTargetError(f"No value matches '{t.label}'")
        if t.sub is None:
            kept = [e for i, e in enumerate(elements) if i not in hits]
        else:
            if t.sub.required:
                raise MutabilityError(f"'{t.label}' is required and cannot be removed")
            kept = []
            for i, e in enumerate(elements):
                if i in hits and isinstance(e, dict):
                    e = {k: v for k, v in e.items() if k != t.sub.name}
                if e != {}:
                    kept.append(e)
        self._store_list(holder, attr, kept)

    def _store_list(self, holder: dict[str, Any], attr: Attribute, kept: list[Any]) -> None:
        if kept:
            holder[attr.name] = kept
        else:
            holder.pop(attr.name, None)  # §3.5.2.2: no values left, the attribute is unassigned

    # -- whole extension objects ----------------------------------------------------------------
    def apply_extension(self, kind: str, urn: str, value: Any) -> None:
        """A path naming a whole known extension: its value's keys are paths inside it."""
        if kind == "remove":
            if urn in self.rtype.required_extensions:
                raise MutabilityError(f"'{urn}' is a required extension and cannot be removed")
            self.doc.pop(urn, None)
            return
        if not isinstance(value, dict):
            raise InvalidValueError(f"'{urn}' must be an object")
        # §3.5.2.3: a complex target's unspecified sub-attributes are left unchanged; the same reading
        # applies to an extension object, so replace (like add) goes key by key.
        self.pathless(kind, {urn: value})

    # -- opaque custom extensions -------------------------------------------------------------
    def apply_opaque(self, kind: str, t: _Target, value: Any) -> None:
        assert t.container is not None
        if not t.name:  # the whole extension object
            if kind == "remove":
                self.doc.pop(t.container, None)
                return
            if not isinstance(value, dict):
                raise InvalidValueError(f"'{t.container}' must be an object")
            merged = dict(self.doc.get(t.container) or {})
            merged.update({k: v for k, v in value.items() if v is not None})
            for k, v in value.items():
                if v is None:
                    merged.pop(k, None)
            if merged:
                self.doc[t.container] = merged
            else:
                self.doc.pop(t.container, None)
            return
        holder = self.holder(t.container, create=kind != "remove")
        if holder is None:
            return
        if kind == "remove" or value is None:
            holder.pop(t.name, None)
        elif kind == "add" and isinstance(value, list) and isinstance(holder.get(t.name), list):
            holder[t.name] = merge_multi(holder[t.name], value)
        else:
            holder[t.name] = value
        if not holder:
            self.doc.pop(t.container, None)

    # -- group members --------------------------------------------------------------------------
    def apply_members(self, kind: str, t: _Target, value: Any, *, has_value: bool) -> None:
        fold = self.members if self.members is not None else _MemberFold()
        self.members = fold
        if t.sub is not None:
            if t.sub.mutability == "immutable" or kind == "remove":
                raise MutabilityError(f"'{t.label}' is immutable; remove the member and add it again")
            return  # members[...].display: the gateway shows the member's own display name
        assert t.attr is not None
        if kind == "add":
            fold.add_members(check_members(self._coerce(t.attr, value)))
            return
        if kind == "replace" and t.filter is None:
            fold.replace_with(check_members(self._coerce(t.attr, value)))
            return
        if kind == "replace":
            assert t.filter is not None
            items = check_members(self._coerce(t.attr, value))
            self._members_remove(fold, t.filter)
            fold.add_members(items)
            return
        if t.filter is not None:
            self._members_remove(fold, t.filter)
            return
        if has_value and value is not None:
            # Never a silent remove-all, never a guess that the value lists the members to drop.
            raise _remove_with_value(t.label)
        fold.clear()

    def _members_remove(self, fold: "_MemberFold", node: Node) -> None:
        ids = _member_ids(node)
        if ids is not None:
            fold.remove_ids(ids)
            return
        attr = self.rtype.attributes["members"]
        fold.remove_matching(node, lambda m: element_matches(node, m, attr))

    # -- end ----------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        for urn in list(self.doc):
            if urn[:4].lower() == "urn:" and self.doc[urn] in ({}, None):
                del self.doc[urn]
        for attrs, holder, prefix in self._containers():
            for attr in attrs:
                if attr.required and attr.mutability != "readOnly" and attr.name not in ("members", "password"):
                    v = holder.get(attr.name)
                    if v is None or (isinstance(v, str) and not v.strip()):
                        raise InvalidValueError(f"Attribute '{prefix}{attr.name}' is required")
        self.doc["schemas"] = derive_schemas(self.doc, self.rtype)
        return self.doc

    def _containers(self) -> Iterable[tuple[Iterable[Attribute], dict[str, Any], str]]:
        yield self.rtype.attributes.values(), self.doc, ""
        for urn, attrs in self.rtype.extensions.items():
            ext = self.doc.get(urn)
            if isinstance(ext, dict) or urn in self.rtype.required_extensions:
                # required attributes bind only when their extension is present or itself required
                yield attrs.values(), ext if isinstance(ext, dict) else {}, f"{urn}:"


def _remove_with_value(label: str) -> InvalidValueError:
    return InvalidValueError(
        f"remove of '{label}' takes no 'value': RFC 7644 §3.5.2.2 selects the values to remove with a "
        f"filter in 'path', e.g. {{\"op\": \"remove\", \"path\": \"{label}[value eq \\\"<id>\\\"]\"}} "
        f"(one operation per value); a 'path' of '{label}' alone, without 'value', removes them all"
    )


def apply_patch(
    data: dict[str, Any], operations: list[dict[str, Any]], rtype: ResourceType, *, resource_id: str
) -> PatchOutcome:
    """Apply RFC 7644 §3.5.2 ``operations`` to a copy of the stored ``data`` document.

    ``op`` is case-insensitive; ``path`` may carry sub-attributes, value filters and extension
    URNs; path-less add/replace take an object whose keys (plain, dotted or URN-qualified) are
    paths.  Group ``members`` operations are returned as :class:`MemberChanges`, not applied to
    ``data``.  All operations succeed or the first error (a :class:`ScimError`) propagates and
    ``data`` is left untouched.
    """
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntaxError("'Operations' must be a non-empty array (RFC 7644 §3.5.2)")
    patcher = _Patcher(data, rtype, resource_id)
    for index, op in enumerate(operations):
        patcher.run(index, op)
    result = patcher.finish()
    before = {k: v for k, v in data.items() if k != "schemas"}
    after = {k: v for k, v in result.items() if k != "schemas"}
    members = patcher.members.result() if patcher.members is not None else None
    return PatchOutcome(data=result, members=members, changed=before != after, password_set=patcher.password_set,
                        ignored=tuple(dict.fromkeys(patcher.ignored)))
