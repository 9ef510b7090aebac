"""Kiosk config: good files load, broken ones report every problem with its line and key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirrorcam.errors import ConfigError
from mirrorcam.kiosk.config import (
    DEFAULT_TEXTS,
    KioskConfig,
    check_config,
    config_reference,
    key_lines,
    line_of,
    load_config,
)
from conftest import REPO, UNREADABLE, assert_one_line_error, make_unreadable, run_cli

KNOWN = frozenset({"wave_one_hand", "clap", "arms_up", "squat"})


def known(_dirs) -> frozenset[str]:
    return KNOWN


@pytest.fixture()
def clip_file(tmp_path: Path) -> Path:
    """A real, tiny, readable video clip (a few grey frames)."""
    import cv2
    import numpy as np

    path = tmp_path / "clips" / "wave.avi"
    path.parent.mkdir()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def write(tmp_path: Path, text: str, name: str = "kiosk.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
# A museum's kiosk
[camera]
source = "0"
lost_after_s = 3

[timing]
greet_s = 3.5
idle_timeout_s = 5

[colors]
accent = "#40ff80"

[texts]
title = "Spiegelneuronen"
invitation = "Stell dich vor den Bildschirm und mach es nach!"
imitate = "Mach es nach: {action}"

[[playlist]]
action = "wave_one_hand"
clip = "clips/wave.avi"
label = "Winken"
"""


def test_good_config_loads_with_overrides_and_defaults(tmp_path, clip_file):
    path = write(tmp_path, GOOD)
    assert check_config(path, known_actions=known) == []
    config = load_config(path)
    assert config.camera.lost_after_s == 3.0
    assert config.timing.greet_s == 3.5 and config.timing.engage_after_s == 1.0
    assert config.colors.accent == (0x80, 0xFF, 0x40)  # stored BGR
    assert config.text("imitate", action="Winken") == "Mach es nach: Winken"
    assert config.texts["privacy"] == DEFAULT_TEXTS["privacy"]
    assert config.playlist[0].clip == str(clip_file)  # relative to the config file
    assert config.path == path


@pytest.mark.parametrize(
    "texts",
    [
        {"title": "Neurones miroirs", "imitate": "À toi : {action} — déjà vu ?", "privacy": "Rien n'est enregistré, ni image ni vidéo."},
        {"title": "ミラーニューロン", "mirror": "見ることとすることで同じ{action}ニューロンが発火！"},
        {"title": "Зеркальные нейроны", "invitation": "Встаньте перед экраном!"},
        {"title": "الخلايا العصبية المرآتية", "you": "أنت", "other": "الآخر"},
        {"title": "दर्पण न्यूरॉन", "greeting": "नमस्ते!"},
    ],
    ids=["french", "japanese", "russian", "arabic", "hindi"],
)
def test_utf8_texts_in_any_script_are_accepted(tmp_path, clip_file, texts):
    body = "".join(f'{key} = "{value}"\n' for key, value in texts.items())
    path = write(tmp_path, f"[texts]\n{body}\n[[playlist]]\naction = \"clap\"\nclip = \"clips/wave.avi\"\n")
    assert check_config(path, known_actions=known) == []
    config = load_config(path)
    for key, value in texts.items():
        assert config.texts[key] == value


BROKEN = """\
[camera]
source = ""
max_backoff_s = "five"

[timing]
greet_s = -1
idle_timeout = 3
notes = \"\"\"
fake_key = 1
\"\"\"

[colors]
accent = "#12345"

[texts]
imitate = "Fais comme moi : {action} {qui}"
privacy = 5
mirror = "Le même neurone {action"

[operator]
exit_sequence = "Q"

[privacy]
record_landmarks = true

[[playlist]]
action = "wave_one_hand"
clip = "missing.mp4"

[[playlist]]
action = "clapp"
clpi = "x.mp4"

[surprise]
x = 1
"""

