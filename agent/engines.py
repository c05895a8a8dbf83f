"""``EngineChooser``: one agent, two engines; each dispatch goes to the one its job runs on.

A job names ``ffmpeg``, ``gstreamer`` or ``auto``. For ``auto`` the agent applies the rule the
scheduler placed it by (``agent.needs.engine_for``): FFmpeg when this agent can run the job with
it, else GStreamer. An agent without GStreamer is never sent a ``gstreamer`` job; if one comes
anyway (a registration older than a reinstall) it fails as a runtime error, retried elsewhere.
"""

from __future__ import annotations

import logging

from agent.engine import Engine, Execution, Failed
from agent.needs import engine_for, needs_of
from events.agent_events import Capabilities
from events.enums import Engine as EngineName
from events.enums import FailureReason
from events.errors import InvalidSpec
from events.spec import JobSpec
from events.work import Dispatch

log = logging.getLogger(__name__)


class EngineChooser:
    """Starts each attempt on FFmpeg or GStreamer as its job asks."""

    def __init__(
        self, ffmpeg: Engine, gstreamer: Engine | None, capabilities: Capabilities
    ) -> None:
        """The engines this agent has and the capabilities it registered."""
        self.ffmpeg = ffmpeg
        self.gstreamer = gstreamer
        self.capabilities = capabilities

    def choose(self, spec: JobSpec) -> EngineName:
        """The engine that runs this job here."""
        if spec.engine is not EngineName.AUTO:
            return spec.engine
        try:
            chosen = engine_for(needs_of(spec), self.capabilities)
        except InvalidSpec:
            return EngineName.FFMPEG  # FFmpeg's engine says what is wrong with the spec
        return chosen or EngineName.FFMPEG

    async def start(self, dispatch: Dispatch) -> Execution | Failed:
        """Start the attempt on the chosen engine."""
        chosen = self.choose(dispatch.spec)
        if dispatch.spec.engine is EngineName.AUTO:
            log.info("job %s attempt %d: auto runs it on %s", dispatch.job, dispatch.attempt,
                     chosen)  # fmt: skip
        if chosen is EngineName.GSTREAMER:
            if self.gstreamer is None:
                return Failed(
                    reason=FailureReason.RUNTIME_ERROR,
                    message="this agent has no GStreamer; another agent will take the job",
                )
            return await self.gstreamer.start(dispatch)
        return await self.ffmpeg.start(dispatch)
