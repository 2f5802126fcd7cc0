"""SCIM filters and PATCH paths: the AST (:mod:`.nodes`), the parser (:mod:`.parser`), schema binding
(:mod:`.binder`) and the in-memory evaluator (:mod:`.evaluator`); this package re-exports their public names.

Grammar: RFC 7644 §3.4.2.2 Figure 1 with its errata applied (``and`` binds tighter than ``or``,
``not`` tighter than ``and``; ``not`` may be followed by a space before ``(``). PATCH paths follow the
PATH rule of RFC 7644 §3.5.2. Both parsers are schema-agnostic: names are kept as written and
resolved later against a :class:`~gateway.core.schema.ResourceType` by :func:`bind`.

Leniencies, because real clients send them:

* ``emails[type eq "work"].value eq "x"`` (a sub-attribute after a value filter) is read as
  ``emails[type eq "work" and value eq "x"]``;
* unquoted values without spaces (``externalId eq jyoung``) are strings;
* ``not`` may be applied to an expression without parentheses (``not title pr``).

Semantics decided here and shared with :mod:`gateway.core.sqlfilter` through :func:`bind`, so the
evaluator and the SQL compiler cannot drift apart:

* An attribute that the schema does not define, or one that is never returned (``password``), is
  treated as *unassigned* (RFC 7643 §2.5): every comparison on it is false, ``pr`` is false. RFC 7644
  gives no error for unknown attributes in a filter (its ``invalidFilter`` covers syntax and
  unsupported operator/attribute-type combinations, §3.12), and answering "no such resource"
  avoids leaking the schema of other tenants' extensions.
* ``ne`` is the complement of ``eq``: ``title ne "x"`` matches a resource with no title (an unassigned
  value "is not identical" to "x", §3.4.2.2 Figure 2) and ``emails.value ne "x"`` matches when no
  email equals "x". So ``a ne v`` and ``not (a eq v)`` always agree; this is also how the UnboundID
  SCIM 2 SDK reference evaluator behaves.
* ``eq null`` means "not present" and ``ne null`` means "present".
* ``gt``/``ge``/``lt``/``le`` on boolean, binary or complex attributes are ``invalidFilter`` (§3.4.2.2);
  ``co``/``sw``/``ew`` are only defined for strings and are ``invalidFilter`` on other types.
* A complex attribute compared without a sub-attribute uses its ``value`` sub-attribute
  (``emails co "example.com"`` is ``emails.value co "example.com"``, the §3.4.2.2 example, and
  RFC 7643 §2.4); a complex attribute without ``value`` only supports ``pr``.
"""

from __future__ import annotations

from gateway.core.filter.binder import (BAnd, BCmp, BConst, BNot, BOr, Bound, BValuePath, bind, bind_value_filter,
    parse_datetime, validate)
from gateway.core.filter.evaluator import is_present, matches, matches_value, value_matches
from gateway.core.filter.nodes import (COMPARE_OPS, MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, ORDER_OPS, STRING_TYPES,
    SUBSTRING_OPS, And, AttrPath, Compare, Node, Not, Or, PatchPath, Present, Value, ValuePath)
from gateway.core.filter.parser import parse_filter, parse_patch_path, split_attr_path

__all__ = [
    "COMPARE_OPS", "MAX_FILTER_DEPTH", "MAX_FILTER_LENGTH", "ORDER_OPS", "STRING_TYPES", "SUBSTRING_OPS",
    "And", "AttrPath", "BAnd", "BCmp", "BConst", "BNot", "BOr", "BValuePath", "Bound", "Compare", "Node", "Not",
    "Or", "PatchPath", "Present", "Value", "ValuePath", "bind", "bind_value_filter", "is_present", "matches",
    "matches_value", "parse_datetime", "parse_filter", "parse_patch_path", "split_attr_path", "validate",
    "value_matches",
]
