"""Tenants, API keys, role mapping, the SSO sign-in decision and the activity log."""
