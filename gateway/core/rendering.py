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

import re
from typing import Any

import orjson

__all__ = ["Splicer"]

_URN = '"urn:'
# ids, timestamps and versions the gateway writes: nothing JSON would escape (else orjson renders meta)
_PLAIN = re.compile(r"[\w.:+~-]*", re.ASCII)


class Splicer:
    """Renders stored documents of one resource type whose ``schemas`` is ``[core]`` and which hold no
    attribute in ``hidden`` (those the default projection drops)."""

    def __init__(self, core_urn: str, hidden: tuple[str, ...]) -> None:
        urn = orjson.dumps(core_urn).decode()
        # compact (orjson, SQLite) and PostgreSQL's jsonb text form ("key": value, ", " between members)
        self._tokens = (f'"schemas":[{urn}]', f'"schemas": [{urn}]')
        self._tail = f',"schemas":[{urn}]}}'  # where prepare_write puts it: the last member
        self._head = '{"schemas":[' + urn + '],"id":'
        self._hidden = tuple(orjson.dumps(name).decode() for name in hidden)
        self._urn_back = len(self._tail) - self._tail.index(_URN)  # the tail's URN, counted from the end

    def inner(self, raw: str) -> str | None:
        """The stored members other than ``schemas``, as comma-separated JSON text (may be empty), or None
        when ``raw`` is not a document this class can render."""
        common = raw[:1] == "{" and raw.endswith(self._tail)  # schemas last, where prepare_write puts it
        if common:  # its URN the only one: the first found is the tail's (one scan, where count needs one too)
            if raw.find(_URN) != len(raw) - self._urn_back:
                return None
        elif raw.count(_URN) != 1:
            return None
        for name in self._hidden:
            if name in raw:
                return None
        if common:  # the common case: one slice
            return raw[1 : -len(self._tail)]
        if raw[:1] != "{" or raw[-1:] != "}":
            return None
        for token in self._tokens:
            i = raw.find(token)
            if i >= 0:
                break
        else:
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

    def render(self, raw: str, rid: str, groups: list[dict[str, Any]] | None, resource_type: str, created: str,
               last_modified: str, base: str, version: int) -> str | None:
        """The response JSON text of one stored document (``groups`` omitted when empty), or None.

        ``meta.location`` is ``base`` + ``rid``; ``base`` is JSON text without its closing quote
        (:meth:`location_base`)."""
        inner = self.inner(raw)
        if inner is None:
            return None
        if _PLAIN.fullmatch(f"{rid}{created}{last_modified}"):  # each is plain iff the three together are
            meta = (f'"meta":{{"resourceType":"{resource_type}","created":"{created}","lastModified":'
                    f'"{last_modified}","location":{base}{rid}","version":"W/\\"{version}\\""}}')
            jid = f'"{rid}"'
        else:
            meta = '"meta":' + orjson.dumps({"resourceType": resource_type, "created": created,
                                             "lastModified": last_modified, "location": orjson.loads(base + '"') + rid,
                                             "version": f'W/"{version}"'}).decode()
            jid = orjson.dumps(rid).decode()
        groups_text = ',"groups":' + orjson.dumps(groups).decode() + "," if groups else ","
        if inner:
            return f"{self._head}{jid},{inner}{groups_text}{meta}}}"
        return f"{self._head}{jid}{groups_text}{meta}}}"

    @staticmethod
    def location_base(prefix: str) -> str:
        """``prefix`` (a location without the id) as JSON text, its closing quote left off."""
        return orjson.dumps(prefix).decode()[:-1]
