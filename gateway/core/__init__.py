"""SCIM 2.0 protocol core: schemas, errors, filters, PATCH, projection, service.

Nothing here imports aiohttp or pluggy; a test checks it.
"""