EXPECTED = [
    (2, "camera.source", "must not be empty"),
    (3, "camera.max_backoff_s", "must be a number"),
    (6, "timing.greet_s", "must be > 0"),
    (7, "timing.idle_timeout", "did you mean 'idle_timeout_s'"),
    (8, "timing.notes", "unknown key"),
    (13, "colors.accent", "colour"),
    (16, "texts.imitate", "unknown placeholder {qui}"),
    (17, "texts.privacy", "must be a string"),
    (18, "texts.mirror", "stray brace"),
    (21, "operator.exit_sequence", "lower-case"),
    (24, "privacy.record_landmarks", "record_dir"),
    (28, "playlist[0].clip", "no such clip"),
    (30, "playlist[1]", "lacks 'clip'"),
    (31, "playlist[1].action", "did you mean 'clap'"),
    (32, "playlist[1].clpi", "did you mean 'clip'"),
    (34, "surprise", "unknown section"),
]


def test_broken_config_reports_every_problem_with_line_and_key(tmp_path):
    path = write(tmp_path, BROKEN)
    problems = check_config(path, known_actions=known)
    got = [(p.line, p.key) for p in problems]
    assert got == [(line, key) for line, key, _ in EXPECTED], "\n".join(p.format(path.name) for p in problems)
    for problem, (_, _, needle) in zip(problems, EXPECTED):
        assert needle in problem.message, problem
    # The key inside the multi-line string is text, not a key.
    assert "timing.fake_key" not in key_lines(BROKEN)


@pytest.mark.parametrize(
    "text, line, key, needle",
    [
        ('[camera]\nsource = "0\n', 2, "camera.source", "syntax error"),
        ("[timing]\ngreet_s = 3\ngreet_s = 4\n", 3, "timing.greet_s", "syntax error"),
        ("[texts]\ntitle = 'ok'\ninvitation = nope\n", 3, "texts.invitation", "invalid value"),
        ("[[playlist]]\naction = \"clap\"\n[playlist\n", 3, "", "syntax error"),
    ],
    ids=["unterminated-string", "duplicate-key", "bare-word", "broken-header"],
)
def test_syntax_errors_name_the_line(tmp_path, text, line, key, needle):
    problems = check_config(write(tmp_path, text), known_actions=known)
    assert len(problems) == 1
    assert (problems[0].line, problems[0].key) == (line, key)
    assert needle in problems[0].message.lower()


def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[texts]\ntitle = "ok"\ngreeting = "Grüß Gott"\n'.encode("latin-1"))
    problems = check_config(path, known_actions=known)
    assert len(problems) == 1 and problems[0].line == 3 and "UTF-8" in problems[0].message


def test_byte_order_mark_is_tolerated(tmp_path, clip_file):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode("utf-8"))
    assert check_config(path, known_actions=known) == []


def test_unreadable_clip_is_reported(tmp_path):
    (tmp_path / "fake.mp4").write_bytes(b"not a video at all")
    path = write(tmp_path, '[[playlist]]\naction = "clap"\nclip = "fake.mp4"\n')
    problems = check_config(path, known_actions=known)
    assert [(p.line, p.key) for p in problems] == [(3, "playlist[0].clip")]
    assert "not a readable video" in problems[0].message


def test_load_config_raises_one_sentence_but_tolerates_broken_clips(tmp_path):
    with pytest.raises(ConfigError, match=r"kiosk.toml:2: camera.source: must not be empty.*and \d+ more"):
        load_config(write(tmp_path, BROKEN))
    # A missing clip alone does not stop the exhibit: the playlist skips it at run time.
    config = load_config(write(tmp_path, '[[playlist]]\naction = "clap"\nclip = "gone.mp4"\n', "ok.toml"))
    assert config.playlist[0].action == "clap"
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_key_lines_handles_dotted_keys_inline_tables_and_nested_arrays():
    text = (
        "[display]\n"
        "width = 1920 # comment with = sign\n"
        "colors.accent = \"#ffffff\"\n"
        "'quoted key' = 1\n"
        "inline = { a = 1, b = [1,\n"
        "  2] }\n"
        "after = 2\n"
        "[[playlist]]\n"
        "action = 'a'\n"
        "[[playlist]]\n"
        "action = 'b'\n"
    )
    lines = key_lines(text)
    assert lines["display.width"] == 2
    assert lines["display.colors.accent"] == 3 and lines["display.colors"] == 3
    assert lines["display.quoted key"] == 4
    assert line_of(lines, "display.inline.b") == 5
    assert lines["display.after"] == 7
    assert lines["playlist[1].action"] == 11


