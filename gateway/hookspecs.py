"""The plugin contract: every hook scim-gateway calls, in the order it calls them.

Hooks are called through pluggy with keyword arguments, so an implementation may take fewer
parameters than its spec; order is pluggy's (tryfirst, explicit plugins, third-party plugins by
entry-point name, built-ins by name, trylast). Per-request hooks run only on the plugin identified
for the request (see :func:`scim_identify_client`) plus cross-cutting plugins (plugins that do
not implement ``scim_identify_client``), so one IdP's fixes never touch another IdP's traffic.

Hook implementations are synchronous functions over plain data (``scim_startup`` and
``scim_resource_changed`` may be coroutines). They return a value or edit the object they were
handed in place; they do no I/O on the request path. Raise a :class:`gateway.ScimError`
subclass to reject a request with a SCIM error.

Specs only ever gain parameters; a parameter is never renamed or removed.

:func:`scim_selftest_sequence` is not a request hook: the self-test (``scim-gateway selftest``)
calls it to fetch the provisioning sequence it plays, and it comes last here for that reason.
"""

from __future__ import annotations

from typing import Any

import pluggy

from gateway.types import Change, Client, ScimRequest, Tenant

hookspec = pluggy.HookspecMarker("scim_gateway")


@hookspec
def scim_startup(gateway: Any) -> None:
    """Called once when the application starts, before it serves requests. May be a coroutine.

    ``gateway`` is the :class:`gateway.runtime.Gateway` (settings, store). Read the plugin's own
    settings with ``gateway.plugin_settings(name)`` (``SCIM_GATEWAY_PLUGIN_<NAME>__<KEY>``), validate
    them here and raise to refuse to start with a bad configuration.
    """


@hookspec(firstresult=True)
def scim_identify_client(request: ScimRequest, tenant: Tenant) -> str | None:
    """Name the IdP plugin that should handle ``request``; firstresult.

    Called only for tenants whose ``idp`` setting is ``auto`` (otherwise the setting decides).
    Return the plugin name (``"okta"``) when the request comes from your IdP, else None. The
    built-in ``generic`` plugin answers last, so every request is handled by someone.
    """


@hookspec
def scim_normalize_query(client: Client, request: ScimRequest, query: dict[str, str]) -> None:
    """Edit the query parameters (``filter``, ``attributes``, ``excludedAttributes``, ``sortBy``...) in place.

    Fires for every request with query parameters (and for ``POST .search`` bodies, whose fields
    arrive here as strings), before they are parsed and validated.
    """


@hookspec
def scim_normalize_resource(client: Client, request: ScimRequest, payload: dict[str, Any]) -> None:
    """Edit a POST or PUT resource body in place, before validation.

    Use it to turn an IdP's non-standard shapes into RFC 7643 ones (string booleans, bare
    ``manager`` strings, legacy schema URIs). The core still validates the result strictly.
    """


@hookspec
def scim_normalize_patch(client: Client, request: ScimRequest, operations: list[dict[str, Any]]) -> None:
    """Edit a PATCH request's ``Operations`` list in place, before validation.

    Each operation is a dict with ``op``, optional ``path`` and ``value``. Operations may be
    rewritten, split (insert new dicts) or removed.
    """


@hookspec(firstresult=True)
def scim_correlation_filter(client: Client, request: ScimRequest, resource: dict[str, Any]) -> str | None:
    """Return the SCIM filter that finds an existing resource matching a create; firstresult.

    ``resource`` is the validated body of a POST. When the filter matches a stored resource the
    create is refused with 409 ``uniqueness``. The core default is ``userName eq "<userName>"`` for
    Users and no correlation for Groups; return ``""`` to disable correlation.
    """


@hookspec
def scim_shape_response(client: Client, request: ScimRequest, status: int, body: dict[str, Any] | None) -> None:
    """Edit a response body in place before it is sent (success and error bodies alike).

    ``body`` is None for responses without one (204).
    """


@hookspec
def scim_resource_changed(client: Client, change: Change) -> None:
    """Called after a change commits. May be a coroutine.

    For notifications only: the change is already durable. Errors are logged and never reach the
    client.
    """


@hookspec(firstresult=True)
def scim_selftest_sequence(idp: str) -> dict[str, Any] | None:
    """Return your IdP's provisioning sequence, as data, when ``idp`` is your plugin's name; firstresult.

    Not called per request: ``scim-gateway selftest --idp <name>`` and
    ``POST /api/v1/tenants/{id}/selftest`` call it once to learn which requests to play, in
    which order, with which headers, what the IdP expects back, and which vendor document says
    so. The document format is described in ``docs/testing_plugins.md`` and validated by
    :func:`gateway.selftest.sequence.parse` (a bad document is refused with the field named).
    Ship it as package data next to your recorded samples and load it with
    :func:`gateway.selftest.sequence.load`. Return None for any other ``idp``.
    """
