"""DuckDB read models folded from the event log (built in the read-models issue)."""
