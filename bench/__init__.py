"""Benchmarks: the studio measured against the limits of its own stack.

`make bench` (or `python -m bench`) runs them all against a private database
and Redis and writes bench/RESULTS.md. See README.md, "Benchmarks".
"""