def test_example_config_is_valid():
    example = REPO / "examples" / "kiosk.toml"
    assert example.is_file(), f"{example} is missing (the README tells kiosk operators to start from it)"
    problems = check_config(example, check_files=False, known_actions=None)
    assert problems == [], [p.format(example.name) for p in problems]


def test_reference_lists_every_key():
    reference = config_reference()
    for key in ("camera.source", "timing.idle_timeout_s", "privacy.record_landmarks", "texts.privacy", "playlist[].clip"):
        assert f"`{key}`" in reference


def test_check_config_cli_reports_all_problems_and_exits_2(tmp_path):
    path = write(tmp_path, BROKEN)
    proc = run_cli("kiosk", "--check-config", path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith(str(path))]
    assert len(lines) >= len(EXPECTED) - 1, proc.stdout  # clap/clapp needs the template library
    assert f"{path}:6: timing.greet_s: must be > 0" in proc.stdout


def test_check_config_cli_accepts_a_good_file(tmp_path, clip_file):
    path = write(tmp_path, GOOD)
    proc = run_cli("kiosk", "--check-config", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout.lower()


def test_run_with_a_broken_config_is_one_line_error(tmp_path):
    proc = run_cli("kiosk", "--config", write(tmp_path, BROKEN), "--no-window", "--frames", "1")
    assert_one_line_error(proc, "camera.source", "check-config")


def test_default_config_object_is_consistent():
    config = KioskConfig()
    assert config.log_path.name == "kiosk.log" and config.counters_path.name == "counters.json"


@pytest.mark.parametrize(
    ("body", "key", "needle"),
    [
        ('[texts]\nimitate = "{action:>99999999999}"\n', "texts.imitate", "has a format"),
        ('[texts]\nimitate = "{action!r}"\n', "texts.imitate", "has a format"),
        ('[storage]\ndir = "logs\\u0000x"\n', "storage.dir", "NUL"),
        ('[display]\nfont = "."\n', "display.font", "no such file"),
    ],
    ids=["format-spec", "conversion", "nul-in-folder", "folder-as-font"],
)
def test_values_that_would_crash_the_running_exhibit_are_refused_at_start(tmp_path, clip_file, body, key, needle):
    """Each passed the checks before (session 10) and then failed every frame of the exhibit."""
    path = write(tmp_path, body + '[[playlist]]\naction = "clap"\nclip = "clips/wave.avi"\n')
    with pytest.raises(ConfigError, match=f"{key}.*{needle}"):
        load_config(path)


@pytest.mark.parametrize(("name", "data"), [
    ("notes.ttf", b"these are my notes, not a font\n"),
    ("noise.otf", bytes(range(256)) * 40),
    ("empty.ttf", b""),
], ids=["text", "noise", "empty"])
def test_a_font_that_is_no_font_fails_the_check_and_the_start(tmp_path, clip_file, name, data):
    """It had passed --check-config, and the screen then fell back to Hershey's ASCII, every
    other character a "?" (the renderer drops a file it reads no character map from)."""
    (tmp_path / name).write_bytes(data)
    path = write(tmp_path, f'[display]\nfont = "{name}"\n' + PLAY_CLAP)
    problems = check_config(path, known_actions=known)
    assert [(p.line, p.key, p.message) for p in problems] == [
        (2, "display.font", f"{tmp_path / name} is not a TrueType or OpenType font (no character map read from it)")]
    with pytest.raises(ConfigError, match="display.font: .* is not a TrueType or OpenType font"):
        load_config(path)
    proc = run_cli("kiosk", "--check-config", path)
    assert proc.returncode == 2 and f"{path}:2: display.font: " in proc.stdout, proc.stdout + proc.stderr


def test_a_real_font_passes_the_check(tmp_path, clip_file):
    """The font check reads a real font's character map, and passes it (the other side of the test above)."""
    from mirrorcam.text import find_fonts

    font = next((f for f in find_fonts() if f.name == "DejaVuSans.ttf"), None)
    if font is None:
        pytest.skip("DejaVu Sans is not installed (apt-get install fonts-dejavu-core)")
    path = write(tmp_path, f'[display]\nfont = "{font}"\n' + PLAY_CLAP)
    assert check_config(path, known_actions=known) == []
    assert load_config(path).display.font == str(font)


def _folders(tmp_path: Path) -> None:
    """A file where a folder is expected, and a folder that is read-only."""
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)


