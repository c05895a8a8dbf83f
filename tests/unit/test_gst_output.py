"""gst-launch's output read as progress, as a classified failure, and as a list of elements."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.gst_output import GstProgressParser, classify, error_lines
from agent.gst_probe import parse_elements, parse_version
from events.enums import FailureReason

CHAIN = (
    "/GstPipeline:pipeline0/GstIdentity:ffrtmp_progress: last-message = chain   ******* "
    "(ffrtmp_progress:sink) (345600 bytes, dts: none, pts: {pts}, duration: 0:00:00.033333333, "
    "offset: 0, offset_end:  1, flags: 00000040 discont , meta: GstVideoMeta) 0x7f61c0127b40"
)
EOS = (
    "/GstPipeline:pipeline0/GstIdentity:ffrtmp_progress: last-message = event   ******* "
    "(ffrtmp_progress:sink) E (type: eos (28174), ) 0x7f61c018b410"
)
DEBUG = "../plugins/elements/gstfilesrc.c(553): gst_file_src_start (): /GstPipeline:pipeline0/"
MISSING = "\n".join(
    [
        "ERROR: from element /GstPipeline:pipeline0/GstFileSrc:filesrc0: Resource not found.",
        "Additional debug info:",
        f"{DEBUG}GstFileSrc:filesrc0:",
        'No such file "/nope.mp4"',
        "ERROR: pipeline doesn't want to preroll.",
        "Failed to set pipeline to PAUSED.",
        "",
    ]
).encode()
SOUP = "/GstPipeline:pipeline0/GstURIDecodeBin:uridecodebin0/GstSoupHTTPSrc:source"
RTMP = "/GstPipeline:pipeline0/GstRtmp2Sink:rtmp2sink0"
REASON = "Could not connect to 127.0.0.1: Connection refused"
NOT_FOUND = "\n".join(
    [
        f"ERROR: from element {SOUP}: File not found",
        "Additional debug info:",
        "../ext/soup/gstsouphttpsrc.c(1683): gst_soup_http_src_parse_status (): ",
        "File not found (404), URL: http://127.0.0.1:8765/missing.mp4, Redirect to: (NULL)",
    ]
).encode()
REFUSED = "\n".join(
    [
        f"ERROR: from element {RTMP}: Connection refused: {REASON}",
        "Additional debug info:",
        "../gst/rtmp2/gstrtmp2sink.c(1114): send_connect_error (): /GstPipeline:pipeline0/",
        "ERROR: pipeline doesn't want to preroll.",
    ]
).encode()
BAD_PRESET = (
    b'WARNING: erroneous pipeline: could not set property "speed-preset" in element "x264enc" '
    b'to "bogus"\n'
)
NO_ELEMENT = b'WARNING: erroneous pipeline: no element "nvh264enc"\n'


def test_each_frame_line_counts_and_times_the_progress() -> None:
    """Frames are counted; the media time is the last frame's end since the first frame."""
    parser = GstProgressParser()
    assert parser.feed("Setting pipeline to PLAYING ...") is None
    first = parser.feed(CHAIN.format(pts="0:00:01.000000000"))
    assert first is not None
    assert first.frames == 1
    assert first.out_time_s == pytest.approx(1 / 30)
    second = parser.feed(CHAIN.format(pts="0:00:01.033333333"))
    assert second is not None
    assert second.frames == 2
    assert second.out_time_s == pytest.approx(2 / 30)
    assert parser.feed(EOS) is None


def test_hours_count_in_the_media_time() -> None:
    """A frame an hour and a half in is 5400 s of media after a first frame at zero."""
    parser = GstProgressParser()
    parser.feed(CHAIN.format(pts="0:00:00.000000000"))
    later = parser.feed(CHAIN.format(pts="1:30:00.000000000"))
    assert later is not None
    assert later.out_time_s == pytest.approx(5400 + 1 / 30)


@given(st.text(max_size=400))
def test_no_line_breaks_the_parser(line: str) -> None:
    """Whatever gst-launch prints, the parser returns a sample or nothing, never raises."""
    GstProgressParser().feed(line)


@pytest.mark.parametrize(
    ("stderr", "reason", "shown"),
    [
        (
            MISSING,
            FailureReason.USER_ERROR,
            'filesrc0: Resource not found. | No such file "/nope.mp4"',
        ),
        (NOT_FOUND, FailureReason.USER_ERROR, "File not found (404)"),
        (BAD_PRESET, FailureReason.USER_ERROR, 'could not set property "speed-preset"'),
        (REFUSED, FailureReason.RUNTIME_ERROR, "rtmp2sink0: Connection refused"),
        (NO_ELEMENT, FailureReason.RUNTIME_ERROR, 'no element "nvh264enc"'),
        (b"", FailureReason.RUNTIME_ERROR, "no output on stderr"),
    ],
)
def test_exits_are_classified_with_gstreamers_reason(
    stderr: bytes, reason: FailureReason, shown: str
) -> None:
    """A bad input or a bad property is the job's fault; the rest is retried elsewhere."""
    failed = classify(1, stderr)
    assert failed.reason is reason
    assert shown in failed.message


def test_a_signal_is_a_runtime_error_naming_it() -> None:
    """gst-launch killed by a signal is retried, and the message says which signal."""
    failed = classify(-9, REFUSED)
    assert failed.reason is FailureReason.RUNTIME_ERROR
    assert "SIGKILL" in failed.message


def test_error_lines_drop_source_paths_and_repeats() -> None:
    """The message keeps what a person reads: element, message, detail; once each."""
    assert error_lines(MISSING + MISSING) == [
        "filesrc0: Resource not found.",
        'No such file "/nope.mp4"',
        "Failed to set pipeline to PAUSED.",
    ]


def test_inspect_listing_keeps_only_the_elements_pipelines_use() -> None:
    """Plugin listing lines become element names; unknown elements and the summary are left."""
    listing = (
        "x264:  x264enc: libx264 H.264 Encoder\n"
        "rtmp2:  rtmp2sink: RTMP sink element\n"
        "aasink:  aatv: aaTV effect\n"
        "coreelements:  identity: Identity\n"
        "\nTotal count: 3 plugins, 4 features\n"
    )
    assert parse_elements(listing) == ("identity", "rtmp2sink", "x264enc")


def test_version_is_read_from_the_launchers_banner() -> None:
    """``gst-launch-1.0 --version`` names the GStreamer version on its second line."""
    banner = "gst-launch-1.0 version 1.22.0\nGStreamer 1.22.0\nhttps://tracker.debian.org/\n"
    assert parse_version(banner) == "1.22.0"
    assert parse_version("something else") == ""
