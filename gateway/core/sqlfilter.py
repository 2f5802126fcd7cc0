"""Compile SCIM filters and ``sortBy`` paths to parameterised SQL over the ``users``/``groups`` tables.

The fragment refers to the resource table as ``r`` (columns of the 0001 migrations) and uses ``?``
placeholders only; the PostgreSQL store renumbers them to ``$n``, so no other ``?`` is ever emitted
(no jsonb ``?`` operators, no ``?`` in literals). Every value the client sent is bound, never pasted;
the only text pasted into SQL is attribute names taken from the schema files.

Semantics are those of :func:`gateway.core.filter.matches` (the reference): both work from the same
:func:`gateway.core.filter.bind` output. To keep SQL's three-valued logic out of the picture, every
atomic predicate emitted here is two-valued (never NULL), so ``NOT`` and ``ne`` (= ``NOT eq``) behave
as in Python.

Case-insensitive comparisons fold both sides with Python's ``str.lower`` semantics: indexed ``*_ci``
columns were folded by :func:`gateway.store.rows.fold` on write and the bound value is folded the same
way; JSON values are folded in SQL with ``scim_fold()`` on SQLite (registered by
:func:`register_sqlite_functions`, because SQLite's ``lower()`` only folds ASCII) and ``lower()`` on
PostgreSQL (which follows the database's LC_CTYPE; it agrees with ``str.lower`` except for the few
characters with multi-character lowercase forms, e.g. U+0130).

Assumptions about how the resource layer renders stored rows (the evaluator sees the rendered form):
``meta.version`` is ``W/"<version>"``; ``active`` is rendered from the ``active`` column; a User's
``groups`` are its direct memberships (``type`` ``"direct"``, ``display`` the group's displayName);
``schemas`` lists the core schema plus each extension whose object is present in ``data``.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Literal

from gateway.core.errors import InvalidFilterError, InvalidValueError
from gateway.core.filter import (STRING_TYPES, AttrPath, BAnd, BCmp, BConst, BNot, BOr, Bound, BValuePath, Node,
    bind, split_attr_path, value_matches)
from gateway.core.schema import Attribute, ResourceType, user_type
from gateway.store.rows import fold

Dialect = Literal["sqlite", "postgres"]

TRUE = "(1=1)"
FALSE = "(1=0)"
_SQL_OPS = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_LIKE_ESCAPE = "!"
_MARKER = re.compile("\x00([0-9]+)\x00")
# A bare NULL is rejected by PostgreSQL in ORDER BY ("non-integer constant"); a cast is not.
_NO_SORT_KEY = "CAST(NULL AS TEXT)"


def _scim_fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# name -> (number of arguments, implementation); for aiosqlite: ``await db.create_function(name, n, fn, deterministic=True)``.
SQLITE_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {"scim_fold": (1, _scim_fold)}


def register_sqlite_functions(conn: sqlite3.Connection) -> None:
    """Register the SQL functions the SQLite fragments use (``scim_fold`` = Python ``str.lower``) on ``conn``.

    Call it on every new connection before running a compiled filter.
    """
    for name, (nargs, fn) in SQLITE_FUNCTIONS.items():
        conn.create_function(name, nargs, fn, deterministic=True)


def timestamp_text(dt: datetime) -> str:
    """The fixed-width UTC text the ``created``/``last_modified`` columns hold: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def like_escape(value: str) -> str:
    """Escape LIKE wildcards (``%``, ``_``) and the escape character itself for ``ESCAPE '!'``."""
    return (
        value.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_")
    )


@dataclass(frozen=True, slots=True)
class _Scalar:
    """Where one value lives in SQL.

    ``expr`` yields the value, or NULL when absent or of the wrong JSON type. ``kind``: text, bool,
    num or ts (fixed-width timestamp text). ``folded``: text already case-folded (``*_ci`` columns).
    ``column``: a plain column, where ``IS NOT NULL AND`` keeps predicates index-friendly instead of
    ``COALESCE``. ``nullable``: False when the expression is never NULL.
    """

    expr: str
    kind: str
    folded: bool = False
    column: bool = False
    nullable: bool = True
    raw: str | None = None  # kind "dt": the text the instant was parsed from (what "pr" looks at)


