"""``FfmpegEngine``: the engine a farm runs, one FFmpeg process per attempt.

``start`` checks the attempt can run (``agent.preflight``: input there and inside the media
roots, output not already there unless overwritten), opens a file input once
(``agent.inputprobe``: undecodable data fails here as ``user_error``, and the audio codec
decides copy or encode), builds the command (``agent.command``) and starts FFmpeg in its own process
group at a lower CPU priority, set to die with the agent (``agent.child``). A file output is
written under a temporary name and published only on success (``agent.output``). The exact
command line leads the attempt's log (``log_tail``) and the agent's own log. While it runs,
``-progress`` blocks on stdout become live progress and, for live outputs, a stall count;
stderr's tail is kept for ``ffrtmp jobs logs``. Pause and resume stop and continue the whole
group; cancel terminates it and kills it after a grace period (``agent.steering``, which the
GStreamer engine steers its process with too). When FFmpeg exits 0 the engine
runs the quality pass if the job asked for metrics (``agent.quality``), publishes a file output
and returns the results (``agent.outcome``); otherwise it classifies the failure. Wall time
excludes time spent paused, so rates describe the encoder, not the operator.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec

from agent import command, inputprobe, outcome, preflight, quality
from agent.child import TAIL_BYTES, Child, Exit
from agent.engine import Done, Ending, Failed, LiveProgress, Stopped
from agent.inputheader import InputHeader, input_header, media_s
from agent.logs import command_line
from agent.output import claim, discard, publish, written_bytes
from agent.progress import ProgressParser, Sample, StallCounter, live
from agent.steering import Steering
from agent.telemetry import EnergyMeter
from events.enums import FailureReason
from events.errors import InvalidSpec
from events.scenarios import Scenario, scenario
from events.spec import (
    InputKind,
    JobSpec,
    OutputKind,
    input_kind,
    output_kind,
    planned_duration_s,
)
from events.work import Dispatch

log = logging.getLogger(__name__)

DEFAULT_NICE: Final = 10
CANCEL_GRACE_S: Final = 5.0


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the engine runs FFmpeg on this machine."""

    ffmpeg: str
    cores: int = 1
    work_dir: str = ""  # quality copies go here; empty: the system's temporary directory
    min_free_bytes: int = preflight.MIN_FREE_BYTES
    nice: int = DEFAULT_NICE
    cancel_grace_s: float = CANCEL_GRACE_S
    tail_bytes: int = TAIL_BYTES
    media_roots: tuple[str, ...] = ()  # file inputs and outputs must lie under one; () anywhere


