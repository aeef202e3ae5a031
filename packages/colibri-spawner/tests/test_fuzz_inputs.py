"""Hostile input to every public entry point, the log reader under abuse, rough agents.

Each bad input must get a typed error from the ``SpawnError`` root naming the bad
argument and change nothing (no session directory, no process, no signal). Every
test ends on its own within seconds: waits that could hang run in a thread or a
subprocess with a bound.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import kill_quietly, proc_alive, wait_dead
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colibri_spawner
from colibri_spawner import (
    AgentSpec,
    AgentState,
    Spawner,
    SpawnError,
    StdinMode,
    errors,
    read_lines,
)

_FAST = settings(
    max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _sh(session_id: str, cwd: Path, script: str, **kw: Any) -> AgentSpec:
    return AgentSpec(argv=("/bin/sh", "-c", script), session_id=session_id, cwd=str(cwd), **kw)


def _returns_within(call: Callable[[], object], seconds: float) -> object:
    """Run ``call`` in a thread; fail (instead of hanging) if it does not return in time."""
    box: list[tuple[str, object]] = []

    def run() -> None:
        try:
            box.append(("value", call()))
        except BaseException as exc:
            box.append(("error", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call did not return within {seconds} s"
    kind, value = box[0]
    if kind == "error":
        raise value  # type: ignore[misc]
    return value


def _expect(field: str, call: Callable[[], object]) -> errors.InvalidSpec:
    with pytest.raises(errors.InvalidSpec) as info:
        call()
    assert info.value.field == field, info.value
    assert isinstance(info.value, SpawnError)
    return info.value


# --- AgentSpec -------------------------------------------------------------------

_not_str = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.text(max_size=3), max_size=2),
)
_hostile_argv = st.one_of(
    st.text(max_size=20),  # a bare string: it used to become one argument per character
    st.binary(max_size=20),
    st.none(),
    st.integers(),
    st.just([]),
    st.lists(st.text(max_size=5), max_size=3).flatmap(
        lambda rest: st.tuples(_not_str, st.integers(0, len(rest))).map(
            lambda bad: [*rest[: bad[1]], bad[0], *rest[bad[1] :]]
        )
    ),
    st.lists(st.text(max_size=5), min_size=1, max_size=3).map(lambda a: [*a, "x\0y"]),
)


@_FAST
@given(argv=_hostile_argv)
def test_malformed_argv_is_invalid_spec(argv):
    _expect("argv", lambda: AgentSpec(argv=argv, session_id="s", cwd="/"))


@_FAST
@given(
    argv=st.lists(
        st.text(min_size=1, max_size=10).filter(lambda a: "\0" not in a), min_size=1, max_size=5
    )
)
def test_well_formed_argv_is_kept_as_given(argv):
    assert AgentSpec(argv=argv, session_id="s", cwd="/").argv == tuple(argv)


_hostile_ids = st.one_of(
    _not_str,
    st.text(max_size=200).filter(
        lambda s: not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", s)
    ),
    st.sampled_from(["..", ".", "a/b", "../x", "a\0", "x" * 129, "-a", "a\n", "é"]),
)


@_FAST
@given(session_id=_hostile_ids)
def test_malformed_session_id_is_invalid_spec(session_id):
    _expect("session_id", lambda: AgentSpec(argv=["/bin/true"], session_id=session_id, cwd="/"))


_hostile_env = st.one_of(
    st.none(),
    st.integers(),
    st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), min_size=1, max_size=2),
    st.dictionaries(
        st.text(max_size=3),
        _not_str.filter(lambda v: not isinstance(v, str)),
        min_size=1,
        max_size=2,
    ),
    st.dictionaries(
        st.one_of(st.none(), st.integers(), st.binary(max_size=3)),
        st.text(max_size=3),
        min_size=1,
        max_size=2,
    ),
    st.sampled_from([{"": "x"}, {"A=B": "x"}, {"A\0": "x"}, {"A": "x\0"}]),
)


@_FAST
@given(env=_hostile_env)
def test_malformed_env_is_invalid_spec(env):
    _expect("env", lambda: AgentSpec(argv=["/bin/true"], session_id="s", cwd="/", env=env))


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("cwd", {"cwd": None}),
        ("cwd", {"cwd": 5}),
        ("cwd", {"cwd": b"/tmp"}),
        ("cwd", {"cwd": ""}),
        ("cwd", {"cwd": "/tmp\0x"}),
        ("runtime", {"runtime": "local"}),
        ("runtime", {"runtime": None}),
        ("stdin", {"stdin": "pipe"}),
        ("jail_name", {"jail_name": 3}),
    ],
)
def test_malformed_cwd_runtime_stdin_or_jail_name_is_invalid_spec(field, kwargs):
    spec = {"argv": ["/bin/true"], "session_id": "s", "cwd": "/", **kwargs}
    _expect(field, lambda: AgentSpec(**spec))


def test_spawn_refusals_leave_no_session_directory(spawner, data_dir, workdir, tmp_path):
    missing = str(tmp_path / "missing")
    a_file = tmp_path / "file"
    a_file.write_text("")
    bad = [
        (errors.BadWorkingDirectory, AgentSpec(argv=["/bin/true"], session_id="a", cwd=missing)),
        (
            errors.BadWorkingDirectory,
            AgentSpec(argv=["/bin/true"], session_id="b", cwd=str(a_file)),
        ),
        (errors.InvalidSpec, AgentSpec(argv=["/bin/true"], session_id="c", cwd="rel")),
        (errors.BinaryNotFound, AgentSpec(argv=["no-such-xyz"], session_id="d", cwd=str(workdir))),
        (errors.NotExecutable, AgentSpec(argv=[str(a_file)], session_id="e", cwd=str(workdir))),
        (
            errors.StartFailed,
            AgentSpec(argv=["/bin/true", "x" * (4 << 20)], session_id="f", cwd=str(workdir)),
        ),
    ]
    for kind, spec in bad:
        with pytest.raises(kind):
            spawner.spawn(spec)
    assert list((data_dir / "agents").iterdir()) == []


# --- Spawner ---------------------------------------------------------------------


@pytest.mark.parametrize("data_dir", [None, 5, b"/tmp/x", "", "/tmp/a\0b"])
def test_malformed_data_dir_is_invalid_spec(data_dir):
    _expect("data_dir", lambda: Spawner(data_dir))


def test_a_data_dir_that_is_a_file_is_invalid_spec_and_nothing_starts(tmp_path, workdir):
    target = tmp_path / "plain-file"
    target.write_text("")
    spawner = Spawner(target)
    _expect("data_dir", lambda: spawner.spawn(_sh("x", workdir, "touch started")))
    assert not (workdir / "started").exists()


def test_a_relative_data_dir_works_and_survives_a_change_of_directory(
    tmp_path, workdir, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    spawner = Spawner("rel-data")
    try:
        handle = spawner.spawn(_sh("rel", workdir, "echo one"))
        monkeypatch.chdir("/")
        assert handle.wait(10).code == 0
        assert handle.read(0).lines == (b"one",)
        assert [h.session_id for h in Spawner(tmp_path / "rel-data").agents()] == ["rel"]
    finally:
        from conftest import reap_data_dir

        reap_data_dir(tmp_path / "rel-data")


@_FAST
@given(session_id=_hostile_ids)
def test_looking_up_a_malformed_session_id_is_agent_not_found(tmp_path_factory, session_id):
    spawner = Spawner(tmp_path_factory.mktemp("data"))
    (spawner.agents_dir / "real").mkdir(parents=True)
    with pytest.raises(errors.AgentNotFound):
        spawner.agent(session_id)
    with pytest.raises(errors.AgentNotFound):
        spawner.remove(session_id)
    assert [p.name for p in spawner.agents_dir.iterdir()] == ["real"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1, -0.001, "1", None, True])
def test_start_timeout_must_be_finite_and_positive(value, tmp_path):
    _expect("start_timeout", lambda: Spawner(tmp_path, start_timeout=value))


def test_torn_records_after_a_host_crash_read_as_absent(spawner, data_dir):
    # spec.json and state.json are written without fsync: after a host crash they
    # can be empty. status(), agents(), busy_jails() and sweep() must still work.
    torn = data_dir / "agents" / "torn"
    torn.mkdir(parents=True)
    for name, text in [("spec.json", ""), ("state.json", '{"pid": 1'), ("exit.json", "[]")]:
        (torn / name).write_text(text)
    [handle] = spawner.agents()
    assert handle.status().state is AgentState.UNKNOWN
    assert handle.spec == {} and handle.pid is None and handle.exit_record() is None
    assert spawner.busy_jails() == set() and spawner.sweep() == []
    with pytest.raises(errors.AgentLost):
        handle.wait(1)


# --- the log reader --------------------------------------------------------------

_hostile_offsets = st.one_of(
    st.integers(max_value=-1),
    st.floats(),
    st.none(),
    st.text(max_size=3),
    st.just(True),
    st.just(False),
)


@_FAST
@given(offset=_hostile_offsets, max_bytes=st.one_of(st.integers(1, 100), st.none()))
def test_malformed_offset_is_invalid_spec(tmp_path_factory, offset, max_bytes):
    path = tmp_path_factory.mktemp("log") / "out.jsonl"
    path.write_bytes(b"a\nb\n")
    args = (offset,) if max_bytes is None else (offset, max_bytes)
    _expect("offset", lambda: read_lines(path, *args))


@_FAST
@given(
    max_bytes=st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=2), st.just(True))
)
def test_malformed_max_bytes_is_invalid_spec(tmp_path_factory, max_bytes):
    path = tmp_path_factory.mktemp("log") / "out.jsonl"
    path.write_bytes(b"a\nb\n")
    _expect("max_bytes", lambda: read_lines(path, 0, max_bytes))


@pytest.mark.parametrize("path", [None, 5, "/tmp/a\0b", b"/tmp/a\0b"], ids=repr)
def test_a_malformed_log_path_is_invalid_spec(path):
    _expect("path", lambda: read_lines(path, 0))


_line = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"\xff"))  # invalid UTF-8 too


@_FAST
@given(lines=st.lists(_line, min_size=1, max_size=8), tail=_line, data=st.data())
def test_an_offset_mid_line_or_past_the_end_is_bad_log(tmp_path_factory, lines, tail, data):
    path = tmp_path_factory.mktemp("log") / "out.jsonl"
    content = b"".join(line + b"\n" for line in lines) + tail
    path.write_bytes(content)
    ends = {0} | {i + 1 for i, byte in enumerate(content) if byte == ord("\n")}
    offset = data.draw(st.one_of(st.integers(0, len(content) + 2), st.integers(0, 1 << 70)))
    if offset in ends:
        chunk = read_lines(path, offset)
        assert b"".join(line + b"\n" for line in chunk.lines) == content[offset : chunk.offset]
    else:
        with pytest.raises(errors.BadLog) as info:
            read_lines(path, offset)
        assert info.value.offset == offset


def test_a_log_truncated_or_replaced_under_a_reader_is_bad_log(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"seq":0}\n{"seq":1}\n')
    offset = read_lines(path, 0).offset
    path.write_bytes(b"")  # truncated
    with pytest.raises(errors.BadLog, match="truncated or replaced"):
        read_lines(path, offset)
    (tmp_path / "new").write_bytes(b'{"seq":"renamed over"}\n')
    os.replace(tmp_path / "new", path)  # replaced: the old offset lands mid-line
    with pytest.raises(errors.BadLog, match="not just past a line end"):
        read_lines(path, offset)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "symlink-to-fifo"])
def test_a_log_that_is_no_regular_file_is_bad_log_without_blocking(tmp_path, kind):
    path = tmp_path / "out.jsonl"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path.symlink_to(os.devnull)
    else:
        os.mkfifo(tmp_path / "fifo")
        path.symlink_to(tmp_path / "fifo")
    # A FIFO without a writer used to block open() for ever: read in a subprocess.
    code = (
        "import sys\nfrom colibri_spawner import read_lines, errors\n"
        "try:\n    read_lines(sys.argv[1], 0)\nexcept errors.BadLog:\n    sys.exit(7)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], timeout=20, check=False)
    assert proc.returncode == 7


def test_a_symlinked_regular_log_reads_as_its_target(tmp_path):
    (tmp_path / "real.jsonl").write_bytes(b"a\nb\npart")
    (tmp_path / "out.jsonl").symlink_to(tmp_path / "real.jsonl")
    chunk = read_lines(tmp_path / "out.jsonl", 0)
    assert chunk.lines == (b"a", b"b") and chunk.offset == 4


@_FAST
@given(
    writes=st.lists(st.binary(max_size=60), max_size=15),
    reads=st.lists(st.integers(1, 80), min_size=1, max_size=15),
)
def test_successive_reads_of_a_growing_log_never_split_lose_or_repeat(
    tmp_path_factory, writes, reads
):
    path = tmp_path_factory.mktemp("log") / "out.jsonl"
    got: list[bytes] = []
    offset = 0
    with open(path, "ab", buffering=0) as fh:
        for i, piece in enumerate(writes):
            fh.write(piece)
            chunk = read_lines(path, offset, max_bytes=reads[i % len(reads)])
            assert chunk.offset >= offset
            got += chunk.lines
            offset = chunk.offset
    while True:
        chunk = read_lines(path, offset, max_bytes=reads[0])
        if not chunk.lines:
            break
        got += chunk.lines
        offset = chunk.offset
    data = b"".join(writes)
    complete = data[: data.rfind(b"\n") + 1]
    assert got == complete.split(b"\n")[:-1]
    assert offset == len(complete)


def test_a_line_of_many_megabytes_comes_whole_and_once(tmp_path):
    path = tmp_path / "out.jsonl"
    big = b"x" * (24 << 20)
    path.write_bytes(b"a\n" + big + b"\n" + big[:1000])  # and a partial tail
    first = read_lines(path, 0, max_bytes=1)
    assert first.lines == (b"a",)
    second = read_lines(path, first.offset, max_bytes=1)
    assert second.lines == (big,)
    assert read_lines(path, second.offset).lines == ()


# --- timeouts and stdin ----------------------------------------------------------

_bad_seconds = [math.nan, math.inf, -math.inf, -1, -1e-9, "1", None, True]


@pytest.mark.parametrize("value", _bad_seconds, ids=repr)
def test_malformed_timeouts_are_invalid_spec_and_signal_nothing(spawner, workdir, value):
    handle = spawner.spawn(_sh("t", workdir, "trap '' TERM; echo up; while :; do sleep 0.05; done"))
    handle.wait_lines(0, 10)
    calls: list[tuple[str, Callable[[], object]]] = [
        ("timeout", lambda: handle.wait(value)),
        ("timeout", lambda: handle.wait_lines(handle.read(0).offset, value)),
        ("grace", lambda: handle.stop(grace=value, kill_timeout=1)),
        ("kill_timeout", lambda: handle.stop(grace=0, kill_timeout=value)),
        ("grace", lambda: spawner.stop("t", grace=value)),
    ]
    for field, call in calls:
        with pytest.raises(errors.InvalidSpec) as info:
            _returns_within(call, 5)
        assert info.value.field == field
    assert handle.status().state is AgentState.RUNNING  # nothing was signalled
    assert handle.stop(grace=0.2, kill_timeout=10).signal == signal.SIGKILL


@pytest.mark.parametrize(
    "message",
    [3, None, 1.5, ["a"], "two\nlines", b"a\nb\n", {"k": math.nan}, {"k": object()}, "\udcff"],
    ids=repr,
)
def test_malformed_stdin_messages_are_invalid_spec_and_send_nothing(spawner, workdir, message):
    handle = spawner.spawn(
        AgentSpec(argv=["/bin/cat"], session_id="cat", cwd=str(workdir), stdin=StdinMode.PIPE)
    )
    _expect("message", lambda: handle.send(message))
    _expect("timeout", lambda: handle.send("x", timeout=math.nan))
    handle.send({"ok": 1})
    handle.close_stdin()
    assert handle.wait(10).code == 0
    assert handle.read(0).lines == (b'{"ok":1}',)


# --- rough agents ----------------------------------------------------------------


def test_an_agent_that_exits_at_once(spawner, workdir):
    handle = spawner.spawn(AgentSpec(argv=["/bin/true"], session_id="now", cwd=str(workdir)))
    assert handle.wait(10).code == 0
    assert handle.wait_lines(0, 10).lines == ()
    assert handle.stop(grace=1).code == 0  # stopping an ended agent returns its record


def test_an_agent_that_closes_stdout_and_runs_on_is_still_stopped(spawner, workdir):
    handle = spawner.spawn(_sh("quiet", workdir, "echo one; exec >&-; exec sleep 30"))
    assert handle.wait_lines(0, 10).lines == (b"one",)
    with pytest.raises(errors.WaitTimeout):
        handle.wait_lines(4, 0.2)
    assert handle.status().state is AgentState.RUNNING
    assert handle.stop(grace=5).signal == signal.SIGTERM
    assert handle.pid is not None and wait_dead(handle.pid, 5)


def test_children_of_an_agent_that_forks_and_exits_are_gone(spawner, workdir):
    script = "setsid sleep 60 & echo $!; (trap '' TERM; sleep 60) & echo $!; exit 3"
    handle = spawner.spawn(_sh("forker", workdir, script))
    record = handle.wait(15)
    children = [int(line) for line in handle.read(0).lines]
    try:
        assert record.code == 3 and len(children) == 2
        assert all(wait_dead(pid, 5) for pid in children)
    finally:
        for pid in children:
            kill_quietly(pid)


def test_an_agent_ignoring_sigterm_is_killed_after_the_grace(spawner, workdir):
    script = "trap '' TERM; (trap '' TERM; sleep 60) & echo $!; while :; do sleep 0.05; done"
    handle = spawner.spawn(_sh("stubborn", workdir, script))
    child = int(handle.wait_lines(0, 10).lines[0])
    try:
        record = _returns_within(lambda: handle.stop(grace=0.3, kill_timeout=10), 15)
        assert record.signal == signal.SIGKILL  # type: ignore[attr-defined]
        assert wait_dead(child, 5) and not proc_alive(handle.pid or 0)
    finally:
        kill_quietly(child)


@pytest.mark.parametrize("max_bytes", [1, 100, 1 << 16])
def test_an_agent_writing_fast_is_read_exactly_once_in_order(spawner, data_dir, max_bytes):
    data_dir.mkdir()
    code = "import sys\nfor i in range(5000): sys.stdout.write('{\"seq\":%d}\\n' % i)"
    handle = spawner.spawn(
        AgentSpec(argv=[sys.executable, "-c", code], session_id="fast", cwd=str(data_dir))
    )
    seqs: list[int] = []
    offset = 0
    while True:
        chunk = handle.wait_lines(offset, 20)
        if not chunk.lines:
            break
        seqs += [json.loads(line)["seq"] for line in chunk.lines]
        offset = chunk.offset
        chunk = handle.read(offset, max_bytes)  # interleave bounded reads
        seqs += [json.loads(line)["seq"] for line in chunk.lines]
        offset = chunk.offset
    assert handle.wait(10).code == 0
    assert seqs == list(range(5000))


# --- re-attach after the supervisor is SIGKILLed ----------------------------------

_SUPERVISOR = """
import json, os, sys
from colibri_spawner import AgentSpec, Spawner
data_dir, cwd, saved = sys.argv[1:4]
handle = Spawner(data_dir).spawn(AgentSpec(argv=["/bin/sh", "-c", sys.argv[4]],
                                           session_id="agent", cwd=cwd))
