"""The benchmark: the proxy measured against its backend alone, in the same run.

`python -m bench` (or `make bench`) prints a markdown table; see `python -m bench --help`.
Ratios hold on a noisy machine and absolute times do not, so every proxy figure stands beside
the backend-alone figure from the same run. Speed is measured here, on demand, never asserted
by a timed test.
"""
