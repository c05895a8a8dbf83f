"""The scheduler: a pure process manager (placement, order, timers) and the service around it."""
