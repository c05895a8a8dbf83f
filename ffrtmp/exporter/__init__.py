"""The Prometheus exporter: the log's figures from its own projection, plus heartbeats.

``ffrtmp exporter run`` serves ``/metrics``. Counters are counts of facts in the log, read from
the exporter's projection at scrape time, so a restart neither resets nor doubles them;
per-worker gauges come from the heartbeat stream; the exporter's own health (lag behind the
log, uptime) comes from itself.
"""
