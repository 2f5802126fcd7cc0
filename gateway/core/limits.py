"""Bounded work per request: checks on parsed JSON bodies that every endpoint shares.

Each check is one iterative pass over the value (no recursion, so no depth can overflow the
stack) and raises the SCIM error the client can act on, naming the setting that bounds it.
"""

from __future__ import annotations

from typing import Any

from gateway.core.errors import InvalidSyntaxError, InvalidValueError

__all__ = ["check_json", "count_elements", "check_elements", "check_operations", "check_text"]


def check_text(value: str, where: str) -> None:
    """NUL and lone surrogates are refused alike on every backend (PostgreSQL cannot store either)."""
    if "\x00" in value:
        raise InvalidValueError(f"{where} contains a NUL character (\\u0000), which is not accepted")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValueError(f"{where} contains a lone UTF-16 surrogate, which is not valid Unicode") from None


def check_json(value: Any, *, max_depth: int, setting: str = "max_json_depth", strings: bool = True) -> None:
    """Refuse bodies nested deeper than ``max_depth`` (400 invalidSyntax) or holding NUL/lone surrogates
    in any key or string (400 invalidValue). ``strings=False`` checks the depth only: for a value that
    orjson parsed from UTF-8 bytes without a ``\\u0000`` escape, which can hold neither (orjson refuses
    lone surrogates, and JSON raw control characters)."""
    if not strings:
        _check_depth(value, max_depth, setting)
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise InvalidSyntaxError(f"request body is nested deeper than {max_depth} levels (setting {setting})")
            for k, v in item.items():
                if isinstance(k, str):
                    _check_string(k)
                if isinstance(v, (dict, list)):
                    stack.append((v, depth + 1))
                elif isinstance(v, str):
                    _check_string(v)
        elif isinstance(item, list):
            if depth > max_depth:
                raise InvalidSyntaxError(f"request body is nested deeper than {max_depth} levels (setting {setting})")
            for v in item:
                if isinstance(v, (dict, list)):
                    stack.append((v, depth + 1))
                elif isinstance(v, str):
                    _check_string(v)
        elif isinstance(item, str):
            _check_string(item)


def _check_depth(value: Any, max_depth: int, setting: str) -> None:
    level: list[Any] = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:  # breadth first, one level of containers at a time
        depth += 1
        if depth > max_depth:
            raise InvalidSyntaxError(f"request body is nested deeper than {max_depth} levels (setting {setting})")
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below.extend(v for v in children if isinstance(v, (dict, list)))
        level = below


def _check_string(s: str) -> None:
    if "\x00" in s:
        raise InvalidValueError("request body contains a NUL character (\\u0000) in a string, which is not accepted")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValueError("request body contains a lone UTF-16 surrogate, which is not valid Unicode") from None


def count_elements(value: Any, *, stop: int | None = None) -> int:
    """How many array elements ``value`` holds at any depth (the top-level ``schemas`` and PATCH
    ``Operations`` arrays themselves excepted); stops counting once past ``stop``."""
    total = 0
    stack: list[Any] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and k.lower() == "operations" and isinstance(v, list):
                stack.extend(v)
            elif not (isinstance(k, str) and k.lower() == "schemas"):
                stack.append(v)
    else:
        stack.append(value)
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            total += len(item)
            if stop is not None and total > stop:
                return total
            stack.extend(v for v in item if isinstance(v, (dict, list)))
        elif isinstance(item, dict):
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
    return total


def check_elements(body: Any, cap: int, setting: str = "max_elements_per_request") -> None:
    """400 invalidValue when a body carries more than ``cap`` array elements (members, emails, ...)."""
    if cap > 0 and count_elements(body, stop=cap) > cap:
        raise InvalidValueError(
            f"request carries more than {cap} multi-valued elements (setting {setting}); send the change in several requests"
        )


def check_operations(operations: Any, cap: int, setting: str = "max_patch_operations") -> None:
    """400 invalidValue when a PATCH has more than ``cap`` operations."""
    if cap > 0 and isinstance(operations, list) and len(operations) > cap:
        raise InvalidValueError(
            f"PATCH has {len(operations)} operations, more than the {cap} allowed (setting {setting}); "
            "send the change in several requests"
        )
