"""The farm's client: connect, send a command and wait for its decision, read a job, follow the log.

One place that speaks to a farm over NATS for whoever drives it: the CLI, the HTTP API, the
benches and the tests. Nothing here prints or parses flags; the faces do that.
"""
