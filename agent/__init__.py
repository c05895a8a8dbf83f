"""The worker agent: capabilities, FFmpeg runner, heartbeats (built in the agent issue)."""