@dataclass(frozen=True, slots=True)
class _Elems:
    """The values of a multi-valued attribute as rows: ``FROM frm WHERE where``."""

    frm: str
    where: str
    sub: Callable[[Attribute], _Scalar]  # element's sub-attribute
    self_scalar: Callable[[Attribute], _Scalar] | None  # element itself (multi-valued simple attributes)
    present: Callable[[Attribute], str]  # "this element is a present (non-empty) value"


class _Compiler:
    def __init__(self, rtype: ResourceType, dialect: Dialect) -> None:
        if dialect not in ("sqlite", "postgres"):
            raise ValueError(f"unknown SQL dialect {dialect!r}")
        self.rtype = rtype
        self.sqlite = dialect == "sqlite"
        self.params: list[Any] = []
        self.is_user = rtype.name == "User"

    # ------------------------------------------------------------ dialect primitives
    def bind(self, value: Any) -> str:
        if not self.sqlite and isinstance(value, float):
            value = Decimal(repr(value))
        elif not self.sqlite and isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        # A marker, not "?": constant folding (TRUE OR x) may drop fragments, and their values must go
        # with them. finish() turns the surviving markers into "?" and the params into their order.
        self.params.append(value)
        return f"\x00{len(self.params) - 1}\x00"

    def finish(self, sql: str) -> tuple[str, list[Any]]:
        params: list[Any] = []

        def repl(m: re.Match[str]) -> str:
            params.append(self.params[int(m.group(1))])
            return "?"

        return _MARKER.sub(repl, sql), params

    def fold_sql(self, expr: str) -> str:
        return f"scim_fold({expr})" if self.sqlite else f"lower({expr})"

    def coll(self, expr: str) -> str:
        # Range comparisons must order by code point like Python; PostgreSQL's default collation doesn't.
        return expr if self.sqlite else f"({expr}) COLLATE \"C\""

    @staticmethod
    def _key(k: str) -> str:
        # Keys come from the schema files, never from the client; refuse anything that could break quoting.
        if any(c in k for c in "'\"\\{},?") or not k:
            raise InvalidFilterError(f"attribute name {k!r} cannot be used in SQL")  # pragma: no cover
        return k

    def jpath(self, keys: list[str]) -> str:
        if self.sqlite:
            return "'$" + "".join(f'."{self._key(k)}"' for k in keys) + "'"
        return "'{" + ",".join(f'"{self._key(k)}"' for k in keys) + "}'"

    def instant(self, text: str) -> str:
        """A JSON-stored xsd:dateTime as a comparable instant (offsets applied, no offset = UTC), NULL if invalid."""
        return f"julianday({text})" if self.sqlite else f"scim_timestamp({text})"

    def bind_instant(self, value: datetime) -> str:
        # SQLite compares julian days; PostgreSQL takes the aware datetime as a timestamptz parameter.
        return f"julianday({self.bind(timestamp_text(value))})" if self.sqlite else self.bind(value)

    def json_scalar(self, container: str, keys: list[str], attr: Attribute) -> _Scalar:
        kind = self.kind(attr)
        if kind == "dt":
            text = self.json_scalar(container, keys, Attribute(attr.name, "string")).expr
            return _Scalar(self.instant(text), "dt", raw=text)
        p = self.jpath(keys)
        if self.sqlite:
            if kind == "text":
                e = f"(CASE WHEN json_type({container}, {p}) = 'text' THEN json_extract({container}, {p}) END)"
            elif kind == "bool":
                e = f"(CASE json_type({container}, {p}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
            else:
                e = (
                    f"(CASE WHEN json_type({container}, {p}) IN ('integer', 'real') "
                    f"THEN json_extract({container}, {p}) END)"
                )
        else:
            t = f"jsonb_typeof({container} #> {p})"
            if kind == "text":
                e = f"(CASE WHEN {t} = 'string' THEN {container} #>> {p} END)"
            elif kind == "bool":
                e = f"(CASE WHEN {t} = 'boolean' THEN ({container} #>> {p})::boolean END)"
            else:
                e = f"(CASE WHEN {t} = 'number' THEN ({container} #>> {p})::numeric END)"
        return _Scalar(e, kind)

    def json_is(self, container: str, keys: list[str], jtype: str) -> str:
        """Two-valued: the JSON value at keys is an object/array."""
        p = self.jpath(keys)
        if self.sqlite:
            return f"(json_type({container}, {p}) IS '{jtype}')"
        return f"COALESCE(jsonb_typeof({container} #> {p}) = '{jtype}', FALSE)"

    @staticmethod
    def kind(attr: Attribute) -> str:
        if attr.type == "dateTime":
            return "dt"
        if attr.type in STRING_TYPES:
            return "text"
        if attr.type == "boolean":
            return "bool"
        if attr.type in ("integer", "decimal"):
            return "num"
        raise InvalidFilterError(f"'{attr.name}' is complex")  # pragma: no cover - bind() rules this out

    def json_elems(self, keys: list[str], ordinality: bool = False) -> _Elems:
        p = self.jpath(keys)
        if self.sqlite:
            obj = "(CASE WHEN j.type = 'object' THEN j.value END)"

            def self_scalar(a: Attribute) -> _Scalar:
                k = self.kind(a)
                if k == "dt":
                    text = "(CASE WHEN j.type = 'text' THEN j.value END)"
                    return _Scalar(self.instant(text), k, raw=text)
                if k == "text":
                    return _Scalar("(CASE WHEN j.type = 'text' THEN j.value END)", k)
                if k == "bool":
                    return _Scalar("(CASE j.type WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)", k)
                return _Scalar("(CASE WHEN j.type IN ('integer', 'real') THEN j.value END)", k)

            frm = f"json_each(r.data, {p}) AS j"
            where = f"json_type(r.data, {p}) = 'array'"
        else:
            obj = "j.value"
            src = f"r.data #> {p}"
            cols = "j(value, n)" if ordinality else "j(value)"
            frm = (
                f"jsonb_array_elements(CASE WHEN jsonb_typeof({src}) = 'array' THEN {src} ELSE '[]'::jsonb END)"
                f"{' WITH ORDINALITY' if ordinality else ''} AS {cols}"
            )
            where = TRUE

            def self_scalar(a: Attribute) -> _Scalar:
                return self.json_scalar("j.value", [], a)

        def sub(s: Attribute) -> _Scalar:
            return self.json_scalar(obj, [s.name], s)

        def present(a: Attribute) -> str:
            return self.or_(
                [self.scalar_pred(sub(s), s, "pr", None) for s in a.sub_attributes.values() if s.returned != "never"]
            )

        return _Elems(frm, where, sub, self_scalar, present)

    def table_elems(self, c_attr: Attribute, urn: str | None) -> _Elems | None:
        """Multi-valued attributes stored as rows rather than in ``data``."""
        if urn is not None:
            return None
        name = c_attr.name.lower()

        def unsupported(s: Attribute) -> _Scalar:
            raise InvalidFilterError(f"filtering on '{c_attr.name}.{s.name}' is not supported")

        def always(_: Attribute) -> str:
            return TRUE

        if self.is_user and name == "groups":
            def gsub(s: Attribute) -> _Scalar:
                n = s.name.lower()
                if n == "value":
                    return _Scalar("m.group_id", "text", column=True, nullable=False)
                if n == "display":
                    return _Scalar("g.display_name_ci", "text", folded=True, column=True, nullable=False)
                if n == "type":
                    return _Scalar("'direct'", "text", nullable=False)
                return unsupported(s)

            return _Elems(
                "group_members m JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id",
                "m.tenant_id = r.tenant_id AND m.member_id = r.id",
                gsub,
                None,
                always,
            )
        if not self.is_user and name == "members":
            def msub(s: Attribute) -> _Scalar:
                n = s.name.lower()
                if n == "value":
                    return _Scalar("m.member_id", "text", column=True, nullable=False)
                if n == "type":
                    return _Scalar("m.member_type", "text", column=True, nullable=False)
                return unsupported(s)

            return _Elems(
                "group_members m", "m.tenant_id = r.tenant_id AND m.group_id = r.id", msub, None, always
            )
        return None

    # ------------------------------------------------------------ predicates
    @staticmethod
    def or_(items: list[str]) -> str:
        items = [i for i in items if i != FALSE]
        if not items:
            return FALSE
        if TRUE in items:
            return TRUE
        return items[0] if len(items) == 1 else "(" + " OR ".join(items) + ")"

    @staticmethod
    def and_(items: list[str]) -> str:
        items = [i for i in items if i != TRUE]
        if not items:
            return TRUE
        if FALSE in items:
            return FALSE
        return items[0] if len(items) == 1 else "(" + " AND ".join(items) + ")"

    def scalar_pred(self, s: _Scalar, leaf: Attribute, op: str, value: Any) -> str:
        """A two-valued predicate: the value in ``s`` satisfies ``op value`` (RFC 7644 §3.4.2.2 Figure 2)."""
        e = s.expr
        if op == "pr" and s.kind == "dt":
            return f"COALESCE({s.raw} <> '', FALSE)"
        if op == "pr":
            cmp = f"{e} <> ''" if s.kind in ("text", "ts") else f"{e} IS NOT NULL"
            if not s.nullable:
                return TRUE if s.kind != "text" else f"({cmp})"
            if s.column:
                return f"({e} IS NOT NULL AND {cmp})"
            return f"COALESCE({cmp}, FALSE)"
        if s.kind == "bool":
            cmp = f"{e} = {self.bind(bool(value))}"
        elif s.kind == "num":
            cmp = f"{e} {_SQL_OPS[op]} {self.bind(value)}"
        elif s.kind == "dt":
            cmp = f"{e} {_SQL_OPS[op]} {self.bind_instant(value)}"
        elif s.kind == "ts":
            cmp = f"{self.coll(e)} {_SQL_OPS[op]} {self.bind(timestamp_text(value))}"
        else:
            v: str = value
            if not leaf.case_exact:
                v = fold(v)
                if not s.folded:
                    e = self.fold_sql(e)
            if op in ("co", "sw", "ew") and v == "":
                # Every string contains, starts and ends with "": true iff there is a string value.
                cmp = f"{e} IS NOT NULL"
            elif op == "eq":
                cmp = f"{e} = {self.bind(v)}"
            elif op in _SQL_OPS:
                cmp = f"{self.coll(e)} {_SQL_OPS[op]} {self.bind(v)}"
            elif self.sqlite:
                # Not LIKE: SQLite's LIKE ignores ASCII case whatever the attribute's caseExact says.
                if op == "co":
                    cmp = f"instr({e}, {self.bind(v)}) > 0"
                elif op == "sw":
                    cmp = f"substr({e}, 1, {self.bind(len(v))}) = {self.bind(v)}"
                else:
                    cmp = f"(length({e}) >= {self.bind(len(v))} AND substr({e}, -{self.bind(len(v))}) = {self.bind(v)})"
            else:
                pattern = {"co": "%{}%", "sw": "{}%", "ew": "%{}"}[op].format(like_escape(v))
                cmp = f"{e} LIKE {self.bind(pattern)} ESCAPE '{_LIKE_ESCAPE}'"
        if not s.nullable:
            return f"({cmp})"
        if s.column:
            return f"({s.expr} IS NOT NULL AND {cmp})"
        return f"COALESCE({cmp}, FALSE)"

    # ------------------------------------------------------------ resource scope
    def special(self, c: BCmp) -> str | _Scalar | None:
        """Attributes held in columns or derived from them; None for plain JSON attributes."""
        if c.urn is not None:
            return None
        name = c.attr.name.lower()
        sub = c.sub.name.lower() if c.sub else None
        if name == "id":
            return _Scalar("r.id", "text", column=True, nullable=False)
        if name == "externalid":
            return _Scalar("r.external_id", "text", column=True)
        if self.is_user and name == "username":
            return _Scalar("r.user_name_ci", "text", folded=True, column=True, nullable=False)
        if name == "displayname":
            return _Scalar("r.display_name_ci", "text", folded=True, column=True, nullable=self.is_user)
        if self.is_user and name == "active":
            return _Scalar("r.active", "bool", column=True, nullable=False)
        if name == "meta":
            if sub is None or sub == "resourcetype":
                # "meta pr" / meta.resourceType: known at compile time.
                actual = {"created": "x"} if sub is None else self.rtype.name
                return TRUE if value_matches(c.leaf, c.op, c.value, actual) else FALSE
            if sub == "created":
                return _Scalar("r.created", "ts", column=True, nullable=False)
            if sub == "lastmodified":
                return _Scalar("r.last_modified", "ts", column=True, nullable=False)
            if sub == "version":
                v = "r.version" if self.sqlite else "r.version::text"
                return _Scalar(f"('W/\"' || {v} || '\"')", "text", nullable=False)
            if sub == "location" and c.op == "pr":
                return TRUE
            raise InvalidFilterError(f"filtering on 'meta.{c.sub.name if c.sub else ''}' is not supported")
        if name == "schemas":
            if c.op == "pr":
                return TRUE
            conds = []
            for urn in [self.rtype.schema, *self.rtype.extensions]:
                if value_matches(c.attr, c.op, c.value, urn):
                    conds.append(TRUE if urn == self.rtype.schema else self.json_is("r.data", [urn], "object"))
            return self.or_(conds)
        return None

    def cmp(self, c: BCmp) -> str:
        sp = self.special(c)
        if isinstance(sp, str):
            return sp
        if isinstance(sp, _Scalar):
            return self.scalar_pred(sp, c.leaf, c.op, c.value)
        keys = ([c.urn] if c.urn else []) + [c.attr.name]
        if not c.attr.multi_valued:
            if c.sub is not None:
                return self.scalar_pred(self.json_scalar("r.data", keys + [c.sub.name], c.sub), c.sub, c.op, c.value)
            if c.attr.is_complex:  # only "pr" gets here (bind redirects comparisons to .value)
                return self.or_(
                    [
                        self.scalar_pred(self.json_scalar("r.data", keys + [s.name], s), s, "pr", None)
                        for s in c.attr.sub_attributes.values()
                        if s.returned != "never"
                    ]
                )
            return self.scalar_pred(self.json_scalar("r.data", keys, c.attr), c.attr, c.op, c.value)
        el: _Elems | None = self.table_elems(c.attr, c.urn)
        if el is None and self.is_user and c.urn is None and c.attr.name.lower() == "emails" and c.sub is not None \
                and c.sub.name.lower() == "value":
            # The indexed child table; same rows as data.emails[*].value strings (rows.user_email_rows).
            el = _Elems(
                "user_emails e",
                "e.tenant_id = r.tenant_id AND e.user_id = r.id",
                lambda s: _Scalar("e.value_ci", "text", folded=True, column=True, nullable=False),
                None,
                lambda a: TRUE,
            )
        if el is None:
            el = self.json_elems(keys)
        return self.exists(el, self.elem_cmp(el, c))

    def exists(self, el: _Elems, pred: str) -> str:
        if pred == FALSE:
            return FALSE
        return f"EXISTS (SELECT 1 FROM {el.frm} WHERE {self.and_([el.where, pred])})"

    def elem_cmp(self, el: _Elems, c: BCmp) -> str:
        if c.sub is None:
            if c.attr.is_complex:
                return el.present(c.attr)
            if el.self_scalar is None:  # pragma: no cover - table-backed attributes are complex
                raise InvalidFilterError(f"cannot filter on '{c.attr.name}'")
            return self.scalar_pred(el.self_scalar(c.attr), c.attr, c.op, c.value)
        return self.scalar_pred(el.sub(c.sub), c.sub, c.op, c.value)

    def node(self, b: Bound, el: _Elems | None = None) -> str:
        if isinstance(b, BConst):
            return TRUE if b.value else FALSE
        if isinstance(b, BAnd):
            return self.and_([self.node(x, el) for x in b.items])
        if isinstance(b, BOr):
            return self.or_([self.node(x, el) for x in b.items])
        if isinstance(b, BNot):
            inner = self.node(b.expr, el)
            return FALSE if inner == TRUE else TRUE if inner == FALSE else f"(NOT {inner})"
        if isinstance(b, BValuePath):
            return self.value_path(b)
        if el is not None:
            return self.elem_cmp(el, b)
        return self.cmp(b)

    def value_path(self, b: BValuePath) -> str:
        if b.attr.multi_valued:
            el = self.table_elems(b.attr, b.urn) or self.json_elems(([b.urn] if b.urn else []) + [b.attr.name])
            return self.exists(el, self.node(b.filter, el))
        # Single-valued complex (name[givenName eq "x"], meta[...]): the inner comparisons are ordinary
        # attr.sub comparisons, guarded so that "not" inside cannot match a missing object.
        inner = self.node(b.filter)
        if b.urn is None and b.attr.name.lower() == "meta":
            return inner
        keys = ([b.urn] if b.urn else []) + [b.attr.name]
        return self.and_([self.json_is("r.data", keys, "object"), inner])


