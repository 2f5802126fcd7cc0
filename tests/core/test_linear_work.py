"""Work per request grows linearly with its size: multi-valued validation, member folding, PATCH application.

These assert a growth *shape*, not a time: the CPU time at 4,000 elements divided by the time at
500 must stay near 8 (linear), far from 64 (quadratic, what a list scan inside a loop gives, as
on the old main). Each size is timed as the best of a few
runs so a busy machine does not fake a trend.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable

from gateway.core.patch import apply_patch
from gateway.core.resource import check_members, merge_multi, prepare_write
from gateway.core.schema import group_type, user_type

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SMALL, LARGE = 500, 4_000
# 8x the work; linear code lands near 8 (allow for caches and allocator effects), quadratic near 64.
MAX_RATIO = 20.0


def _best(fn: Callable[[], Any], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        gc.disable()  # the cyclic collector's passes grow with the heap, not with the code under test
        try:
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
        finally:
            gc.enable()
    return max(best, 1e-6)


def _ratio(make: Callable[[int], Callable[[], Any]]) -> float:
    small, large = make(SMALL), make(LARGE)
    _best(small, 1)  # warm caches (schema lookups, parse caches)
    ratio = float("inf")
    for _ in range(3):  # a busy machine can only inflate one measurement, never deflate a quadratic one
        ratio = min(ratio, _best(large) / _best(small, 5))
        if ratio < MAX_RATIO:
            break
    return ratio


def _members(n: int) -> list[dict[str, Any]]:
    return [{"value": f"member-{i:06d}", "type": "User"} for i in range(n)]


def _emails(n: int) -> list[dict[str, Any]]:
    return [{"value": f"user{i}@example.com", "type": "work"} for i in range(n)]


def test_member_validation_is_linear() -> None:
    assert _ratio(lambda n: (lambda m=_members(n): check_members(m))) < MAX_RATIO


def test_multi_valued_create_validation_is_linear() -> None:
    ut = user_type()

    def make(n: int) -> Callable[[], Any]:
        body = {"schemas": [USER], "userName": "many", "emails": _emails(n)}
        return lambda: prepare_write(body, ut)

    assert _ratio(make) < MAX_RATIO


def test_group_patch_adding_members_is_linear() -> None:
    gt = group_type()

    def make(n: int) -> Callable[[], Any]:
        ops = [{"op": "add", "path": "members", "value": _members(n)}]
        return lambda: apply_patch({"displayName": "g"}, ops, gt, resource_id="g")

    assert _ratio(make) < MAX_RATIO


def test_many_one_member_operations_fold_linearly() -> None:
    gt = group_type()

    def make(n: int) -> Callable[[], Any]:
        # Entra-style: one operation per member, adds and removes interleaved
        ops: list[dict[str, Any]] = []
        for i in range(n // 2):
            ops.append({"op": "add", "path": "members", "value": [{"value": f"m{i}"}]})
            ops.append({"op": "remove", "path": f'members[value eq "m{i // 2}"]'})
        return lambda: apply_patch({"displayName": "g"}, ops, gt, resource_id="g")

    assert _ratio(make) < MAX_RATIO


def test_user_patch_adding_emails_is_linear() -> None:
    ut = user_type()

    def make(n: int) -> Callable[[], Any]:
        data = {"userName": "u", "emails": _emails(n)}
        ops = [{"op": "add", "path": "emails", "value": [{"value": f"new{i}@example.com"} for i in range(n)]}]
        return lambda: apply_patch(data, ops, ut, resource_id="u")

    assert _ratio(make) < MAX_RATIO


def test_filtered_replace_over_many_values_is_linear() -> None:
    ut = user_type()

    def make(n: int) -> Callable[[], Any]:
        data = {"userName": "u", "emails": _emails(n)}
        ops = [{"op": "replace", "path": 'emails[type eq "work"].display', "value": "Work"}]
        return lambda: apply_patch(data, ops, ut, resource_id="u")

    assert _ratio(make) < MAX_RATIO


def test_merge_multi_keeps_one_primary_and_no_duplicates() -> None:
    existing = [{"value": "a", "primary": True}, {"value": "b"}]
    added = [{"value": "c", "primary": True}, {"value": "a"}, {"value": "b"}, {"value": "d", "primary": True}]
    out = merge_multi(existing, added)
    assert out == [{"value": "a"}, {"value": "b"}, {"value": "c"}, {"value": "d", "primary": True}]


def test_member_fold_semantics_are_kept() -> None:
    gt = group_type()
    ops = [
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}, {"value": "a"}]},
        {"op": "remove", "path": 'members[value eq "a"]'},
        {"op": "add", "path": "members", "value": [{"value": "c"}]},
    ]
    mc = apply_patch({"displayName": "g"}, ops, gt, resource_id="g").members
    assert mc is not None
    assert [m["value"] for m in mc.add] == ["b", "c"] and mc.remove_ids == ["a"] and not mc.cleared
    ops.append({"op": "replace", "path": "members", "value": [{"value": "x"}, {"value": "x"}]})
    ops.append({"op": "remove", "path": 'members[value eq "x"]'})
    ops.append({"op": "add", "path": "members", "value": [{"value": "y"}]})
    mc = apply_patch({"displayName": "g"}, ops, gt, resource_id="g").members
    assert mc is not None
    assert mc.replace_all == [{"value": "y"}] and mc.add == [] and mc.remove_ids == []


def test_many_extension_keys_are_linear() -> None:
    ut = user_type()

    def make(n: int) -> Callable[[], Any]:
        body = {"schemas": [USER, *(f"urn:example:ext{i}" for i in range(n))], "userName": "u",
                **{f"urn:example:ext{i}:attr": i for i in range(n)}}
        return lambda: prepare_write(body, ut)

    assert _ratio(make) < MAX_RATIO
