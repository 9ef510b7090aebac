"""Watchdog notification over a real AF_UNIX socket, the counters file, the rotating log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import stat
from pathlib import Path

import pytest

from mirrorcam.kiosk.camera import ManualClock
from mirrorcam.kiosk.service import Counters, SystemdNotifier, hour_key, remove_kiosk_log, setup_kiosk_log


@pytest.fixture()
def notify_socket(tmp_path: Path):
    """A datagram socket standing in for systemd's notification socket."""
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2.0)
    yield path, server
    server.close()


def received(server: socket.socket) -> list[str]:
    out = []
    server.setblocking(False)
    try:
        while True:
            out.append(server.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        server.settimeout(2.0)
    return out


def test_ready_and_watchdog_pings_at_half_the_interval(notify_socket):
    path, server = notify_socket
    clock = ManualClock()
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    with SystemdNotifier(env, clock) as notifier:
        assert notifier.enabled and notifier.interval_s == 2.0
        assert notifier.ready("showing attract")
        pings = 0
        for _ in range(100):  # 10 s of loop iterations at 10 Hz
            pings += notifier.ping()
            clock.advance(0.1)
        assert notifier.stopping()
    messages = received(server)
    assert messages[0] == "READY=1\nSTATUS=showing attract"
    assert messages.count("WATCHDOG=1") == pings == 5
    assert messages[-1] == "STOPPING=1"


def test_abstract_socket_address(tmp_path):
    name = f"mirrorcam-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2.0)
    try:
        with SystemdNotifier({"NOTIFY_SOCKET": "@" + name}) as notifier:
            assert notifier.ready()
        assert server.recv(100) == b"READY=1"
    finally:
        server.close()


@pytest.mark.parametrize(
    "env",
    [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "relative/path"}],
    ids=["unset", "empty", "not-a-socket-path"],
)
def test_not_under_systemd_everything_is_a_no_op(env):
    notifier = SystemdNotifier(env)
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.ping() and not notifier.stopping()


def test_watchdog_for_another_pid_is_ignored_and_a_vanished_supervisor_is_harmless(tmp_path):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert notifier.interval_s is None
    assert notifier.ready() is False  # nobody listens: logged at debug, not raised
    notifier.close()


def test_counters_are_hourly_aggregates_written_atomically(tmp_path):
    clock = ManualClock()
    when = [dt.datetime(2025, 5, 1, 14, 59, 58)]
    counters = Counters(tmp_path / "state" / "counters.json", flush_s=60, clock=clock, wallclock=lambda: when[0])
    counters.session_started()
    counters.mirror_event("wave_one_hand")
    assert counters.maybe_flush()  # first write at once
    counters.mirror_event("wave_one_hand")
    clock.advance(10)
    assert not counters.maybe_flush()  # throttled
    when[0] = dt.datetime(2025, 5, 1, 15, 0, 3)
    counters.session_started()
    counters.mirror_event("clap")
    clock.advance(60)
    assert counters.maybe_flush()
    data = json.loads((tmp_path / "state" / "counters.json").read_text())
    assert data["totals"] == {"sessions": 2, "mirror_events": {"wave_one_hand": 2, "clap": 1}}
    assert data["hours"] == {
        "2025-05-01T14": {"sessions": 1, "mirror_events": {"wave_one_hand": 2}},
        "2025-05-01T15": {"sessions": 1, "mirror_events": {"clap": 1}},
    }
    # Nothing finer than the hour anywhere in the file, and no temp files left behind.
    text = (tmp_path / "state" / "counters.json").read_text()
    assert ":59" not in text and ":00" not in text
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["counters.json"]
    # A restart keeps counting.
    again = Counters(tmp_path / "state" / "counters.json", clock=clock, wallclock=lambda: when[0])
    again.session_started()
    again.flush()
    assert json.loads((tmp_path / "state" / "counters.json").read_text())["totals"]["sessions"] == 3


@pytest.mark.parametrize("failure", ["full-disk", "folder-gone"])
def test_counters_that_cannot_be_written_are_logged_and_the_exhibit_goes_on(tmp_path, monkeypatch, caplog, failure):
    """A full disk at the rename, or the state folder replaced by a file: one log line, and
    the counts are kept for the next try (a MirrorcamError had escaped the OSError handler)."""
    import errno

    counters = Counters(tmp_path / "state" / "counters.json", flush_s=60, clock=ManualClock())
    counters.session_started()
    if failure == "full-disk":
        def full(*_args):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("mirrorcam.fileio.os.replace", full)
    else:
        (tmp_path / "state").write_text("a file where the folder was\n")
    with caplog.at_level("ERROR"):
        assert counters.flush() is False
    assert "cannot write counters file" in caplog.text
    monkeypatch.undo()
    if failure == "full-disk":
        assert counters.flush() is True  # the pending counts are written once the disk has room


def test_a_corrupt_counters_file_starts_over_without_crashing(tmp_path, caplog):
    path = tmp_path / "counters.json"
    path.write_text("{ not json")
    counters = Counters(path)
    counters.session_started()
    assert counters.flush()
    assert json.loads(path.read_text())["totals"]["sessions"] == 1