@pytest.mark.parametrize(
    ("body", "key", "needle"),
    [
        ('[storage]\ndir = ""\n', "storage.dir", "must not be empty"),
        ('[storage]\ndir = "  "\n', "storage.dir", "must not be empty"),
        ('[storage]\ndir = "afile/sub"\n', "storage.dir", "is a file, not a folder"),
        ('[storage]\ndir = "afile"\n', "storage.dir", "is not a folder"),
        ('[storage]\ndir = "/proc/mirrorcam"\n', "storage.dir", "kernel file system"),
        ('[storage]\ndir = "ro/deep/x"\n', "storage.dir", "is not writable"),
        ('[privacy]\nrecord_dir = "afile/deep/x"\n', "privacy.record_dir", "is a file, not a folder"),
        ('[privacy]\nrecord_dir = "/proc/mirrorcam"\n', "privacy.record_dir", "kernel file system"),
        ('[privacy]\nrecord_dir = "ro/deep/x"\n', "privacy.record_dir", "is not writable"),
    ],
    ids=["empty", "blank", "under-a-file", "a-file", "proc", "read-only", "record-under-a-file", "record-proc", "record-read-only"],
)
def test_folders_the_run_cannot_create_are_refused(tmp_path, clip_file, monkeypatch, body, key, needle):
    """Session 20's audit: these passed --check-config; the run then wrote the log into the
    working folder ("") or refused to start."""
    _folders(tmp_path)
    if os.geteuid() == 0:  # root may write in a read-only folder: answer as for anyone else
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != tmp_path / "ro" and access(p, mode))
    path = write(tmp_path, body + '[[playlist]]\naction = "clap"\nclip = "clips/wave.avi"\n')
    problems = check_config(path, known_actions=known)
    assert [(p.line, p.key) for p in problems] == [(2, key)], problems
    assert needle in problems[0].message
    with pytest.raises(ConfigError, match=f"{key}: .*{needle}"):
        load_config(path)


def test_a_folder_to_be_created_under_a_writable_one_is_fine(tmp_path, clip_file):
    path = write(tmp_path, '[storage]\ndir = "state/deep"\n[privacy]\nrecord_dir = "rec/x"\n'
                           '[[playlist]]\naction = "clap"\nclip = "clips/wave.avi"\n')
    assert check_config(path, known_actions=known) == []
    assert load_config(path).storage_dir == tmp_path / "state" / "deep"


@pytest.mark.parametrize(
    ("data", "needle"),
    [(b"hello", "not a readable landmark recording"), (None, "holds no frames")],
    ids=["not-an-archive", "no-frames"],
)
def test_a_broken_recording_as_camera_fails_the_check_as_the_run_would(tmp_path, clip_file, data, needle):
    """Session 20's audit: "OK (... camera notvideo.npz)", then every start refused it."""
    from mirrorcam.recording import Recording, save_recording

    camera = tmp_path / "camera.npz"
    if data is None:
        save_recording(camera, Recording((), 30.0, (640, 480), source="empty", model_variant="full"))
    else:
        camera.write_bytes(data)
    path = write(tmp_path, f'[camera]\nsource = "{camera.name}"\n[[playlist]]\naction = "clap"\nclip = "clips/wave.avi"\n')
    problems = check_config(path, known_actions=known)
    assert [(p.line, p.key) for p in problems] == [(2, "camera.source")], problems
    assert needle in problems[0].message
    proc = run_cli("kiosk", "--check-config", path)
    assert proc.returncode == 2 and f"{path}:2: camera.source: " in proc.stdout, proc.stdout + proc.stderr


PLAY_CLAP = '[[playlist]]\naction = "clap"\nclip = "clips/wave.avi"\n'


