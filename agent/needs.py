"""Pure: what a job needs of an agent, what an agent lacks for it, and which engine runs it.

The scheduler rejects a job no registered agent could ever run and places the rest on agents
that lack nothing (``ffrtmp.scheduler.placement``); the agent, given an ``auto`` job, picks
its engine with the same rule (``engine_for``). Both read this one module, so an agent never
receives work it would then refuse.

FFmpeg needs the scenario's encoder (an NVENC one proven on a GPU), the quality filters asked
for and the URL schemes' protocols. GStreamer needs the elements its pipeline uses
(``agent.gst_pipeline.requirements``) and, for NVENC, a GPU whose NVENC a test encode proved.
``auto`` takes FFmpeg when the agent can run the job with it, else GStreamer.
"""

from __future__ import annotations

import msgspec

from agent import gst_pipeline
from events.agent_events import Capabilities
from events.enums import Engine, QualityMetric
from events.scenarios import scenario
from events.spec import InputKind, JobSpec, OutputKind, input_kind, output_kind

QUALITY_FILTERS = {
    QualityMetric.PSNR: "psnr",
    QualityMetric.SSIM: "ssim",
    QualityMetric.VMAF: "libvmaf",
}


class Needs(msgspec.Struct, frozen=True, kw_only=True):
    """What an agent must offer to run a job."""

    engine: str
    encoder: str
    gpu: bool
    filters: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    elements: tuple[gst_pipeline.Requirement, ...] = ()  # GStreamer's, for gstreamer and auto


def shape(spec: JobSpec) -> str:
    """What of a spec its needs depend on: specs of one shape share one ``Needs``."""
    source, sink = _scheme(spec.input), _scheme(spec.output)
    key = f"{spec.scenario}|{spec.engine}|{source}|{sink}|{spec.quality_metrics}"
    if spec.engine is Engine.FFMPEG:
        return key  # only a URL's scheme matters to FFmpeg's needs, not the path
    pattern = spec.input if input_kind(spec.input) is InputKind.PATTERN else input_kind(spec.input)
    suffix = spec.output.rsplit(".", 1)[-1] if output_kind(spec.output) is OutputKind.FILE else ""
    return f"{key}|{pattern}|{suffix}"


def _scheme(location: str) -> str:
    return location.split("://", 1)[0].lower() if "://" in location else ""


def needs_of(spec: JobSpec) -> Needs:
    """Derive a job's needs from its spec and scenario."""
    chosen = scenario(spec.scenario)
    protocols = []
    if input_kind(spec.input) is InputKind.URL:
        protocols.append(_scheme(spec.input))
    if output_kind(spec.output) in {OutputKind.RTMP, OutputKind.SRT}:
        protocols.append(_scheme(spec.output))
    gst = spec.engine is not Engine.FFMPEG
    return Needs(
        engine=spec.engine,
        encoder=chosen.encoder,
        gpu=chosen.needs_gpu,
        filters=tuple(QUALITY_FILTERS[m] for m in spec.quality_metrics),
        protocols=tuple(protocols),
        elements=gst_pipeline.requirements(spec) if gst else (),
    )


def _device(needs: Needs, caps: Capabilities) -> list[str]:
    if needs.gpu and not any(needs.encoder in gpu.encoders for gpu in caps.gpus):
        return [f"an NVIDIA GPU with {needs.encoder}"]
    return []


def ffmpeg_lacks(needs: Needs, caps: Capabilities) -> list[str]:
    """What the agent lacks to run the job with FFmpeg."""
    missing = [] if Engine.FFMPEG in caps.engines else [f"engine {Engine.FFMPEG}"]
    if needs.gpu:
        missing += _device(needs, caps)
    elif needs.encoder not in caps.encoders:
        missing.append(f"encoder {needs.encoder}")
    missing += [f"filter {f}" for f in needs.filters if f not in caps.filters]
    missing += [f"protocol {p}" for p in needs.protocols if p not in caps.protocols]
    return missing


def gst_lacks(needs: Needs, caps: Capabilities) -> list[str]:
    """What the agent lacks to run the job with GStreamer."""
    missing = [] if Engine.GSTREAMER in caps.engines else [f"engine {Engine.GSTREAMER}"]
    missing += _device(needs, caps)
    elements = frozenset(caps.gst_elements)
    return missing + [need.phrase for need in needs.elements if not need.met_by(elements)]


def lacks(needs: Needs, caps: Capabilities) -> list[str]:
    """What this agent lacks for the job, as short phrases; empty when it could run it."""
    if needs.engine == Engine.GSTREAMER:
        return gst_lacks(needs, caps)
    ffmpeg = ffmpeg_lacks(needs, caps)
    if needs.engine != Engine.AUTO or not ffmpeg:
        return ffmpeg
    gst = gst_lacks(needs, caps)
    if not gst:
        return []
    return [f"for FFmpeg {', '.join(ffmpeg)}; for GStreamer {', '.join(gst)}"]


def engine_for(needs: Needs, caps: Capabilities) -> Engine | None:
    """The engine this agent runs the job with, or None when it lacks something for it."""
    if needs.engine == Engine.GSTREAMER:
        return None if gst_lacks(needs, caps) else Engine.GSTREAMER
    if not ffmpeg_lacks(needs, caps):
        return Engine.FFMPEG
    if needs.engine == Engine.AUTO and not gst_lacks(needs, caps):
        return Engine.GSTREAMER
    return None
