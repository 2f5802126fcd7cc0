"""The change feed's background tasks in a serving process: retention and webhook delivery."""

from __future__ import annotations

import asyncio

from gateway.events.delivery import DeliveryWorker
from gateway.events.feed import retention_loop
from gateway.settings import Settings
from gateway.store.base import Store


def feed_tasks(store: Store, settings: Settings) -> list[asyncio.Task[None]]:
    """Start them (the app's lifecycle cancels them at shutdown)."""
    tasks = [asyncio.create_task(retention_loop(store, settings))]
    if settings.events_enabled and settings.webhook_delivery:
        tasks.append(asyncio.create_task(DeliveryWorker(store, settings).run()))
    return tasks
