"""FFmpeg -progress blocks parsed into samples and live progress; stalls counted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.progress import ProgressParser, Sample, StallCounter, live

REAL_BLOCK = """frame=30
fps=0.00
stream_0_0_q=-1.0
bitrate=  26.4kbits/s
total_size=3366
out_time_us=933333
out_time_ms=933333
out_time=00:00:00.933333
dup_frames=0
drop_frames=0
speed=3.42x
progress=end
"""


def feed_all(text: str) -> list[Sample]:
    """Every sample the parser hands back for ``text``."""
    parser = ProgressParser()
    return [s for line in text.splitlines() if (s := parser.feed(line)) is not None]


def render(sample: Sample) -> str:
    """A block as FFmpeg writes it, N/A where the sample has no value."""

    def shown(value: float | None, fmt: str) -> str:
        return "N/A" if value is None else fmt.format(value)

    out_us = None if sample.out_time_s is None else round(sample.out_time_s * 1e6)
    return "\n".join(
        [
            f"frame={sample.frames}",
            f"fps={shown(sample.fps, '{:.2f}')}",
            "stream_0_0_q=28.0",
            f"bitrate={shown(sample.bitrate_kbps, '{:7.1f}kbits/s')}",
            f"total_size={shown(sample.total_size, '{}')}",
            f"out_time_us={shown(out_us, '{}')}",
            f"out_time_ms={shown(out_us, '{}')}",
            "out_time=00:00:01.000000",
            "dup_frames=0",
            "drop_frames=0",
            f"speed={shown(sample.speed, '{:.3g}x')}",
            f"progress={'end' if sample.ended else 'continue'}",
            "",
        ]
    )


def test_a_real_block() -> None:
    """The block FFmpeg 9 printed for a 1 s encode."""
    assert feed_all(REAL_BLOCK) == [
        Sample(
            frames=30,
            fps=0.0,
            bitrate_kbps=26.4,
            total_size=3366,
            out_time_s=0.933333,
            speed=3.42,
            ended=True,
        )
    ]


def test_not_available_values() -> None:
    """N/A becomes None, and a block with only progress= still yields a sample."""
    text = "frame=0\nbitrate=N/A\ntotal_size=N/A\nout_time_us=N/A\nspeed=N/A\nprogress=continue\n"
    assert feed_all(text) == [Sample()]
    assert feed_all("progress=continue") == [Sample()]


def test_garbage_lines_are_ignored() -> None:
    """Lines without '=' do not disturb the block."""
    assert feed_all("hello\nframe=3\n\nprogress=continue\n") == [Sample(frames=3)]


ONE_DP = st.integers(0, 10**6).map(lambda tenths: tenths / 10)
samples = st.builds(
    Sample,
    frames=st.integers(0, 10**7),
    fps=st.none() | st.integers(0, 10**5).map(lambda hundredths: hundredths / 100),
    bitrate_kbps=st.none() | ONE_DP,
    total_size=st.none() | st.integers(0, 10**12),
    out_time_s=st.none() | st.integers(0, 10**11).map(lambda micros: micros / 1e6),
    speed=st.none() | st.sampled_from([0.0, 0.5, 1.0, 1.5, 3.42, 12.0, 250.0]),
    ended=st.booleans(),
)


@given(st.lists(samples, min_size=1, max_size=5))
def test_round_trip(blocks: list[Sample]) -> None:
    """Whatever FFmpeg writes in its format comes back as the sample it describes."""
    assert feed_all("".join(render(block) for block in blocks)) == blocks


@pytest.mark.parametrize(
    ("out_time_s", "percent"), [(None, 0.0), (0.0, 0.0), (5.0, 50.0), (12.0, 100.0)]
)
def test_percent_of_the_duration(out_time_s: float | None, percent: float) -> None:
    """Percent is media time over the job's duration, capped at 100."""
    assert live(Sample(out_time_s=out_time_s), 10.0).percent == percent


def test_live_carries_the_rates() -> None:
    """Frames, fps, speed and bitrate pass through to the heartbeat's progress."""
    shown = live(Sample(frames=5, fps=25.0, speed=1.2, bitrate_kbps=900.0), 1.0)
    assert (shown.frames, shown.fps, shown.speed, shown.bitrate_kbps) == (5, 25.0, 1.2, 900.0)


def feed(counter: StallCounter, samples: list[tuple[float, float]]) -> int:
    """Observe ``(wall, media)`` samples; the stalls counted."""
    for wall, media in samples:
        counter.observe(wall, media)
    return counter.stalls


def test_a_clean_stream_with_jitter_has_no_stall() -> None:
    """10 s delivered at 0.99x on average, samples every 0.5 s between 0.85x and 1.1x: no stall.

    The earlier rule (any 0.5 s sample below 0.9x) counted 10 stalls here: QoE 77 for VMAF 97.
    """
    samples, media = [], 0.0
    for i in range(1, 21):
        media += 0.5 * (0.85 if i % 2 else 1.13)
        samples.append((i * 0.5, media))
    assert feed(StallCounter(), samples) == 0


def test_frames_not_delivered_for_a_second_is_a_stall() -> None:
    """Media time frozen for 1.2 s while wall time runs: one stall."""
    samples = [(1.0, 1.0), (2.0, 2.0), (2.5, 2.0), (3.0, 2.0), (3.2, 2.0), (4.2, 3.0)]
    assert feed(StallCounter(), samples) == 1


def test_a_long_slowdown_counts_a_stall_per_second_lost() -> None:
    """At 0.5x, each two seconds lose one second: 4 s at 0.5x is two stalls."""
    samples = [(1.0, 1.0)] + [(1.0 + t * 0.5, 1.0 + t * 0.25) for t in range(1, 9)]
    assert feed(StallCounter(), samples) == 2


def test_start_up_and_pauses_are_not_stalls() -> None:
    """No media time yet (encoder start-up) is ignored; after rebase (a pause) the gap is none."""
    counter = StallCounter()
    assert feed(counter, [(0.5, 0.0), (1.5, 0.0), (2.0, 0.3), (2.5, 0.8), (3.0, 1.3)]) == 0
    counter.rebase()
    assert feed(counter, [(100.0, 1.4), (101.0, 2.4)]) == 0


def test_no_stalls_without_media_time() -> None:
    """Samples without out_time say nothing about stalls."""
    counter = StallCounter()
    counter.observe(0.0, None)
    counter.observe(5.0, None)
    assert counter.stalls == 0
