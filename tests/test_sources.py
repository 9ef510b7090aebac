"""Sources: files frame by frame, image folders, a simulated camera and a real MJPEG stream."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrorcam.errors import SourceError
from mirrorcam.mjpeg import MjpegServerProcess
from mirrorcam.sources import ImageFolderSource, LiveSource, PacedFileCapture, VideoFileSource, open_source, simulated_camera, url_source

from conftest import UNREADABLE, make_empty_dir, make_text_named_mp4, make_truncated_avi, make_undecodable_avi, make_unreadable

WAVE = "omkarnagarkar55_HAR/wave.mp4"


def test_video_file_is_read_frame_by_frame(clip) -> None:
    with open_source(clip(WAVE)) as source:
        assert isinstance(source, VideoFileSource) and not source.is_live
        frames = list(source)
    assert len(frames) == source.frame_count == 125
    assert [f.index for f in frames] == list(range(125))
    assert np.allclose(np.diff([f.timestamp_ms for f in frames]), 1000 / source.fps)
    assert frames[0].image.shape == (420, 420, 3)


def test_stopping_early_releases_the_decoder(clip) -> None:
    source = VideoFileSource(clip(WAVE))
    for i, _ in enumerate(source):
        if i == 5:
            break
    source.close()
    assert source.frames_read == 6


def test_image_folder_in_name_order(images_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "b.jpg").write_bytes((images_dir / "COCO_val2014_000000000192.jpg").read_bytes())
    (tmp_path / "a.jpg").write_bytes((images_dir / "COCO_val2014_000000000241.jpg").read_bytes())
    (tmp_path / "c.jpg").write_text("broken image")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(tmp_path) as source:
        assert isinstance(source, ImageFolderSource)
        frames = list(source)
    assert len(frames) == 2, "the unreadable image is skipped"
    assert frames[0].image.shape == cv2.imread(str(tmp_path / "a.jpg")).shape


def test_an_image_folder_plays_in_natural_order(tmp_path: Path) -> None:
    # frame_2 before frame_10: as text, 10 came first and scrambled the motion.
    for i in (1, 2, 10, 20, 100):
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), np.full((8, 8, 3), i, np.uint8))
    with ImageFolderSource(tmp_path) as source:
        assert [int(f.image[0, 0, 0]) for f in source] == [1, 2, 10, 20, 100]


def _text_named_jpg(tmp: Path) -> Path:
    path = tmp / "one.jpg"
    path.write_text("not an image")
    return path


def _folder_of_videos(tmp: Path) -> Path:
    (tmp / "videos").mkdir()
    make_text_named_mp4(tmp / "videos")
    return tmp / "videos"


def test_one_image_is_a_clip_of_one_frame(tmp_path: Path) -> None:
    """(It had been refused: "a single image; put it in a folder".)"""
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), 7, np.uint8))
    with open_source(path) as source:
        frames = list(source)
    assert source.frame_count == 1 and len(frames) == 1 and int(frames[0].image[0, 0, 0]) == 7


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda tmp: tmp / "missing.mp4", "no such file"),
        (make_text_named_mp4, "not a readable video"),
        (make_empty_dir, "contains no images"),
        (_text_named_jpg, "not a readable image"),
        (_folder_of_videos, r"\); it holds 1 video: give one of them"),
    ],
    ids=["missing", "text-named-mp4", "empty-folder", "text-named-jpg", "folder-of-videos"],
)
def test_bad_sources_raise_source_error(tmp_path: Path, make, needle: str) -> None:
    with pytest.raises(SourceError, match=needle):
        open_source(make(tmp_path))


def _tiny_video(tmp: Path) -> Path:
    path = tmp / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def _one_image(tmp: Path) -> Path:
    path = tmp / "photo.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), 7, np.uint8))
    return path


@pytest.mark.parametrize("how", UNREADABLE)
@pytest.mark.parametrize(
    ("make", "opener"),
    [(_tiny_video, open_source), (_tiny_video, simulated_camera), (_one_image, open_source)],
    ids=["video", "video-as-camera", "one-image"],
)
def test_a_file_the_user_may_not_read_is_said_so(tmp_path: Path, monkeypatch, request, make, opener, how: str) -> None:
    """OpenCV takes a file it may not open for an undecodable one: "not a readable video
    (OpenCV could not decode a frame)" had sent the user looking for damage."""
    path = make(tmp_path)
    make_unreadable(path, how, monkeypatch, request)
    with pytest.raises(SourceError) as raised:
        opener(path)
    assert str(raised.value) == f"cannot read {path}: permission denied"


