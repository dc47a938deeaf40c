"""The base layer: settings and the vocabulary every other layer speaks.

Nothing here imports another package of the project (a test keeps it so).
"""
