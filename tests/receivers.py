"""Real receivers for media tests: an RTMP server, an SRT listener and an HTTP file server.

Each is started by the test on a free loopback port, owns a temporary directory, and records
what arrived so the test can probe it. None is a stand-in: RTMP is Debian's nginx with
``libnginx-mod-rtmp`` (its own config and prefix, run in the foreground as the current user,
the module loaded with ``load_module``), SRT is FFmpeg's own listener, HTTP is the standard
library's server in a thread. A missing nginx or module skips the RTMP tests locally and fails
them in CI, as a missing nats-server does.

Readiness and completion are conditions with deadlines (``wait_for``), never sleeps:

- ``RtmpServer.recorded(stream)`` holds once nginx has closed the stream's recording (its
  ``exec_record_done`` hook leaves a ``.done`` marker beside the FLV file).
- ``FfmpegListener.recorded()`` (``SrtListener``; RTMP by FFmpeg's ``-listen 1`` too) holds
  once the listener FFmpeg has exited (it does when the caller closes); ``tsbpd=0`` so its
  jitter buffer does not drop the stream's end (README, live outputs).
- ``HttpServer.requests`` lists each request's path and status, so a test can count retries;
  it answers byte ranges (206), as real servers do, so FFmpeg can seek an MP4's index.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final, Self

import psutil
import pytest

from agent.ffmpeg_binary import locate
from ffrtmp.lifeline import end
from ffrtmp.natsd import free_port, port_in_use
from tests.waiting import wait_for

DEADLINE_S: Final = 30.0
_RANGE: Final = re.compile(r"bytes=(\d+)-(\d*)")
RTMP_MODULE: Final = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX_CONF: Final = """\
load_module {module};
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    application live {{
      live on;
      record all;
      record_path {root}/rec;
      record_unique off;
      exec_record_done {touch} $path.done;
    }}
  }}
}}
"""


def _missing(reason: str) -> None:
    """Skip a test whose receiver cannot run here; in CI that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class _Process:
    """A receiver that is one process: ``start`` runs it (or ``with``), ``stop`` ends it."""

    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Run it and wait until it is ready."""
        raise NotImplementedError

    def stop(self) -> None:
        """End it if it still runs (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is not None:
            end(self.process, 5)

    def __enter__(self) -> Self:
        """Start it."""
        return self.start()

    def __exit__(self, *_: object) -> None:
        """Stop it."""
        self.stop()


class RtmpServer(_Process):
    """nginx-rtmp on a free port; every stream published to ``live/<name>`` is recorded."""

    def __init__(self, root: Path) -> None:
        """Prepare the config under ``root``; ``start`` (or ``with``) runs nginx."""
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, stream: str = "x") -> str:
        """Where a publisher pushes ``stream``."""
        return f"rtmp://127.0.0.1:{self.port}/live/{stream}"

    def recording(self, stream: str = "x") -> Path:
        """The FLV file nginx records ``stream`` into."""
        return self.root / "rec" / f"{stream}.flv"

    def recorded(self, stream: str = "x") -> bool:
        """Whether ``stream`` was published and its recording is closed."""
        return Path(f"{self.recording(stream)}.done").exists()

    def wait_recorded(self, stream: str = "x", deadline_s: float = DEADLINE_S) -> Path:
        """The closed recording of ``stream``, once nginx has finished it."""
        wait_for(lambda: self.recorded(stream), f"nginx to close the recording of {stream}",
                 deadline_s)  # fmt: skip
        return self.recording(stream)

    def log(self) -> str:
        """The error log of nginx (connections, publishes, record events)."""
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Self:
        """Run nginx in the foreground and wait until it accepts connections."""
        nginx, touch = shutil.which("nginx"), shutil.which("touch")
        if nginx is None or touch is None or not RTMP_MODULE.exists():
            _missing("nginx with libnginx-mod-rtmp is not installed (.ci/run installs it)")
        (self.root / "rec").mkdir(parents=True, exist_ok=True)
        conf = self.root / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(module=RTMP_MODULE, root=self.root, port=self.port, touch=touch)
        )
        argv = [str(nginx), "-p", str(self.root), "-e", str(self.root / "error.log"),
                "-c", str(conf)]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        process = self.process
        wait_for(lambda: port_in_use(self.port) or process.poll() is not None, "nginx to listen",
                 DEADLINE_S)  # fmt: skip
        if process.poll() is not None:
            msg = f"nginx exited {process.returncode}: {self.log()[-800:]}"
            raise AssertionError(msg)
        return self