@pytest.mark.parametrize(
    "content",
    [
        {"totals": {"sessions": 0}},  # totals without mirror_events
        {"hours": []},
        {"totals": {"sessions": "3", "mirror_events": {}}},
        {"totals": {"sessions": 1, "mirror_events": {"clap": None}}},
        {"hours": {"2025-05-01T14": {"sessions": 1}}},
        {"totals": []},
    ],
)
def test_counters_of_the_wrong_shape_start_afresh_and_are_kept_aside(tmp_path, caplog, content):
    path = tmp_path / "counters.json"
    text = json.dumps({"format": "mirrorcam.kiosk-counters", **content})
    path.write_text(text)
    with caplog.at_level("WARNING"):
        counters = Counters(path, wallclock=lambda: dt.datetime(2025, 5, 1, 14))
    counters.session_started()  # had raised KeyError / TypeError at every session
    counters.mirror_event("clap")
    assert counters.flush()
    assert json.loads(path.read_text())["totals"] == {"sessions": 1, "mirror_events": {"clap": 1}}
    assert (tmp_path / "counters.json.corrupt").read_text() == text
    assert "counters.json.corrupt" in caplog.text


def test_a_file_that_is_not_counters_is_not_overwritten_unseen(tmp_path):
    path = tmp_path / "counters.json"
    path.write_text('{"something": "else"}')
    Counters(path).session_started()
    assert (tmp_path / "counters.json.corrupt").read_text() == '{"something": "else"}'


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "counters.json")
    return tmp / "counters.json"


def _dev_null(tmp: Path) -> Path:
    (tmp / "counters.json").symlink_to("/dev/null")
    return tmp / "counters.json"


def _folder(tmp: Path) -> Path:
    (tmp / "counters.json").mkdir()
    return tmp / "counters.json"


def _counters_unless_blocked(path: Path, **kwargs) -> Counters:
    """``Counters(path)``, failing the test (not hanging it) if opening the file blocks."""
    import threading

    made: list[Counters] = []
    thread = threading.Thread(target=lambda: made.append(Counters(path, **kwargs)), daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # blocked opening a FIFO: a writer lets it go on, then fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail(f"Counters({path.name}) blocked opening it")
    return made[0]


@pytest.mark.parametrize(("make", "kind"), [(_fifo, "a FIFO"), (_dev_null, "a character device"), (_folder, "a folder")], ids=["fifo", "dev-null", "folder"])
def test_counters_in_place_of_a_fifo_or_device_start_from_zero_and_leave_it_alone(tmp_path, caplog, make, kind):
    """A FIFO as counters.json had hung the kiosk at start (deaf to SIGTERM); one there, or a
    device or a folder, is not renamed aside (it is the operator's) nor written over: one
    warning, counting from zero, the exhibit goes on, and no try at a write says it again."""
    path = make(tmp_path)
    clock = ManualClock()
    with caplog.at_level("WARNING"):
        counters = _counters_unless_blocked(path, flush_s=60, clock=clock)
        for _ in range(3):
            counters.session_started()
            assert counters.maybe_flush() is False
            clock.advance(61)
        assert counters.flush() is False  # (at exit)
    assert counters.data["totals"]["sessions"] == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [f"counters file {path} is {kind}, not a file; the counts are not saved while it is there"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counters.json"]  # nothing kept aside, no temp file
    assert os.path.islink(path) if make is _dev_null else not os.path.islink(path)
    assert {"a FIFO": stat.S_ISFIFO, "a character device": stat.S_ISCHR, "a folder": stat.S_ISDIR}[kind](os.stat(path).st_mode)


def test_a_counters_file_over_the_data_file_limit_is_kept_aside_unread(tmp_path, caplog):
    path = tmp_path / "counters.json"
    with open(path, "wb") as handle:
        handle.truncate(8 << 30)  # 8 GB that take no disk: read whole, a MemoryError
    with caplog.at_level("WARNING"):
        counters = Counters(path)
    assert "is too large to be a counters file; kept as counters.json.corrupt" in caplog.text
    assert (tmp_path / "counters.json.corrupt").stat().st_size == 8 << 30
    counters.session_started()
    assert counters.flush()
    assert json.loads(path.read_text())["totals"]["sessions"] == 1


def test_a_failed_counters_write_waits_flush_s_before_the_next_try(tmp_path, monkeypatch, caplog):
    """The kiosk calls maybe_flush at every frame: a full disk had been tried, and logged,
    30 times a second."""
    import errno

    tries = []

    def full(*_args):
        tries.append(1)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("mirrorcam.fileio.os.replace", full)
    clock = ManualClock()
    counters = Counters(tmp_path / "counters.json", flush_s=60, clock=clock)
    counters.session_started()
    with caplog.at_level("ERROR"):
        for _ in range(30):
            assert counters.maybe_flush() is False
            clock.advance(1 / 30)
        assert len(tries) == 1 and caplog.text.count("cannot write counters file") == 1
        clock.advance(60)
        assert counters.maybe_flush() is False and len(tries) == 2
    monkeypatch.undo()
    clock.advance(60)
    assert counters.maybe_flush() is True  # the pending counts are written once the disk has room


def test_hour_key_has_no_minutes():
    assert hour_key(dt.datetime(2025, 12, 31, 23, 59, 59)) == "2025-12-31T23"


def test_log_is_size_capped_and_rotates(tmp_path):
    handler = setup_kiosk_log(tmp_path / "kiosk.log", max_bytes=20_000, backups=2)
    try:
        log = logging.getLogger("mirrorcam.kiosk.test")
        for i in range(3000):
            log.info("line %d: a camera came and went, nothing personal", i)
    finally:
        remove_kiosk_log(handler)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["kiosk.log", "kiosk.log.1", "kiosk.log.2"]
    assert all((tmp_path / f).stat().st_size <= 20_000 for f in files)
    assert "line 2999" in (tmp_path / "kiosk.log").read_text()
    assert handler not in logging.getLogger("mirrorcam").handlers