class FfmpegEngine:
    """Starts FFmpeg attempts; ``energy`` measures joules where the machine can."""

    def __init__(
        self,
        settings: EngineSettings,
        energy: EnergyMeter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep the settings, the energy meter and the clock that times attempts."""
        self.settings = settings
        self.energy = energy
        self.clock = clock

    @property
    def work_dir(self) -> Path:
        """Where the engine writes files of its own."""
        return Path(self.settings.work_dir or tempfile.gettempdir())

    @property
    def roots(self) -> tuple[Path, ...]:
        """The media roots (``agent.main.media_roots`` resolved their symlinks at start)."""
        return tuple(Path(root) for root in self.settings.media_roots)

    async def start(self, dispatch: Dispatch) -> FfmpegExecution | Failed:
        """Start the attempt, or say why it cannot run."""
        spec, settings = dispatch.spec, self.settings
        try:
            scenario(spec.scenario)
            if input_kind(spec.input) is InputKind.PATTERN:
                command.pattern_source(spec.input, scenario(spec.scenario))
            refused = preflight.check(spec, self.work_dir, settings.min_free_bytes, self.roots)
            if refused is not None:
                return refused
            probed = await self._probe(spec)
            if isinstance(probed, Failed):
                return probed
            return FfmpegExecution(self, dispatch, probed.audio_codec)
        except InvalidSpec as exc:  # a scenario or scheme this agent's version does not know
            return Failed(reason=FailureReason.USER_ERROR, message=str(exc))
        except OSError as exc:
            return Failed(
                reason=FailureReason.RUNTIME_ERROR, message=f"FFmpeg did not start: {exc}"
            )

    async def _probe(self, spec: JobSpec) -> inputprobe.InputInfo | Failed:
        """Open a file input once (not a URL: a second fetch costs a slow origin its time)."""
        if (
            input_kind(spec.input) is not InputKind.FILE
            or output_kind(spec.output) is OutputKind.NONE
        ):
            return inputprobe.InputInfo()
        return await inputprobe.probe(self.settings.ffmpeg, spec.input)


class FfmpegExecution:
    """One running attempt: an FFmpeg encode, then its quality pass when asked."""

    def __init__(
        self, engine: FfmpegEngine, dispatch: Dispatch, source_audio: str | None = None
    ) -> None:
        """Start the encode now; ``wait`` follows it to its end."""
        self._engine = engine
        self._spec = dispatch.spec
        self._gpu = dispatch.gpu
        self._scenario: Scenario = scenario(dispatch.spec.scenario)
        settings = engine.settings
        self._copy: Path | None = None
        self._written: Path | None = None  # a file output's temporary name
        if output_kind(self._spec.output) is OutputKind.FILE:
            self._written = claim(Path(self._spec.output), dispatch.job, dispatch.attempt)
        elif self._spec.quality_metrics:
            self._copy = engine.work_dir / f"ffrtmp-{dispatch.job}-{dispatch.attempt}.mkv"
        self._plan = command.build(
            settings.ffmpeg,
            self._spec,
            self._scenario,
            command.Machine(cores=settings.cores),
            gpu=dispatch.gpu,
            quality_copy=None if self._copy is None else str(self._copy),
            write_to=None if self._written is None else str(self._written),
            source_audio=source_audio,
        )
        self._parser = ProgressParser()
        self._sample = Sample()
        self._header: InputHeader | None = None
        self._checked = 0  # frames the quality pass has compared so far
        self._stalls = StallCounter()
        self._canceled = False
        self._ending: Ending | None = None
        self._encode_tail = b""
        self._quality_tail = b""
        self._energy_start = self._joules()
        self._steer: Steering | None = None  # progress may arrive before it is set
        child = Child(
            self._plan.argv, self._on_line, niceness=settings.nice, tail_bytes=settings.tail_bytes
        )
        self._steer = Steering(child, engine.clock)
        log.info("job %s attempt %d: FFmpeg %d started: %s", dispatch.job, dispatch.attempt,
                 self.pid, shlex.join(self._plan.argv))  # fmt: skip
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def steering(self) -> Steering:
        """The controls of the FFmpeg now running (the encode, then the quality pass)."""
        assert self._steer is not None  # noqa: S101 - set in __init__ right after the start
        return self._steer

    @property
    def _child(self) -> Child:
        return self.steering.child

    @property
    def pid(self) -> int:
        """The process id (and process group id) of the FFmpeg now running."""
        return self._child.pid

    @property
    def argv(self) -> tuple[str, ...]:
        """The encode's command line."""
        return self._plan.argv

    def active_s(self) -> float:
        """Seconds the attempt has run, pauses excluded: what a time budget counts."""
        return self.steering.active_s()

    def _joules(self) -> float | None:
        return None if self._engine.energy is None else self._engine.energy.joules(self._gpu)

    def _on_line(self, line: str) -> None:
        sample = self._parser.feed(line)
        if sample is None:
            return
        self._sample = sample
        steer = self._steer
        if self._plan.live and steer is not None and not steer.paused:
            self._stalls.observe(steer.active_s(), sample.out_time_s)

    def media_s(self) -> float | None:
        """Seconds of media this attempt encodes, once known; None: the input has no end."""
        if self._header is None and self._sample.out_time_s is not None:
            # FFmpeg prints the input's header before its first progress block.
            tail = self._encode_tail or self._child.tail()
            self._header = input_header(tail.decode(errors="replace"))
        return media_s(planned_duration_s(self._spec), self._header)

    def progress(self) -> LiveProgress:
        """Percent of the media encoded (once known), with FFmpeg's fps, speed and bitrate."""
        current = msgspec.structs.replace(
            live(self._sample, self.media_s()), checked_frames=self._checked
        )
        if isinstance(self._ending, Done):
            return msgspec.structs.replace(current, percent=100.0)
        return current

    def pause(self) -> bool:
        """SIGSTOP the process group; True when it was running."""
        return self._ending is None and self.steering.pause()

    def resume(self) -> bool:
        """SIGCONT the process group; True when it was paused."""
        if not self.steering.resume():
            return False
        self._stalls.rebase()
        return True

    @property
    def paused(self) -> bool:
        """Whether the process group is stopped."""
        return self.steering.paused

    @property
    def canceled(self) -> bool:
        """Whether ``cancel`` was called."""
        return self._canceled

    async def cancel(self) -> None:
        """SIGTERM the group (continuing it if stopped), SIGKILL after the grace period."""
        self._canceled = True
        await self.steering.stop((signal.SIGTERM,), self._engine.settings.cancel_grace_s)
        await self.wait()

    async def wait(self) -> Ending:
        """The attempt's end."""
        return await asyncio.shield(self._task)

    def log_tail(self) -> bytes:
        """The command line, then the end of the encode's stderr (and the quality pass's)."""
        line = command_line(self._plan.argv)
        if not self._quality_tail:
            return line + self._child.tail()
        tail = (self._encode_tail + self._quality_tail)[-self._engine.settings.tail_bytes :]
        return line + tail

    async def _run(self) -> Ending:
        try:
            ending = await self._finish(await self._child.wait())
        except Exception as exc:
            log.exception("attempt ended by an engine error")
            ending = Failed(reason=FailureReason.RUNTIME_ERROR, message=f"engine error: {exc}")
        finally:
            if self._copy is not None:
                self._copy.unlink(missing_ok=True)
            if self._written is not None:  # published by now when it succeeded
                discard(self._written)
        self._ending = ending
        return ending

    async def _finish(self, ended: Exit) -> Ending:
        wall_s = self.active_s()
        energy_end = self._joules()
        self._encode_tail = self._child.tail()
        if self._canceled:
            return Stopped()
        if ended.returncode != 0:
            return outcome.classify(ended.returncode, self._encode_tail)
        scores = await self._quality() if self._spec.quality_metrics else None
        if self.canceled:  # asked while the quality pass ran
            return Stopped()
        output_bytes = self._output_bytes()
        if self._written is not None:
            refused = publish(self._written, Path(self._spec.output), self._spec.overwrite)
            if refused is not None:
                return refused
        measured = outcome.Measured(
            wall_s=wall_s,
            frames=self._sample.frames,
            fps=self._scenario.fps,
            cpu_s=ended.cpu_s,
            output_bytes=output_bytes,
            energy_j=outcome.energy_between(self._energy_start, energy_end),
            stalls=self._stalls.stalls if self._plan.live else None,
        )
        return Done(results=outcome.results(measured, scores))

    def _output_bytes(self) -> int | None:
        if self._written is not None:
            return written_bytes(self._written)
        size = self._sample.total_size
        return size if size is not None and size > 0 else None

    async def _quality(self) -> quality.Scores | None:
        if self._plan.compare_with is None:
            return None
        argv = quality.argv(
            self._engine.settings.ffmpeg, self._spec, self._scenario, self._plan.compare_with
        )
        checking = ProgressParser()

        def on_line(line: str) -> None:  # its blocks show the comparison advancing
            sample = checking.feed(line)
            if sample is not None:
                self._checked = sample.frames

        self.steering.child = Child(argv, on_line, niceness=self._engine.settings.nice,
                                    tail_bytes=self._engine.settings.tail_bytes)  # fmt: skip
        ended = await self._child.wait()
        self._quality_tail = self._child.tail()
        if ended.returncode != 0:
            log.warning("quality pass exited %d; metrics left unmeasured", ended.returncode)
            return None
        return quality.parse(self._quality_tail.decode(errors="replace"))
