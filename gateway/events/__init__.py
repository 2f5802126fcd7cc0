"""The change feed for the application: outbox events, the events API's reads, webhooks and their delivery."""
