"""The built-in plugins' tests use the plugin-author kit as any third-party plugin would."""

pytest_plugins = ["gateway.testing"]
