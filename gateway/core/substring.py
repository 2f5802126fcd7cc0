"""Index assistance for substring filters (``co``, ``sw``, ``ew``): narrow first, let the exact predicate decide.

:func:`gateway.core.sqlfilter.compile_filter` stays the whole truth of a filter; this module only adds,
for SQLite, a set of candidate rows taken from the FTS5 trigram tables of migration 0009
(one per indexed attribute; rowid = the resource's ``seq``). A candidate set is a superset of
the rows the exact predicate accepts: if a string contains ``v``, it contains every trigram of ``v`` in
order, which is what the FTS5 phrase query asks. So ``seq IN (candidates) AND exact`` selects exactly
what ``exact`` alone selects, only without scanning the tenant.

Only comparisons that every matching row must satisfy narrow: the comparisons of the filter's
top-level ``and`` (a lone comparison is one). Under ``or`` and ``not`` a narrowing would be unsound
or useless, so those filters simply scan as before. A needle shorter than three characters has no
trigram: it narrows nothing and falls back to the scan.

PostgreSQL needs no rewriting: its ``pg_trgm`` GIN indexes (migration 0009) serve the ``LIKE``
predicates the compiler already emits, and the planner chooses them by itself.
"""

from __future__ import annotations

from typing import Any

from gateway.core.filter import BAnd, BCmp, Bound, Node, bind
from gateway.core.schema import ResourceType
from gateway.store.rows import fold

MIN_NEEDLE = 3  # a trigram index knows nothing about shorter strings

# attribute (lower-case name, sub-attribute or None) -> (FTS5 table, whether the indexed text is
# case-folded): the text the exact predicate reads (a *_ci column, or external_id as stored)
_USER_INDEXES: dict[tuple[str, str | None], tuple[str, bool]] = {
    ("username", None): ("user_name_search", True),
    ("displayname", None): ("user_display_search", True),
    ("externalid", None): ("user_external_search", False),
    ("emails", "value"): ("user_email_search", True),
}
_GROUP_INDEXES: dict[tuple[str, str | None], tuple[str, bool]] = {
    ("displayname", None): ("group_display_search", True),
    ("externalid", None): ("group_external_search", False),
}


def _phrase(needle: str) -> str:
    return '"' + needle.replace('"', '""') + '"'


def _conjuncts(b: Bound) -> list[Bound]:
    if isinstance(b, BAnd):
        out: list[Bound] = []
        for item in b.items:
            out.extend(_conjuncts(item))
        return out
    return [b]


def compile_narrowing(node: Node, rtype: ResourceType, dialect: str) -> tuple[str, list[Any]] | None:
    """``(subquery, params)`` selecting a superset of the ``seq`` values ``node`` matches, or None.

    The subquery uses ``?`` placeholders; the caller writes ``r.seq IN (<subquery>)`` beside the exact
    predicate. None when the dialect needs no narrowing or the filter has nothing a trigram index can
    narrow (no top-level ``co``/``sw``/``ew`` of at least three characters on an indexed attribute).
    """
    if dialect != "sqlite":
        return None
    indexes = _USER_INDEXES if rtype.name == "User" else _GROUP_INDEXES if rtype.name == "Group" else {}
    phrases: dict[str, list[str]] = {}
    for c in _conjuncts(bind(node, rtype)):
        if not isinstance(c, BCmp) or c.op not in ("co", "sw", "ew") or c.urn is not None:
            continue
        found = indexes.get((c.attr.name.lower(), c.sub.name.lower() if c.sub else None))
        if found is None or not isinstance(c.value, str):
            continue
        table, folded = found
        if not folded and not c.leaf.case_exact:
            continue  # the exact predicate folds a column the index holds as stored: no narrowing
        # the very value the exact predicate compares with the indexed text (sqlfilter.scalar_pred)
        needle = c.value if c.leaf.case_exact else fold(c.value)
        if len(needle) >= MIN_NEEDLE:
            phrases.setdefault(table, []).append(_phrase(needle))
    if not phrases:
        return None
    sql = " INTERSECT ".join(f"SELECT rowid FROM {t} WHERE {t} MATCH ?" for t in phrases)
    return sql, [" AND ".join(p) for p in phrases.values()]