class FfmpegListener(_Process):
    """FFmpeg listening for one caller and remuxing what it sends into an MPEG-TS file.

    ``protocol`` is ``srt`` (FFmpeg's SRT listener) or ``rtmp`` (FFmpeg's own one-publisher
    RTMP server, ``-listen 1``: a receiver without nginx).
    """

    # protocol: what the listener opens, where a caller sends, the socket kind it binds.
    # tsbpd=0: the receiver hands packets on as they arrive. With its default jitter buffer
    # (TSBPD), libsrt discards what the buffer still holds when the caller closes, and that is
    # the encoder's whole end-of-stream flush: 12 of 30 frames were recorded on an idle machine.
    _LISTEN: Final = {
        "srt": ("srt://127.0.0.1:{port}?mode=listener&tsbpd=0",
                "srt://127.0.0.1:{port}?mode=caller", "udp"),
        "rtmp": ("rtmp://127.0.0.1:{port}/live/x", "rtmp://127.0.0.1:{port}/live/x", "tcp"),
    }  # fmt: skip

    def __init__(self, root: Path, ffmpeg: str | None = None, protocol: str = "srt") -> None:
        """Prepare under ``root``; ``start`` (or ``with``) begins listening."""
        self.root = root
        self.ffmpeg = ffmpeg or str(locate())
        self.protocol = protocol
        self.port = free_port()
        self.recording = root / f"{protocol}-recording.ts"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where a caller sends its stream."""
        return self._LISTEN[self.protocol][1].format(port=self.port)

    def listening(self) -> bool:
        """Whether the listener's socket is bound."""
        if self.process is None or self.process.poll() is not None:
            return False
        kind = self._LISTEN[self.protocol][2]
        sockets = psutil.Process(self.process.pid).net_connections(kind=kind)
        return any(s.laddr.port == self.port for s in sockets)

    def recorded(self) -> bool:
        """Whether the caller closed and the listener finished its file."""
        return self.process is not None and self.process.poll() is not None

    def wait_recorded(self, deadline_s: float = DEADLINE_S) -> Path:
        """The finished recording; fails if the listener exited with an error."""
        wait_for(self.recorded, f"the {self.protocol} listener to finish", deadline_s)
        assert self.process is not None
        assert self.process.returncode == 0, self.stderr()
        return self.recording

    def stderr(self) -> str:
        """What the listener logged."""
        path = self.root / f"{self.protocol}-listener.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Self:
        """Start the listener and wait until its socket is bound."""
        self.root.mkdir(parents=True, exist_ok=True)
        listen = self._LISTEN[self.protocol][0].format(port=self.port)
        server = ["-listen", "1"] if self.protocol == "rtmp" else []
        argv = [self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *server,
                "-i", listen, "-map", "0", "-c", "copy", "-f", "mpegts", "-y",
                str(self.recording)]  # fmt: skip
        with (self.root / f"{self.protocol}-listener.log").open("wb") as err:
            self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603
        wait_for(self.listening, f"the {self.protocol} listener's socket", DEADLINE_S)
        return self


SrtListener = FfmpegListener  # the SRT receiver the media tests name


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files, with byte ranges as real servers do, and notes each request; quiet."""

    server: _Server

    def send_head(self) -> BinaryIO | None:
        """A ``Range: bytes=a-b`` request gets 206 and that slice (FFmpeg seeks an MP4's index)."""
        found = _RANGE.fullmatch(self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if found is None or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start = int(found.group(1))
        end = min(int(found.group(2)) if found.group(2) else size - 1, size - 1)
        if start >= size:
            self.send_error(416)
            return None
        with path.open("rb") as f:
            f.seek(start)
            data = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Record the request's path and status instead of printing it."""
        del size
        self.server.requests.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        """Say nothing."""


class _Server(http.server.ThreadingHTTPServer):
    requests: list[tuple[str, int]]


class HttpServer:
    """The standard library's HTTP server on a free port, serving files from ``root``."""

    def __init__(self, root: Path) -> None:
        """Serve ``root`` (created if absent) once started."""
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        handler = functools.partial(_Handler, directory=str(root))
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.requests = []
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        """The URL of ``root/name``."""
        return f"http://127.0.0.1:{self.port}/{name}"

    @property
    def missing_url(self) -> str:
        """A URL that answers 404."""
        return self.url("no-such-file.mp4")

    @property
    def requests(self) -> list[tuple[str, int]]:
        """``(path, status)`` of every request served so far, in order."""
        return list(self._server.requests)

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        with contextlib.suppress(Exception):
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        """Start it."""
        return self.start()

    def __exit__(self, *_: object) -> None:
        """Stop it."""
        self.stop()


@pytest.fixture
def rtmp_server(tmp_path: Path) -> Iterator[RtmpServer]:
    """A running nginx-rtmp server of this test's own."""
    with RtmpServer(tmp_path / "nginx") as server:
        yield server


@pytest.fixture
def srt_listener(tmp_path: Path) -> Iterator[SrtListener]:
    """A running SRT listener of this test's own, waiting for one caller."""
    with SrtListener(tmp_path / "srt") as listener:
        yield listener


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    """A running HTTP server of this test's own, serving ``tmp_path / "www"``."""
    with HttpServer(tmp_path / "www") as server:
        yield server
