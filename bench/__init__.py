"""Benchmarks, run by hand (``python -m bench.<name>``): each prints throughput with a stage
breakdown beside a baseline. Nothing here is asserted: the machine is shared and noisy."""
