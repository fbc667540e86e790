"""Fault drills: the stream under repeated crashes and failing machines, judged by exact tables.

    python -m drills crashes [--events 200000 --rate 500 --kills 10]   # make drill
    python -m drills cluster [--events 200000 --rate 500]             # make drill-cluster

Each drill starts its own embedded services in a temporary folder, produces events at a steady
rate, injects its faults, waits until the stream has read everything, and compares every table
with the one computed independently from the topics (``eventflow_assets_tests/processing/
expected.py``). Run from the repository's root (they use the tests' reference implementation).
"""