@pytest.mark.parametrize(
    ("body", "line", "key", "needle"),
    [
        ('[privacy]\nrecord_landmarks = true\nrecord_dir = "clips/wave.avi"\n' + PLAY_CLAP, 3, "privacy.record_dir", "is not a folder"),
        ("[camera]\nsource = 0\n" + PLAY_CLAP, 2, "camera.source", 'must be a string, got 0 (write it as "0")'),
        ('[[playlist]]\naction = "wave"\nclip = "clips/wave.avi"\n', 2, "playlist[0].action", "did you mean 'wave_one_hand'?"),
        ('[[playlist]]\naction = "clap"\nclip = "clips"\n', 3, "playlist[0].clip", "is a folder, not a video"),
    ],
    ids=["rejected-record-dir-once", "unquoted-camera-index", "short-action-name", "folder-as-clip"],
)
def test_messages_say_what_is_wrong_and_only_that(tmp_path, clip_file, body, line, key, needle):
    """Session 20's audit: a false second problem, and messages that could say more."""
    problems = check_config(write(tmp_path, body), known_actions=known)
    assert [(p.line, p.key) for p in problems] == [(line, key)], problems
    assert needle in problems[0].message


def test_a_refused_start_says_check_config_may_find_more(tmp_path):
    """Session 20's audit: "(and 22 more...)" and then --check-config listed 29."""
    path = write(tmp_path, BROKEN)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    found = len(check_config(path, known_actions=known))
    more = int(str(raised.value).split("(and ")[1].split(" more")[0])
    assert more + 1 < found  # a start opens no clip and loads no template...
    assert "also checks clips, files and actions" in str(raised.value)  # ...and says so


def test_an_unreadable_video_as_camera_fails_the_check(tmp_path, clip_file):
    """A user's audit: a text file named ``text.mp4`` as the camera passed --check-config
    ("OK (2 playlist actions, camera .../text.mp4)", exit 0), and the run then waited for it
    forever ("camera unavailable").  A camera that is a file is test-read as a playlist clip is."""
    from conftest import make_text_named_mp4

    text_mp4 = make_text_named_mp4(tmp_path)  # beside the config's folder: named "../holiday.mp4"
    folder = tmp_path / "exhibit"
    folder.mkdir()
    (folder / "clips").mkdir()
    clip_file.rename(folder / "clips" / "wave.avi")
    path = write(folder, f'[camera]\nsource = "../{text_mp4.name}"\n' + PLAY_CLAP + PLAY_CLAP)
    problems = check_config(path, known_actions=known)
    assert [(p.line, p.key) for p in problems] == [(2, "camera.source")], problems
    assert "is not a readable video" in problems[0].message and text_mp4.name in problems[0].message
    proc = run_cli("kiosk", "--check-config", path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{path}:2: camera.source: " in proc.stdout and "OK" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("how", UNREADABLE)
@pytest.mark.parametrize(("name", "line", "key"), [("camera.avi", 2, "camera.source"), ("wave.avi", 5, "playlist[0].clip")],
                         ids=["camera", "playlist-clip"])
def test_a_clip_the_user_may_not_read_is_said_so_by_the_check(tmp_path, clip_file, monkeypatch, request, name, line, key, how):
    """OpenCV had called a clip of mode 000 "not a readable video", as if it were damaged."""
    import shutil

    shutil.copyfile(clip_file, clip_file.with_name("camera.avi"))
    path = write(tmp_path, '[camera]\nsource = "clips/camera.avi"\n' + PLAY_CLAP)
    make_unreadable(clip_file.with_name(name), how, monkeypatch, request)
    problems = check_config(path, known_actions=known)
    assert [(p.line, p.key, p.message) for p in problems] == [(line, key, f"cannot read {clip_file.with_name(name)}: permission denied")]


@pytest.mark.parametrize("source", ["clips/wave.avi", "0", "3", "rtsp://camera.invalid/stream", "/dev/null"],
                         ids=["readable-video", "camera-0", "absent-camera-3", "url", "device-file"])
def test_a_readable_video_camera_passes_and_devices_and_urls_are_not_probed(tmp_path, clip_file, monkeypatch, source):
    """The camera's file is opened by the check; a camera index, a device (a character device
    such as /dev/video0: it had been "no such camera or file") or a URL is not (a kiosk that
    boots before its USB camera, or its stream, is ready waits for it: not a problem)."""
    import cv2

    opened: list[object] = []
    real = cv2.VideoCapture

    def recording_capture(target, *args):
        opened.append(target)
        return real(target, *args)

    monkeypatch.setattr(cv2, "VideoCapture", recording_capture)
    path = write(tmp_path, f'[camera]\nsource = "{source}"\n' + PLAY_CLAP)
    assert check_config(path, known_actions=known) == []
    clip = str(tmp_path / "clips" / "wave.avi")
    expected = [clip, clip] if source == "clips/wave.avi" else [clip]  # (the camera's file, then the playlist's)
    assert [str(t) for t in opened] == expected, opened


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "special")
    return folder / "special"


