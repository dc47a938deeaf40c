"""Benchmarks of the booking service: ``python -m bench [scenario ...]`` or ``make bench``.

Every speed figure is measured over several rounds and reported beside a reference
measured in the same run, as a ratio, because the machines that run it are shared
and noisy. See bench/README.md.
"""
