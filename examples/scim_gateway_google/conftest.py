"""The plugin-author kit: ``gateway.testing`` gives ``scim``, ``build_app``, ``run_hook`` and friends."""

pytest_plugins = ["gateway.testing"]
