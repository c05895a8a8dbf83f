"""``GstEngine``: the second engine, one ``gst-launch-1.0 -e`` process per attempt.

``start`` runs the same checks as FFmpeg's engine (``agent.preflight``), refuses a job its
GStreamer cannot express or lacks elements for, opens a file or http(s) input once
(``agent.inputprobe``) to learn whether it has audio (a muxer pad that never gets data would
hang the pipeline; a live source is not opened twice, and its video alone is encoded), builds
the pipeline (``agent.gst_pipeline``) and starts it in its own process group at a lower
priority (``agent.child``), steered like FFmpeg (``agent.steering``). A file output is written
under a temporary name and published only on success (``agent.output``). Each frame the
progress element passes becomes live progress (``agent.gst_output``); a file or URL input is
ended at the job's duration by SIGINT, which ``-e`` turns into a clean end of stream. Cancel
sends SIGINT, then SIGTERM, then SIGKILL. A non-zero exit is classified from gst-launch's
error lines.
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

from agent import gst_output, gst_pipeline, inputprobe, outcome, preflight
from agent.child import TAIL_BYTES, Child, Exit
from agent.command import choose_preset
from agent.engine import Done, Ending, Failed, LiveProgress, Stopped
from agent.ffmpeg_engine import CANCEL_GRACE_S, DEFAULT_NICE
from agent.inputheader import InputHeader, media_s
from agent.logs import command_line
from agent.output import claim, discard, publish, written_bytes
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

# Inputs opened once before the encode to learn whether they carry audio: a muxer pad that
# never gets data would hang the pipeline. Live sources are not opened twice (their only
# connection); their video alone is encoded.
PROBED: Final = frozenset({InputKind.FILE})
PROBED_SCHEMES: Final = frozenset({"http", "https"})
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class GstSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the engine runs GStreamer on this machine."""

    launch: str  # gst-launch-1.0
    ffmpeg: str  # reads a file or URL input's streams
    elements: tuple[str, ...]  # the elements of ours this machine has (``agent.gst_probe``)
    cores: int = 1
    work_dir: str = ""
    min_free_bytes: int = preflight.MIN_FREE_BYTES
    nice: int = DEFAULT_NICE
    cancel_grace_s: float = CANCEL_GRACE_S
    tail_bytes: int = TAIL_BYTES
    media_roots: tuple[str, ...] = ()  # file inputs and outputs must lie under one; () anywhere


def _probed(location: str) -> bool:
    kind = input_kind(location)
    return kind in PROBED or (
        kind is InputKind.URL and location.split("://", 1)[0].lower() in PROBED_SCHEMES
    )


def refusal(spec: JobSpec, elements: frozenset[str]) -> Failed | None:
    """Why this agent's GStreamer cannot run the job, or None when it can."""
    unmet = [need for need in gst_pipeline.requirements(spec) if not need.met_by(elements)]
    if not unmet:
        return None
    # A job no GStreamer can express is the job's fault; a missing element is this agent's.
    fault = any(not need.any_of for need in unmet)
    return Failed(
        reason=FailureReason.USER_ERROR if fault else FailureReason.RUNTIME_ERROR,
        message=f"GStreamer cannot run it: lacks {', '.join(need.phrase for need in unmet)}",
    )