def test_a_simulated_camera_of_a_file_that_decodes_no_frame_is_refused_as_replay_refuses_it(tmp_path: Path) -> None:
    """Opened, it had been "lost" and "back" every second of a live session (exit 0)."""
    path = make_undecodable_avi(tmp_path)
    with pytest.raises(SourceError) as raised:
        simulated_camera(path)
    assert str(raised.value) == f"{path} is not a readable video (OpenCV could not decode a frame)"
    with pytest.raises(SourceError) as replayed:
        open_source(path)
    assert str(replayed.value) == str(raised.value)


def test_a_simulated_camera_of_a_truncated_file_says_so_once_as_replay_does(tmp_path: Path, caplog) -> None:
    """Looped, a file cut short had played its first seconds over and over without a word."""
    path = make_truncated_avi(tmp_path)
    capture = PacedFileCapture(path, realtime=False)
    with caplog.at_level("WARNING", logger="mirrorcam"):
        reads = [capture.read()[0] for _ in range(15 * 3 + 1)]  # three passes of what decodes, and one frame
    capture.release()
    assert all(reads)
    said = f"{path}: decoding stopped after 15 of 40 frames (truncated or damaged file?)"
    assert [r.getMessage() for r in caplog.records] == [said]
    caplog.clear()
    with caplog.at_level("WARNING", logger="mirrorcam"):
        assert sum(1 for _ in open_source(path)) == 15
    assert [r.getMessage() for r in caplog.records] == [said]  # (replay's line)


def _assert_latest_frame_behaviour(source: LiveSource, consumer_delay_s: float = 0.15, reads: int = 8) -> None:
    """A slow consumer gets the newest frames (indices jump), never a growing backlog."""
    frames = []
    for _ in range(reads):
        produced = source.frames_captured  # frames 0 .. produced-1 had been captured before the read
        frame = source.read(timeout=10)
        assert frame is not None, "the live source stopped delivering"
        frames.append(frame)
        # The newest frame at hand-over, by index (not by its age on the clock): nothing
        # captured before the read is newer than what the read returned.
        assert frame.index >= produced - 1, f"got frame {frame.index}, but frame {produced - 1} was already captured"
        time.sleep(consumer_delay_s)  # (a slow consumer, so that frames pile up if they are queued)
    indices = [f.index for f in frames]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert max(np.diff(indices)) >= 3, f"frames were queued instead of dropped: {indices}"
    assert source.frames_dropped > 0


def test_simulated_camera_keeps_only_the_newest_frame(clip) -> None:
    with simulated_camera(clip(WAVE), fps=30) as camera:
        assert camera.is_live
        _assert_latest_frame_behaviour(camera)


def test_mjpeg_stream_latest_frame_and_reconnection(clip) -> None:
    with MjpegServerProcess(clip(WAVE), fps=30) as server:
        source = url_source(server.url)
        try:
            _assert_latest_frame_behaviour(source)
            server.stop()  # the "camera" goes away
            deadline = time.monotonic() + 15
            while source.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not source.connected
            assert source.read(timeout=0.5) is None
            server.start()  # ... and comes back under the same URL
            frame = source.read(timeout=20)
            assert frame is not None, "the source did not reconnect"
            assert source.connected and source.reconnects >= 1
        finally:
            source.close()


def test_unopenable_camera_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open camera 97"):
        open_source("97")