def compile_filter(node: Node, rtype: ResourceType, dialect: Dialect) -> tuple[str, list[Any]]:
    """Compile a parsed filter to ``(sql, params)``: a boolean SQL expression over the table aliased ``r``.

    ``?`` placeholders only; semantics identical to :func:`gateway.core.filter.matches`. Raises
    :class:`InvalidFilterError` for invalid operator/attribute combinations and for the few attributes
    whose value the database cannot know (``meta.location`` other than ``pr``, ``members.display``,
    ``$ref`` sub-attributes of ``groups``/``members``).
    """
    c = _Compiler(rtype, dialect)
    return c.finish(c.node(bind(node, rtype)))


def compile_sort(path: str, rtype: ResourceType, dialect: Dialect) -> str:
    """SQL expression to ``ORDER BY`` for ``sortBy=path`` (RFC 7644 §3.4.2.3).

    Multi-valued attributes sort by the primary value, else the first; strings that are not caseExact
    sort case-insensitively by code point. Resources with no value yield NULL; RFC 7644 §3.4.2.3 wants
    them last when ascending and first when descending, so callers should write ``NULLS LAST`` /
    ``NULLS FIRST`` (PostgreSQL's default already does this, SQLite's does not).

    An attribute the schema does not define sorts as unassigned for every resource (NULL), consistent
    with the filter semantics: RFC 7644 §3.4.2.3 defines no error for it. A complex attribute without
    a sub-attribute (other than one with a ``value`` sub-attribute) or a malformed path raises
    :class:`InvalidValueError`, since §3.4.2.3 requires a path to a sub-attribute.
    """
    c = _Compiler(rtype, dialect)
    try:
        ap: AttrPath = split_attr_path(path.strip(), 0, InvalidValueError)
    except InvalidValueError:
        raise InvalidValueError(f"invalid sortBy attribute path {path!r}") from None
    rp = rtype.resolve(str(ap))
    if rp is None or rp.attribute.returned == "never":
        return _NO_SORT_KEY
    attr, sub, urn = rp.attribute, rp.sub, rp.urn
    if sub is None and attr.is_complex:
        sub = attr.sub("value")
        if sub is None:
            raise InvalidValueError(f"sortBy '{path}' is complex: name a sub-attribute")
    leaf = sub or attr

    def text_key(expr: str, folded: bool = False) -> str:
        if leaf.type in STRING_TYPES and not leaf.case_exact and not folded:
            expr = c.fold_sql(expr)
        return c.coll(expr) if leaf.type in STRING_TYPES else expr

    name = attr.name.lower()
    sname = sub.name.lower() if sub else None
    if urn is None:
        if name == "meta":
            return {"created": "r.created", "lastmodified": "r.last_modified", "version": "r.version",
                    "location": "r.id"}.get(sname or "", _NO_SORT_KEY)
        if name == "schemas":
            return _NO_SORT_KEY
        columns = {"id": ("r.id", False), "externalid": ("r.external_id", False),
                   "displayname": ("r.display_name_ci", True)}
        if c.is_user:
            columns.update({"username": ("r.user_name_ci", True), "active": ("r.active", False)})
        if name in columns:
            col, folded = columns[name]
            return text_key(col, folded)
        el = c.table_elems(attr, None)
        if el is not None and sub is not None:
            try:
                s = el.sub(sub)
            except InvalidFilterError:
                return _NO_SORT_KEY
            key = s.expr if s.folded or leaf.case_exact else c.fold_sql(s.expr)
            return f"(SELECT MIN({c.coll(key)}) FROM {el.frm} WHERE {el.where})"
    keys = ([urn] if urn else []) + [attr.name]
    if not attr.multi_valued:
        s = c.json_scalar("r.data", keys + ([sub.name] if sub else []), leaf)
        return text_key(s.expr)
    el = c.json_elems(keys, ordinality=True)
    s = el.sub(sub) if sub is not None else el.self_scalar(attr)  # type: ignore[misc]
    has_primary = attr.sub("primary") is not None
    if c.sqlite:
        prim = "(CASE WHEN j.type = 'object' THEN json_extract(j.value, '$.\"primary\"') END) IS 1"
        order = f"{prim} DESC, j.key" if has_primary else "j.key"
    else:
        prim = "COALESCE(j.value #> '{\"primary\"}' = 'true'::jsonb, FALSE)"
        order = f"{prim} DESC, j.n" if has_primary else "j.n"
    return f"(SELECT {text_key(s.expr)} FROM {el.frm} WHERE {el.where} ORDER BY {order} LIMIT 1)"


def extension_present(urn: str, dialect: Dialect) -> str:
    """SQL over the table aliased ``r``: true when the stored document holds an object for extension ``urn``."""
    return _Compiler(user_type(), dialect).json_is("r.data", [urn], "object")
