"""The fxbench harness: workloads, timing, memory and error metrics, sweeps, the report and the CLI.

Installed as ``fixedpoint.bench``; the ``fxbench`` command is :func:`fixedpoint.bench.cli.main`.
"""
