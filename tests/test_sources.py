"""Sources: files frame by frame, image folders, a simulated camera and a real MJPEG stream."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrorcam.errors import SourceError
from mirrorcam.mjpeg import MjpegServerProcess
from mirrorcam.sources import ImageFolderSource, LiveSource, VideoFileSource, open_source, simulated_camera, url_source

from conftest import make_empty_dir, make_text_named_mp4

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


def _single_image(tmp: Path) -> Path:
    path = tmp / "one.png"
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    return path


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda tmp: tmp / "missing.mp4", "no such file"),
        (make_text_named_mp4, "not a readable video"),
        (make_empty_dir, "contains no images"),
        (_single_image, "single image"),
    ],
    ids=["missing", "text-named-mp4", "empty-folder", "single-image"],
)
def test_bad_sources_raise_source_error(tmp_path: Path, make, needle: str) -> None:
    with pytest.raises(SourceError, match=needle):
        open_source(make(tmp_path))


def _assert_latest_frame_behaviour(source: LiveSource, consumer_delay_s: float = 0.15, reads: int = 8) -> None:
    """A slow consumer gets the newest frames (indices jump), never a growing backlog."""
    frames = []
    for _ in range(reads):
        frame = source.read(timeout=10)
        assert frame is not None, "the live source stopped delivering"
        frames.append(frame)
        # Age of the frame at hand-over: bounded by about one frame period plus jitter.
        assert time.perf_counter() - frame.captured_at < 0.5
        time.sleep(consumer_delay_s)
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


def test_live_source_survives_a_failing_opener() -> None:
    """A device that fails to open at first is retried with backoff (kiosk start-up)."""
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
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("device busy")
        return Blank()

    with LiveSource(opener, "flaky camera", require_initial=False, max_backoff_s=0.5) as source:
        assert source.read(timeout=5) is not None
    assert len(attempts) >= 3
    gaps = np.diff(attempts)
    assert gaps[-1] >= gaps[0] * 1.5, "waits between attempts should grow (backoff)"
