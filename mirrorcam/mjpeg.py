"""A small HTTP MJPEG server that streams a video file, for tests and benchmarks.

It behaves like an IP camera on 127.0.0.1 (``multipart/x-mixed-replace`` JPEG
frames at the clip's frame rate), so the URL source, its latest-frame behaviour and its
reconnection can be exercised for real through OpenCV's FFmpeg backend.

The server runs in a child process (:class:`MjpegServerProcess`): OpenCV's
``VideoCapture`` constructor holds the GIL while FFmpeg probes the stream, so a server
thread in the same interpreter could never answer it.

Example:
    >>> with MjpegServerProcess("clip.mp4") as server:   # doctest: +SKIP
    ...     source = url_source(server.url)

Command line: ``python -m mirrorcam.mjpeg CLIP [--port N] [--fps F]``.
"""

from __future__ import annotations

import argparse
import http.server
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2

BOUNDARY = "mirrorcamframe"


class MjpegServer:
    """Serve ``path`` as an endless MJPEG stream at ``http://127.0.0.1:PORT/stream.mjpg``.

    Args:
        path: Video file to stream (looped).
        fps: Frame rate; defaults to the clip's own.
        port: TCP port; 0 picks a free one. Restarting with the same port lets tests
            stop and start "the camera" under the same URL.
        quality: JPEG quality.
    """

    def __init__(self, path: str | Path, fps: float | None = None, port: int = 0, quality: int = 80) -> None:
        self.path = str(path)
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            raise ValueError(f"{path} is not a readable video")
        self.fps = fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.release()
        self.quality = quality
        self._requested_port = port
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self.frames_sent = 0

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._requested_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                cap = cv2.VideoCapture(owner.path)
                period = 1.0 / owner.fps
                next_t = time.perf_counter()
                try:
                    while owner._server is not None:
                        ok, image = cap.read()
                        if not ok:
                            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                            ok, image = cap.read()
                        if not ok:
                            # Not even the first frame (the clip gone, or never decodable):
                            # the stream ends, as a camera's would, instead of spinning a
                            # core on failed reads until the server stops.
                            break
                        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, owner.quality])
                        part = (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        ).encode() + jpeg.tobytes() + b"\r\n"
                        self.wfile.write(part)
                        owner.frames_sent += 1
                        next_t += period
                        time.sleep(max(0.0, next_t - time.perf_counter()))
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass
                finally:
                    cap.release()

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self._requested_port), Handler)
        self._requested_port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="mjpeg-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop every connection (the camera "goes away")."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MjpegServerProcess:
    """:class:`MjpegServer` in a child process; ``stop()`` and ``start()`` keep the same URL."""

    def __init__(self, path: str | Path, fps: float | None = None, port: int = 0) -> None:
        self.path, self.fps = str(path), fps
        self.port = port or _free_port()
        self._proc: subprocess.Popen | None = None
        self._stderr = None  # the child's stderr, in a file: a pipe nobody reads fills and blocks it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self, timeout: float = 10.0) -> MjpegServerProcess:
        cmd = [sys.executable, "-m", "mirrorcam.mjpeg", self.path, "--port", str(self.port)]
        if self.fps:
            cmd += ["--fps", str(self.fps)]
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._stderr.seek(0)
                said = self._stderr.read().decode(errors="replace")[-300:]
                self.stop()
                raise RuntimeError(f"MJPEG server exited: {said}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"MJPEG server did not start on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> MjpegServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mirrorcam.mjpeg", description="Stream a clip as HTTP MJPEG on 127.0.0.1")
    parser.add_argument("clip")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fps", type=float)
    args = parser.parse_args(argv)
    server = MjpegServer(args.clip, args.fps, args.port).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
