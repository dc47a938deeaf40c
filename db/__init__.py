"""Persistence: typed SQLAlchemy models, engine and session factories, query helpers."""
