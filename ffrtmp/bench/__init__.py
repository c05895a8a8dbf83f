"""Benchmarks: ffrtmp's event store against raw nats-py, on one embedded nats-server.

Each benchmark starts the shipped server (``nats.conf``, ``sync_interval: always``) in a
temporary directory, measures our path and the raw nats-py baseline in interleaved rounds, and
reports medians and their ratio. The arithmetic lives in ``stats`` (pure, unit-tested); the
rest is I/O. Benchmarks are commands, never tests with wall-clock assertions.
"""