class GstEngine:
    """Starts GStreamer attempts; ``energy`` measures joules where the machine can."""

    def __init__(
        self,
        settings: GstSettings,
        energy: EnergyMeter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep the settings, the energy meter and the clock that times attempts."""
        self.settings = settings
        self.energy = energy
        self.clock = clock
        self.elements = frozenset(settings.elements)

    @property
    def work_dir(self) -> Path:
        """Where the engine checks for room when the output is not a file."""
        return Path(self.settings.work_dir or tempfile.gettempdir())

    def plan(
        self, dispatch: Dispatch, audio_in_input: bool, write_to: Path | None = None
    ) -> gst_pipeline.Plan:
        """The pipeline for this dispatch on this machine."""
        spec = dispatch.spec
        chosen = scenario(spec.scenario)
        preset = spec.preset or choose_preset(chosen.encoder, self.settings.cores)
        machine = gst_pipeline.Machine(elements=self.elements, preset=preset, gpu=dispatch.gpu)
        return gst_pipeline.build(
            self.settings.launch, spec, machine, audio_in_input=audio_in_input,
            write_to=None if write_to is None else str(write_to),
        )  # fmt: skip

    async def _input(self, spec: JobSpec) -> inputprobe.InputInfo | Failed:
        """A file or http(s) input opened once: its audio and length, or why it cannot be read."""
        if not _probed(spec.input):
            return inputprobe.InputInfo()
        return await inputprobe.probe(self.settings.ffmpeg, spec.input)

    async def start(self, dispatch: Dispatch) -> GstExecution | Failed:
        """Start the attempt, or say why it cannot run."""
        spec = dispatch.spec
        try:
            roots = tuple(Path(root) for root in self.settings.media_roots)  # resolved at start
            refused = preflight.check(spec, self.work_dir, self.settings.min_free_bytes, roots)
            refused = refused or refusal(spec, self.elements)
            if refused is not None:
                return refused
            found = await self._input(spec)
            if isinstance(found, Failed):
                return found
            return GstExecution(self, dispatch, found)
        except InvalidSpec as exc:  # a scenario or scheme this agent's version does not know
            return Failed(reason=FailureReason.USER_ERROR, message=str(exc))
        except OSError as exc:
            return Failed(
                reason=FailureReason.RUNTIME_ERROR, message=f"GStreamer did not start: {exc}"
            )


class GstExecution:
    """One running attempt: a gst-launch pipeline from start to end of stream."""

    def __init__(self, engine: GstEngine, dispatch: Dispatch, found: inputprobe.InputInfo) -> None:
        """Start the pipeline now; ``wait`` follows it to its end."""
        self._engine = engine
        self._spec = dispatch.spec
        self._gpu = dispatch.gpu
        self._scenario: Scenario = scenario(dispatch.spec.scenario)
        self._written: Path | None = None  # a file output's temporary name
        if output_kind(self._spec.output) is OutputKind.FILE:
            self._written = claim(Path(self._spec.output), dispatch.job, dispatch.attempt)
        audio = gst_pipeline.has_audio_path(self._spec) and found.audio_codec is not None
        self.plan = engine.plan(dispatch, audio, self._written)
        # What it encodes: the spec's duration, cut short by a shorter input; None: until EOS.
        self._media_s = media_s(
            planned_duration_s(self._spec), InputHeader(duration_s=found.duration_s)
        )
        self._parser = gst_output.GstProgressParser()
        self._sample = gst_output.GstSample()
        self._cut = False
        self._canceled = False
        self._ending: Ending | None = None
        self._energy_start = self._joules()
        settings = engine.settings
        self._steer: Steering | None = None
        child = Child(self.plan.argv, self._on_line, niceness=settings.nice,
                      tail_bytes=settings.tail_bytes)  # fmt: skip
        self._steer = Steering(child, engine.clock)
        log.info("job %s attempt %d: GStreamer %d started: %s", dispatch.job, dispatch.attempt,
                 child.pid, shlex.join(self.plan.argv))  # fmt: skip
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def steering(self) -> Steering:
        """The process controls (set once the child has started)."""
        assert self._steer is not None  # noqa: S101 - set in __init__ right after the start
        return self._steer

    @property
    def pid(self) -> int:
        """The process id (and process group id) of the gst-launch now running."""
        return self.steering.child.pid

    @property
    def argv(self) -> tuple[str, ...]:
        """The pipeline's command line."""
        return self.plan.argv

    def _joules(self) -> float | None:
        return None if self._engine.energy is None else self._engine.energy.joules(self._gpu)

    def _on_line(self, line: str) -> None:
        sample = self._parser.feed(line)
        if sample is None:
            return
        self._sample = sample
        cut = self.plan.cut_at_s
        steer = self._steer
        reached = cut is not None and (sample.out_time_s or 0.0) >= cut
        if reached and not self._cut and steer is not None:
            self._cut = True  # the job's duration is encoded: end of stream, cleanly
            steer.child.signal(signal.SIGINT)

    def frames(self) -> int:
        """Frames encoded: those the progress element passed, within the cut of a decoded input."""
        counted = self._sample.frames
        if self.plan.cut_at_s is None:
            return counted
        return min(counted, round(self.plan.cut_at_s * self._scenario.fps))

    def progress(self) -> LiveProgress:
        """Percent of the job's duration encoded, with frames, fps and speed since the start."""
        sample = self._sample
        frames = self.frames()
        done = min(sample.out_time_s or 0.0, self.plan.cut_at_s or float("inf"))
        active = self.steering.active_s()
        duration = self._media_s
        percent = min(100.0, max(0.0, 100.0 * done / duration)) if duration else 0.0
        if isinstance(self._ending, Done):
            percent = 100.0
        return LiveProgress(
            percent=percent,
            frames=frames,
            fps=frames / active if active > 0 and frames else None,
            speed=done / active if active > 0 and sample.out_time_s is not None else None,
            out_time_s=None if sample.out_time_s is None else done,
            media_s=duration,
        )

    def pause(self) -> bool:
        """SIGSTOP the pipeline's process group; True when it was running."""
        return self._ending is None and self.steering.pause()

    def resume(self) -> bool:
        """SIGCONT the process group; True when it was paused."""
        return self.steering.resume()

    @property
    def paused(self) -> bool:
        """Whether the process group is stopped."""
        return self.steering.paused

    @property
    def canceled(self) -> bool:
        """Whether ``cancel`` was called."""
        return self._canceled

    async def cancel(self) -> None:
        """End of stream by SIGINT, then SIGTERM, then SIGKILL, each after the grace period."""
        self._canceled = True
        await self.steering.stop(STOP_SIGNALS, self._engine.settings.cancel_grace_s)
        await self.wait()

    async def wait(self) -> Ending:
        """The attempt's end."""
        return await asyncio.shield(self._task)

    def log_tail(self) -> bytes:
        """The pipeline's command line, then the end of gst-launch's stderr (warnings, errors)."""
        return command_line(self.argv) + self.steering.child.tail()

    async def _run(self) -> Ending:
        try:
            ending = self._finish(await self.steering.child.wait())
        except Exception as exc:
            log.exception("attempt ended by an engine error")
            ending = Failed(reason=FailureReason.RUNTIME_ERROR, message=f"engine error: {exc}")
        finally:
            if self._written is not None:  # published by now when it succeeded
                discard(self._written)
        self._ending = ending
        return ending

    def _finish(self, ended: Exit) -> Ending:
        wall_s = self.steering.active_s()
        energy_end = self._joules()
        if self._canceled:
            return Stopped()
        if ended.returncode != 0:
            return gst_output.classify(ended.returncode, self.steering.child.tail())
        if self._sample.frames == 0:
            return Failed(
                reason=FailureReason.USER_ERROR,
                message="GStreamer ended without a frame: the input has no video stream",
            )
        output_bytes = self._output_bytes()
        if self._written is not None:
            refused = publish(self._written, Path(self._spec.output), self._spec.overwrite)
            if refused is not None:
                return refused
        measured = outcome.Measured(
            wall_s=wall_s,
            frames=self.frames(),
            fps=self._scenario.fps,
            cpu_s=ended.cpu_s,
            output_bytes=output_bytes,
            energy_j=outcome.energy_between(self._energy_start, energy_end),
        )
        return Done(results=outcome.results(measured))

    def _output_bytes(self) -> int | None:
        return None if self._written is None else written_bytes(self._written)
