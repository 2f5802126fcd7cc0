"""The body checks every JSON endpoint runs: nesting depth, NUL characters, lone surrogates.

``check_json(strings=False)`` (the fast path taken for UTF-8 bodies without a ``\\u0000`` escape)
must refuse exactly the nestings the full walk refuses; the full walk still finds a NUL anywhere."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from gateway.core.errors import InvalidSyntaxError, InvalidValueError
from gateway.core.limits import check_json

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="ab", max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="xyz", max_size=2), inner, max_size=3),
    max_leaves=30,
)


def _outcome(value: Any, depth: int, strings: bool) -> str:
    try:
        check_json(value, max_depth=depth, strings=strings)
    except InvalidSyntaxError:
        return "too deep"
    return "ok"


@settings(max_examples=300, deadline=None)
@given(value=_json, depth=st.integers(min_value=1, max_value=6))
def test_the_depth_only_walk_refuses_exactly_what_the_full_walk_refuses(value: Any, depth: int) -> None:
    assert _outcome(value, depth, strings=False) == _outcome(value, depth, strings=True)


def test_a_nul_anywhere_is_refused_by_the_full_walk() -> None:
    body = orjson.loads(b'{"members": [{"value": "a"}, {"value": "b\\u0000"}]}')
    with pytest.raises(InvalidValueError):
        check_json(body, max_depth=10)


def test_orjson_refuses_lone_surrogates_so_the_fast_path_needs_no_string_walk() -> None:
    # the premise of strings=False: a lone surrogate never survives parsing UTF-8 bytes
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(b'{"value": "\\ud800"}')
