"""Registered secrets never appear in anything a pane keeps or exports."""

from __future__ import annotations

import itertools
import json

import pytest
from conftest import FakeClock, assistant, line, run_lines
from hypothesis import given
from hypothesis import strategies as st

from colibri_glasspane import Glasspane, InvalidArgument, ProcessState
from colibri_glasspane._mask import MASK, Masker, TextTail

SECRET = "sk-live-7f3a9c1e2b"


def _delta(text: str) -> bytes:
    return line(type="message_update", assistantMessageEvent={"type": "text_delta", "delta": text})


def _everything(glasspane: Glasspane) -> str:
    return glasspane.snapshot().to_json()


def test_secret_split_across_chunks_and_deltas_is_masked_while_streaming():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p", tenant="acme")
    glasspane.register_secret(SECRET, tenant="acme")
    stream = b"".join(
        [
            line(type="agent_start"),
            line(type="message_start", message={"role": "assistant", "content": []}),
            _delta("the key is sk-li"),
            _delta("ve-7f3a"),
            _delta("9c1e2b, keep it"),
        ]
    )
    # Split the bytes inside the secret too.
    cut = stream.index(b"7f3a") + 2
    for chunk in (stream[:cut], stream[cut:]):
        glasspane.feed("p", chunk)
        assert SECRET not in _everything(glasspane)
    pane = glasspane.pane("p")
    assert pane.text_tail == f"the key is {MASK}, keep it"


def test_a_possible_secret_prefix_at_the_end_of_the_stream_is_not_shown():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.register_secret(SECRET, pane_id="p")
    glasspane.feed("p", line(type="agent_start") + _delta("key: sk-live-7f"))
    assert "sk-live" not in glasspane.pane("p").text_tail
    assert glasspane.pane("p").text_tail == f"key: {MASK}"
    glasspane.feed("p", _delta("ZZ done"))  # it was not the secret after all
    assert glasspane.pane("p").text_tail == "key: sk-live-7fZZ done"


def test_secrets_are_masked_in_errors_tool_args_session_and_text():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.register_secret(SECRET)
    glasspane.feed(
        "p",
        b"".join(
            [
                line(type="session", version=3, id=f"id-{SECRET}", cwd=f"/w/{SECRET}"),
                line(type="agent_start"),
                line(
                    type="tool_execution_start",
                    toolCallId="c1",
                    toolName="bash",
                    args={"command": f"curl -H 'Authorization: {SECRET}'", SECRET: 1},
                ),
                line(type="extension_ui_request", id="u", method="confirm", title=f"use {SECRET}?"),
            ]
        ),
    )
    assert SECRET not in _everything(glasspane)
    assert glasspane.pane("p").current_tool.args.count(MASK) == 2  # type: ignore[union-attr]
    glasspane.feed(
        "p",
        b"".join(run_lines("error", text=f"leaked {SECRET}", error=f"401 bad key {SECRET}")),
    )
    pane = glasspane.pane("p")
    assert pane.reason == f"provider error: 401 bad key {MASK}"
    assert pane.text_tail == f"leaked {MASK}"
    assert SECRET not in _everything(glasspane)


def test_registering_a_secret_later_masks_what_was_already_kept():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p", tenant="t1")
    glasspane.feed("p", b"".join(run_lines("error", text=f"x {SECRET}", error=SECRET)))
    assert SECRET in _everything(glasspane)
    glasspane.register_secret(SECRET, tenant="t1")
    assert SECRET not in _everything(glasspane)


def test_secrets_apply_only_to_their_pane_or_tenant():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("a", tenant="t1")
    glasspane.open_pane("b", tenant="t2")
    glasspane.register_secret("alpha-secret", tenant="t1")
    glasspane.register_secret("beta-secret", pane_id="b")
    text = "alpha-secret beta-secret"
    for pane_id in ("a", "b"):
        glasspane.feed(pane_id, b"".join(run_lines("stop", text=text)))
    assert glasspane.pane("a").text_tail == f"{MASK} beta-secret"
    assert glasspane.pane("b").text_tail == f"alpha-secret {MASK}"
    # A pane opened later for the tenant gets the tenant's secrets.
    glasspane.open_pane("c", tenant="t1")
    glasspane.feed("c", b"".join(run_lines("stop", text=text)))
    assert glasspane.pane("c").text_tail == f"{MASK} beta-secret"


def test_final_agent_end_text_is_masked_too():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.register_secret(SECRET)
    message = assistant("stop", text=f"here: {SECRET}")
    glasspane.feed("p", line(type="agent_start") + line(type="agent_end", messages=[message]))
    glasspane.set_process_state("p", ProcessState.exited(0))
    assert glasspane.pane("p").text_tail == f"here: {MASK}"


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_empty_or_non_string_secrets_are_refused(bad):
    glasspane = Glasspane(clock=FakeClock())
    with pytest.raises(InvalidArgument, match="value"):
        glasspane.register_secret(bad)


def test_pane_and_tenant_together_are_refused():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    with pytest.raises(InvalidArgument, match="not both"):
        glasspane.register_secret("s3cret", pane_id="p", tenant="t")


def test_overlapping_secrets_and_the_mask_text_itself():
    masker = Masker(["abc", "bcd", "[masked]", "mask"])
    assert masker.mask("xabcdx") == f"x{MASK}dx"
    assert masker.mask("[masked] mask") == f"{MASK} {MASK}"


@given(
    secret=st.text(alphabet="ab-xyz", min_size=2, max_size=8),
    text=st.text(alphabet="ab-xyz ", max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
)
def test_streamed_tail_never_shows_the_secret(secret, text, cuts):
    """However the text is split into deltas, the exported tail never contains the secret."""
    masker = Masker([secret])
    tail = TextTail(limit=1000)
    full = text[: len(text) // 2] + secret + text[len(text) // 2 :]
    points = sorted({min(c, len(full)) for c in cuts} | {0, len(full)})
    for start, end in itertools.pairwise(points):
        tail.append(full[start:end], masker)
        assert secret not in tail.export(masker)
    # What is kept plus what is held back, masked, is the whole text masked.
    assert tail.kept + masker.mask(tail.held) == masker.mask(full)


def test_masked_snapshot_is_still_valid_json():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.register_secret('quo"te\\')
    glasspane.feed("p", b"".join(run_lines("stop", text='a quo"te\\ b')))
    document = json.loads(_everything(glasspane))
    assert document["panes"][0]["text_tail"] == f"a {MASK} b"