@pytest.mark.parametrize(
    "failures, max_backoff_s, delays",
    [
        (1, 5.0, [0.25]),                         # the first open fails: one wait, then it opens
        (2, 0.5, [0.25, 0.5]),
        (5, 1.0, [0.25, 0.5, 1.0, 1.0, 1.0]),     # doubling, held at max_backoff_s
        (6, 5.0, [0.25, 0.5, 1.0, 2.0, 4.0, 5.0]),
    ],
)
def test_live_source_survives_a_failing_opener(monkeypatch: pytest.MonkeyPatch, failures, max_backoff_s, delays) -> None:
    """A device that fails to open at first is retried with backoff (kiosk start-up).

    The delays are those the reader asks its stop event to wait (recorded, not slept), so
    the backoff is checked exactly and without the clock.
    """
    import threading
    import types

    from mirrorcam import sources

    class _WaitRecorder(threading.Event):
        """An event whose timed ``wait`` records the delay asked for and returns at once (the
        stop event of a :class:`LiveSource` is what its reader waits on between attempts)."""

        def __init__(self) -> None:
            super().__init__()
            self.delays: list[float] = []

        def wait(self, timeout: float | None = None) -> bool:
            if timeout is None:
                return super().wait()
            self.delays.append(timeout)
            return super().wait(0)

    attempts = []

    class Blank:
        def isOpened(self) -> bool:  # noqa: N802
            return True

        def read(self):
            time.sleep(1 / 60)
            return True, np.zeros((4, 4, 3), np.uint8)

        def release(self) -> None:
            pass

    def opener():
        attempts.append(len(attempts))
        if len(attempts) <= failures:
            raise RuntimeError("device busy")
        return Blank()

    stops: list[_WaitRecorder] = []

    def recording_event() -> _WaitRecorder:
        stops.append(_WaitRecorder())
        return stops[-1]

    # Only the sources module sees the recording events (Thread, Condition stay real).
    monkeypatch.setattr(sources, "threading", types.SimpleNamespace(
        Event=recording_event, Condition=threading.Condition, Thread=threading.Thread,
        current_thread=threading.current_thread))
    with LiveSource(opener, "flaky camera", require_initial=False, max_backoff_s=max_backoff_s) as source:
        frame = source.read(timeout=30)
        assert frame is not None and source.connected and source.reconnects == 1
    assert len(stops) == 1 and stops[0].delays == delays
    assert len(attempts) == failures + 1  # no attempt after the one that opened


class _UnreadableCapture:
    """A clip that opens but gives no frame (replaced by a broken copy while it is served)."""

    def __init__(self, *_args) -> None:
        self.reads = 0

    def isOpened(self) -> bool:  # noqa: N802 (cv2's name)
        return True

    def get(self, _prop) -> float:
        return 25.0

    def read(self):
        self.reads += 1
        return False, None

    def set(self, *_args) -> bool:
        return True

    def release(self) -> None:
        pass


def test_an_mjpeg_server_whose_clip_gives_no_frame_ends_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    # It had rewound and read again forever, without a pause: a core spun until the server stopped.
    import urllib.request

    from mirrorcam import mjpeg

    monkeypatch.setattr(mjpeg.cv2, "VideoCapture", _UnreadableCapture)
    with mjpeg.MjpegServer("unreadable.mp4") as server:
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.read() == b""  # (the headers, then the end of the stream)
    assert server.frames_sent == 0


def test_an_mjpeg_server_child_that_fails_says_why(tmp_path: Path) -> None:
    # Its stderr goes to a file now (a pipe nobody read could fill and block it): still quoted.
    with pytest.raises(RuntimeError, match="not a readable video"):
        MjpegServerProcess(tmp_path / "missing.mp4").start()


@pytest.mark.parametrize("fps", [float("nan"), 0.0, -5.0, float("inf")])
def test_an_image_folder_at_an_impossible_rate_is_a_source_error(tmp_path: Path, fps: float) -> None:
    # NaN had passed "fps <= 0" (frames at NaN ms), and the others were a ValueError, not a user's error.
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError, match="the rate must be between 1 and 1000"):
        ImageFolderSource(tmp_path, fps)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("0", 0),
        ("12", 12),
        ("rtsp://cam.local/stream", "rtsp://cam.local/stream"),
        ("HTTP://cam/mjpeg", "HTTP://cam/mjpeg"),
        ("srt://10.0.0.5:9000", "srt://10.0.0.5:9000"),  # the kiosk took it for a URL, live for a file
        ("clips/wave.mp4", Path("clips/wave.mp4")),
        ("0.mp4", Path("0.mp4")),
        ("C:/no/scheme", Path("C:/no/scheme")),
        (Path("0"), Path("0")),  # a Path is a path: replay of a file named 0 had opened camera 0
    ],
)
def test_every_command_reads_a_source_spec_alike(spec, expected):
    from mirrorcam.sources import parse_source_spec

    got = parse_source_spec(spec)
    assert got == expected and type(got) is type(expected)
