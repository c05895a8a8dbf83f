"""ffrtmp's vocabulary and pure core: messages, the job decider, policy, and the event store.

Imports nothing of ours. The pure modules (everything but ``store``'s JetStream side) import no
clock, socket or random source; time and ids come in as arguments.
"""
