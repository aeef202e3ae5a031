"""No secret value shows in any exception, log record or repr.

Every provision() of this suite goes through ``World.attempt`` (conftest), which
checks the exception (str, repr, args, attributes, formatted traceback), the
result, the locals of every frame in the exception's traceback and in its causes' and
contexts' (what a crash reporter recording locals sees), the settings' reprs and every
log record captured at DEBUG against all of
the scenario's secret values, the API secret, the master password and every session
key the fake bw issued, and checks that none of them was ever in bw's argv. These
tests show that check is real.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from conftest import ACCOUNT, World, frame_local_texts

from colibri_vault import Secret
from colibri_vault.errors import BadMasterPassword, VaultConfigError


def test_the_check_sees_a_planted_value(world: World) -> None:
    with pytest.raises(AssertionError, match="leaked"):
        world.assert_no_leak(["oops: sk-or-v1-0123456789abcdef"])
    with pytest.raises(AssertionError, match="leaked"):
        world.assert_no_leak([f"pw={ACCOUNT['master_password']}"])


def test_the_frame_walk_sees_locals_deep_in_causes_and_contexts() -> None:
    def inner() -> None:
        env = {"BW_PASSWORD": "planted-in-a-dict", "args": [b"planted-in-bytes"]}
        raise KeyError(len(env))

    def outer() -> None:
        try:
            inner()
        except KeyError:
            plain = "planted-in-a-context-frame"  # noqa: F841 - a local to find
            raise ValueError("wrapped") from None

    def top() -> None:
        outer()

    try:
        top()
    except ValueError as exc:
        texts = "\n".join(frame_local_texts(exc))
    for planted in ("planted-in-a-dict", "planted-in-bytes", "planted-in-a-context-frame"):
        assert planted in texts


def test_provision_clears_the_frames_below_it(world: World) -> None:
    """The bw frames of a failed provision held bw's environment (the master password):
    after provision() has raised, their locals are gone."""
    outcome = world.fail(
        "tenant-alpha",
        BadMasterPassword,
        vault=world.vault_settings(master_password=Secret("a-wrong-master-password")),
    )
    frames = []
    tb = outcome.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    names = [f.f_code.co_name for f in frames]
    assert "_provision" in names and "call" in names, names
    below = frames[names.index("_provision") :]
    assert all(f.f_locals == {} for f in below), [f.f_code.co_name for f in below]


def test_the_check_knows_the_issued_session_keys(world: World) -> None:
    world.run("tenant-alpha")
    keys = [c["issued_session"] for c in world.calls() if "issued_session" in c]
    assert keys and set(keys) <= world.secrets()
    with pytest.raises(AssertionError, match="leaked"):
        world.assert_no_leak([f"BW_SESSION={keys[0]}"])


def test_the_check_sees_secrets_in_argv(world: World) -> None:
    world.run("tenant-alpha")
    world.log.write_text(
        world.log.read_text() + '{"argv": ["unlock", "' + ACCOUNT["master_password"] + '"]}\n'
    )
    with pytest.raises(AssertionError, match="argv"):
        world.assert_no_leak([])


def test_outputs_were_collected(world: World) -> None:
    world.fail(
        "tenant-alpha",
        BadMasterPassword,
        vault=world.vault_settings(master_password=Secret("a-wrong-master-password")),
    )
    text = "\n".join(world.outputs)
    assert "BadMasterPassword" in text and "Cryptography error" in text
    assert "a-wrong-master-password" not in text


def test_a_secret_file_that_is_not_utf8_never_shows_its_content(tmp_path: Path) -> None:
    # A master password saved in Latin-1: the UnicodeDecodeError that read_text raises
    # holds the whole file in its args, so repr(exc) (and any log of it) showed it.
    path = tmp_path / "pw.txt"
    path.write_bytes("p\xe4ssw\xf6rd-hunter2\n".encode("latin-1"))
    with pytest.raises(VaultConfigError) as info:
        Secret.from_file(path)
    exc = info.value
    texts = [repr(exc), str(exc), *map(repr, exc.args), *map(repr, vars(exc).values())]
    texts.append("".join(traceback.format_exception(exc)))
    for text in texts:
        assert "hunter2" not in text and "ssw" not in text
    assert str(path) in str(exc)
    # Nothing chained either: a reporter that walks __context__ finds no bytes.
    assert exc.__context__ is None and exc.__cause__ is None
    assert isinstance(exc, ValueError)  # what UnicodeDecodeError was, for old callers


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        # json.loads("\"\\ud83d\"") gives a lone surrogate: a password from a JSON config
        # cut in the middle of an emoji. Popen's UnicodeEncodeError held it whole.
        ("master_password", "hunter2-pass\ud83d"),
        ("client_secret", "hunter2-secret\udfff"),
        ("master_password", "hunter2-pass\x00tail"),
    ],
)
def test_a_secret_the_environment_cannot_carry_is_refused_without_showing_it(
    world: World, setting: str, value: str
) -> None:
    exc = world.fail(
        "tenant-alpha", VaultConfigError, vault=world.vault_settings(**{setting: Secret(value)})
    )
    texts = [repr(exc), str(exc), *map(repr, exc.args), *map(repr, vars(exc).values())]
    texts.append("".join(traceback.format_exception(exc)))
    assert not [t for t in texts if "hunter2" in t]
    assert exc.__context__ is None
    assert setting in str(exc)
    assert world.calls() == []  # refused before bw runs
