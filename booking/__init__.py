"""Booking & Consultation Service: core wiring shared by the API, the worker and the CLI."""
