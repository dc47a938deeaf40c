"""The thin HTTP layer: CRUD for the catalog, workflow starts, updates and signals."""