offset = 0
while True:
    chunk = handle.wait_lines(offset, 20)
    offset = chunk.offset
    with open(saved + ".tmp", "w") as fh:
        json.dump({"offset": offset, "lines": [l.decode() for l in chunk.lines]}, fh)
    os.replace(saved + ".tmp", saved)  # the offset and what it covers, atomically
    if any(l == b"half" for l in chunk.lines):
        os.kill(os.getpid(), 9)
"""


def test_reattach_after_sigkill_resumes_at_the_persisted_offset(data_dir, workdir, tmp_path):
    saved = tmp_path / "saved.json"
    # The agent prints a line, then half of one; it completes that line only once the
    # supervisor is dead (the test creates "go").
    script = "echo first; echo half; printf par; until [ -e go ]; do sleep 0.01; done; echo tial"
    script += "; echo last"
    proc = subprocess.run(
        [sys.executable, "-c", _SUPERVISOR, str(data_dir), str(workdir), str(saved), script],
        timeout=30,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    state = json.loads(saved.read_text())
    assert state["offset"] == len(b"first\nhalf\n")
    handle = Spawner(data_dir).agent("agent")
    assert handle.status().state is AgentState.RUNNING
    assert handle.read(state["offset"]).lines == ()  # "par" is no line yet
    (workdir / "go").touch()
    handle.wait(15)
    rest = handle.read(state["offset"])
    assert rest.lines == (b"partial", b"last")
    assert rest.offset == handle.log_path.stat().st_size
    assert handle.read(rest.offset).lines == ()


# --- a spawn interrupted at any moment -------------------------------------------


class _Interrupted(Exception):
    pass


def _processes_with(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                environ = Path(f"/proc/{name}/environ").read_bytes()
            except OSError:
                continue
            if marker.encode() in environ and proc_alive(int(name)):
                found.append(int(name))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find the agents")
# An interrupt landing in logging's at-fork hook is swallowed there (and the spawn goes on).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_spawn_interrupted_at_any_moment_leaves_nothing_running(spawner, data_dir, workdir):
    # KeyboardInterrupt, or an exception raised by any signal handler, can land at any
    # point of spawn(): before the shim reported, or after, while spawn() finishes.
    # When spawn() raises, no agent may run on (its session directory is removed).
    package = os.path.dirname(colibri_spawner.__file__)

    def interrupt(_sig: int, frame: Any) -> None:
        # Only while spawn() runs: an interrupt landing in this test after spawn()
        # returned is no failed spawn.
        while frame is not None:
            if frame.f_code.co_filename.startswith(package):
                raise _Interrupted
            frame = frame.f_back

    previous = signal.signal(signal.SIGALRM, interrupt)
    leaked: list[tuple[float, list[int]]] = []
    try:
        for i in range(30):
            marker = f"colibri-fuzz-interrupt-{os.getpid()}-{i}"
            delay = 0.0005 * (i + 1)
            signal.setitimer(signal.ITIMER_REAL, delay)
            try:
                handle = spawner.spawn(_sh(f"i{i}", workdir, "sleep 30", env={"M": marker}))
                signal.setitimer(signal.ITIMER_REAL, 0)
            except _Interrupted:
                deadline = time.monotonic() + 10
                while (alive := _processes_with(marker)) and time.monotonic() < deadline:
                    time.sleep(0.01)
                if alive:
                    leaked.append((delay, alive))
                assert not (data_dir / "agents" / f"i{i}").exists()
            else:
                handle.stop(grace=0, kill_timeout=10)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        for _, pids in leaked:
            for pid in pids:
                kill_quietly(pid)
    assert leaked == [], "an interrupted spawn left its agent running"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find the agents")
@pytest.mark.parametrize("stall", [1.6, 30.0], ids=["slow", "hung"])
def test_a_shim_that_misses_its_start_timeout_leaves_no_agent(
    data_dir, workdir, monkeypatch, stall
):
    # The shim has started the agent, then stalls (a slow or hung disk, say) before it
    # reports: spawn() gives up after start_timeout, and the agent must not run on,
    # whether the shim later recovers (slow) or never does (hung).
    from colibri_spawner import _shim

    marker = f"colibri-fuzz-stall-{os.getpid()}-{stall}"
    me = os.getpid()
    real_write = _shim.write_json_atomic

    def stalling_write(directory: str, name: str, obj: Any, **kw: Any) -> None:
        if name == _shim.STATE and os.getpid() != me:  # in the forked shim, after the spawn
            deadline = time.monotonic() + 10
            while not _processes_with(marker) and time.monotonic() < deadline:
                time.sleep(0.005)  # the agent is running: now stall
            time.sleep(stall)
        real_write(directory, name, obj, **kw)

    monkeypatch.setattr(_shim, "write_json_atomic", stalling_write)
    spawner = Spawner(data_dir, start_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(errors.StartFailed, match="did not report"):
        spawner.spawn(_sh("stall", workdir, "sleep 60", env={"M": marker}))
    assert time.monotonic() - started < 5  # bounded, even when the shim never recovers
    deadline = time.monotonic() + 10
    while (alive := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in alive:
        kill_quietly(pid)
    assert alive == [], "the agent of a shim that missed its start timeout runs on"
    assert not (data_dir / "agents" / "stall").exists()
