"""Deterministic orchestration: nothing here may perform I/O."""
