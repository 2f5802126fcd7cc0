"""A stored resource rendered from its JSON text, without decoding and re-encoding the document.

A list page is mostly stored documents. The slow path decodes each one into a dict, builds the
response dict around it (``schemas``, ``id``, ``groups``, ``meta``), projects it and encodes it
again. For the common document this is byte-for-byte redundant: one with no extension (so its
``schemas`` is the core URN alone), nothing the default projection hides, and no parameter asking
for another projection. :class:`Splicer` recognises such a text with a few substring searches (C
speed) and returns the response's JSON text, the stored attributes spliced in as they are; for
anything else it returns None and the caller takes the slow path. Output is the same JSON object
the slow path gives: same members, same values (tests compare the two over many documents).

The check is conservative by construction: it needs the top-level ``schemas`` member that every
stored document has (written by ``prepare_write`` and PATCH) to be the only ``"urn:`` in the whole
text, so no extension key, no extension URN and no lookalike value can be present; escaped quotes
inside string values (``\\"``) never match the unescaped patterns searched for.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["Splicer"]

_URN = '"urn:'


class Splicer:
    """Renders stored documents of one resource type whose ``schemas`` is ``[core]`` and which hold no
    attribute in ``hidden`` (those the default projection drops)."""

    def __init__(self, core_urn: str, hidden: tuple[str, ...]) -> None:
        urn = orjson.dumps(core_urn).decode()
        # compact (orjson, SQLite) and PostgreSQL's jsonb text form ("key": value, ", " between members)
        self._tokens = (f'"schemas":[{urn}]', f'"schemas": [{urn}]')
        self._head = '{"schemas":[' + urn + '],"id":'
        self._hidden = tuple(orjson.dumps(name).decode() for name in hidden)

    def inner(self, raw: str) -> str | None:
        """The stored members other than ``schemas``, as comma-separated JSON text (may be empty), or None
        when ``raw`` is not a document this class can render."""
        if raw.count(_URN) != 1 or raw[:1] != "{" or raw[-1:] != "}":
            return None
        for token in self._tokens:
            i = raw.find(token)
            if i >= 0:
                break
        else:
            return None
        for name in self._hidden:
            if name in raw:
                return None
        j = i + len(token)
        before = raw[1:i].rstrip()
        if before.endswith(","):
            before = before[:-1].rstrip()
        after = raw[j:-1].lstrip()
        if after.startswith(","):
            after = after[1:].lstrip()
        if before and after:
            return f"{before},{after}"
        return before or after

    def render(self, raw: str, rid: str, groups: list[dict[str, Any]] | None, meta: dict[str, Any]) -> str | None:
        """The response JSON text of one stored document (``groups`` omitted when empty), or None."""
        inner = self.inner(raw)
        if inner is None:
            return None
        parts = [self._head, orjson.dumps(rid).decode()]
        if inner:
            parts += [",", inner]
        if groups:
            parts += [',"groups":', orjson.dumps(groups).decode()]
        parts += [',"meta":', orjson.dumps(meta).decode(), "}"]
        return "".join(parts)
