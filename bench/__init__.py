"""Benchmarks (``make bench``): long runs that print throughput and ratios against a baseline measured in
the same run, never wall-clock asserts. Each module here has a ``main()``; ``python -m bench`` runs them all."""