def _socket(folder: Path) -> Path:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "special"))  # (the file stays after the socket is closed)
    return folder / "special"


def _sparse(folder: Path) -> Path:
    with open(folder / "special", "wb") as handle:
        handle.truncate(8 << 30)  # 8 GB that take no disk
    return folder / "special"


@pytest.mark.parametrize("option", ["--check-config", "--config"])
@pytest.mark.parametrize(
    ("make", "needle"),
    [(_fifo, "is not a regular file (a FIFO)"), (_sparse, "is 8.6 GB, too large for a config file")],
    ids=["fifo", "sparse-8GB"],
)
def test_a_config_file_that_cannot_be_one_is_refused_unread(tmp_path, option, make, needle):
    """A FIFO had blocked both commands forever; an 8 GB file had been read whole ("unexpected MemoryError")."""
    path = make(tmp_path)
    proc = run_cli("kiosk", option, path, "--no-window", "--frames", "1", timeout=120)  # (a hang fails the test)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert f"{path}: config file {path} {needle}" in (proc.stdout if option == "--check-config" else proc.stderr)


@pytest.mark.parametrize(("make", "kind"), [(_fifo, "a FIFO"), (_socket, "a socket")], ids=["fifo", "socket"])
def test_a_camera_or_clip_that_is_a_fifo_or_socket_is_refused_unopened(tmp_path, clip_file, make, kind):
    """OpenCV's open of a FIFO camera never returned, deaf to Ctrl+C and SIGTERM (only kill -9
    ended the kiosk), and --check-config had called it "no such camera or file"."""
    special = make(tmp_path)
    path = write(tmp_path, f'[camera]\nsource = "{special.name}"\n[[playlist]]\naction = "clap"\nclip = "{special.name}"\n')
    problems = check_config(path, known_actions=known)
    assert [(p.line, p.key) for p in problems] == [(2, "camera.source"), (5, "playlist[0].clip")], problems
    assert all(f"{special} is not a regular file ({kind})" in p.message for p in problems), problems
    with pytest.raises(ConfigError, match=rf"kiosk.toml:2: camera.source: {special} is not a regular file \({kind}\)"):
        load_config(path)  # (at start too: the run does not test-open its camera)


@pytest.mark.parametrize(("make", "kind"), [(_socket, "a socket"), (lambda folder: folder, "a folder")], ids=["socket", "folder"])
def test_a_camera_object_refuses_what_is_not_a_file_before_opening_it(tmp_path, make, kind):
    """For a caller that skips the config's check; refused before the pose model is loaded.
    (A FIFO is refused by the same check; unrefused, it would hang this test unkillably, so
    it is tried in a subprocess below.)"""
    from mirrorcam.errors import SourceError
    from mirrorcam.kiosk.camera import LivePoseCamera

    special = make(tmp_path)
    with pytest.raises(SourceError, match=rf"camera {special} is not a regular file \({kind}\)"):
        LivePoseCamera(str(special), options=None)


def test_a_kiosk_whose_camera_is_a_fifo_stops_with_one_line(tmp_path, clip_file):
    fifo = _fifo(tmp_path)
    path = write(tmp_path, f'[camera]\nsource = "{fifo}"\n[storage]\ndir = "state"\n'
                           '[[playlist]]\naction = "clap"\nclip = "clips/wave.avi"\n')
    proc = run_cli("kiosk", "--config", path, "--no-window", "--frames", "20", timeout=120)  # (a hang fails the test)
    assert_one_line_error(proc, f"camera.source: {fifo} is not a regular file (a FIFO)")
    assert proc.returncode == 2
