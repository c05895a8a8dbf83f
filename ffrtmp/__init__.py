"""ffrtmp's control plane and faces: embedded NATS, scheduler, exporter, config and the CLI."""

__version__ = "0.1.0"
