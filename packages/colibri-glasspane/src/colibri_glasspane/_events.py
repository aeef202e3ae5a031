"""Typed schemas of the agent events the glasspane reads, decoded with msgspec.

Each struct declares only the fields the pane uses. msgspec skips every other
field without building Python objects for it, which is what makes ingest fast:
a Pi ``message_update`` line repeats the whole partial message twice and can be
megabytes, but all the pane needs from it is ``assistantMessageEvent.type`` and
the text ``delta``. Skipped values are still scanned, so the whole line must be
valid JSON.

Field names follow the wire (camelCase for Pi, snake_case for zot). Numbers are
declared ``float`` so an integer or a float both decode.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

# --- Pi (pi --mode json / --mode rpc, 0.73.1) ---------------------------------


class Cost(msgspec.Struct):
    total: float = 0.0


class Usage(msgspec.Struct):
    input: float = 0
    output: float = 0
    cacheRead: float = 0
    cacheWrite: float = 0
    cost: Cost | None = None


class Block(msgspec.Struct):
    """One content block: text, thinking, toolCall or image (image data is skipped)."""

    type: str = ""
    text: str | None = None


class Message(msgspec.Struct):
    role: str = ""
    content: str | list[Block] = msgspec.field(default_factory=list)
    stopReason: str | None = None
    errorMessage: str | None = None
    usage: Usage | None = None


class MessageHead(msgspec.Struct):
    """A message of which only the role and stop reason matter (large bodies skipped)."""

    role: str = ""
    stopReason: str | None = None


class AssistantMessageEvent(msgspec.Struct):
    type: str = ""
    delta: str | None = None


class PiEvent(msgspec.Struct, tag_field="type"):
    """Base of every Pi event; the ``type`` field selects the struct."""


class Session(PiEvent, tag="session"):
    id: str | None = None
    cwd: str | None = None


class AgentStart(PiEvent, tag="agent_start"):
    pass


class AgentEnd(PiEvent, tag="agent_end"):
    messages: list[Message] = msgspec.field(default_factory=list)


class TurnStart(PiEvent, tag="turn_start"):
    pass


class TurnEnd(PiEvent, tag="turn_end"):
    message: MessageHead | None = None


class MessageStart(PiEvent, tag="message_start"):
    message: MessageHead | None = None


class MessageUpdate(PiEvent, tag="message_update"):
    assistantMessageEvent: AssistantMessageEvent | None = None


class MessageEnd(PiEvent, tag="message_end"):
    message: Message | None = None


class ToolExecutionStart(PiEvent, tag="tool_execution_start"):
    toolCallId: str | None = None
    toolName: str | None = None
    args: Any = None


class ToolExecutionUpdate(PiEvent, tag="tool_execution_update"):
    toolCallId: str | None = None
    toolName: str | None = None


class ToolExecutionEnd(PiEvent, tag="tool_execution_end"):
    toolCallId: str | None = None
    toolName: str | None = None
    isError: bool = False


class QueueUpdate(PiEvent, tag="queue_update"):
    steering: list[Any] = msgspec.field(default_factory=list)
    followUp: list[Any] = msgspec.field(default_factory=list)


class CompactionStart(PiEvent, tag="compaction_start"):
    reason: str | None = None


class CompactionEnd(PiEvent, tag="compaction_end"):
    reason: str | None = None
    aborted: bool = False
    willRetry: bool = False
    errorMessage: str | None = None


class AutoRetryStart(PiEvent, tag="auto_retry_start"):
    attempt: float | None = None
    maxAttempts: float | None = None
    errorMessage: str | None = None


class AutoRetryEnd(PiEvent, tag="auto_retry_end"):
    success: bool = False
    attempt: float | None = None
    finalError: str | None = None


class SessionInfoChanged(PiEvent, tag="session_info_changed"):
    pass


class ThinkingLevelChanged(PiEvent, tag="thinking_level_changed"):
    pass


class Response(PiEvent, tag="response"):
    command: str | None = None
    success: bool = True
    error: Any = None
    # Kept raw: its shape depends on the command (get_messages returns the whole
    # conversation), and only get_state's sessionId is read.
    data: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class StateData(msgspec.Struct):
    sessionId: str | None = None


class ExtensionUiRequest(PiEvent, tag="extension_ui_request"):
    id: Any = None
    method: str | None = None
    title: Any = None
    timeout: float | None = None


class ExtensionError(PiEvent, tag="extension_error"):
    extensionPath: Any = None
    event: Any = None
    error: Any = None


PI_EVENT_TYPES = (
    Session,
    AgentStart,
    AgentEnd,
    TurnStart,
    TurnEnd,
    MessageStart,
    MessageUpdate,
    MessageEnd,
    ToolExecutionStart,
    ToolExecutionUpdate,
    ToolExecutionEnd,
    QueueUpdate,
    CompactionStart,
    CompactionEnd,
    AutoRetryStart,
    AutoRetryEnd,
    SessionInfoChanged,
    ThinkingLevelChanged,
    Response,
    ExtensionUiRequest,
    ExtensionError,
)

# --- zot (the original's default harness) -------------------------------------


class ZotEvent(msgspec.Struct, tag_field="type"):
    """Base of every zot event."""


class ZotResponse(ZotEvent, tag="response"):
    success: bool = True
    error: Any = None


class ZotUserMessage(ZotEvent, tag="user_message"):
    pass


class ZotAssistantMessage(ZotEvent, tag="assistant_message"):
    text: Any = None
    content: Any = None
    message: Any = None


class ZotTurnStart(ZotEvent, tag="turn_start"):
    pass


class ZotTurnEnd(ZotEvent, tag="turn_end"):
    pass


class ZotError(ZotEvent, tag="error"):
    message: Any = None
    error: Any = None


class ZotDone(ZotEvent, tag="done"):
    pass


class ZotUsage(ZotEvent, tag="usage"):
    input: float = 0
    output: float = 0
    cache_read: float = 0
    cache_write: float = 0
    cost_usd: float = 0.0


ZOT_EVENT_TYPES = (
    ZotResponse,
    ZotUserMessage,
    ZotAssistantMessage,
    ZotTurnStart,
    ZotTurnEnd,
    ZotError,
    ZotDone,
    ZotUsage,
)


class Envelope(msgspec.Struct):
    """Any JSON object with a string ``type``: tells an unknown event from a malformed line."""

    type: str


def pi_decoder() -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(_union(PI_EVENT_TYPES))


def zot_decoder() -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(_union(ZOT_EVENT_TYPES))


def _union(types: tuple[type, ...]) -> Any:
    # typing.Union over a runtime tuple: Union[A, B, ...]
    return Union[types]  # noqa: UP007 - built from a runtime tuple


PI_TAGS: frozenset[str] = frozenset(str(t.__struct_config__.tag) for t in PI_EVENT_TYPES)
ZOT_TAGS: frozenset[str] = frozenset(str(t.__struct_config__.tag) for t in ZOT_EVENT_TYPES)
ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)
STATE_DATA_DECODER = msgspec.json.Decoder(StateData)


# --- fast path for Pi message_update lines -------------------------------------
#
# Pi writes ``message_update`` lines with a fixed key order; after the small
# ``assistantMessageEvent`` head comes the whole partial message, twice, which
# is most of a multi-kilobyte line and of no use to a pane. When a line starts
# exactly like this and ends with ``}``, the pane reads the head (event type and
# text delta) and skips the rest without decoding it. Any other shape goes
# through the full msgspec decode above, so a newer Pi with another key order,
# or a delta this cannot read simply, still works, only slower.
UPDATE_PREFIX = b'{"type":"message_update",'
_EVENT_HEAD = b'{"type":"message_update","assistantMessageEvent":{"type":"'
_DELTA_KEY = b',"delta":"'
_TEXT_DELTA_HEAD = _EVENT_HEAD + b'text_delta",'
_TEXT_DELTA_LEN = len(_TEXT_DELTA_HEAD)
_EVENT_HEAD_LEN = len(_EVENT_HEAD)
_DELTA_KEY_LEN = len(_DELTA_KEY)
_DELTA_END = b'","partial":'
HEAD_BYTES = 1024
_STRING_DECODER = msgspec.json.Decoder(str)


def line_head(line: memoryview | bytes) -> bytes:
    """The start of a line as bytes (the line itself when it already is bytes)."""
    return line if isinstance(line, bytes) else bytes(line[:HEAD_BYTES])


def fast_message_update(line: memoryview | bytes, head: bytes) -> tuple[str, str | None] | None:
    """(event type, text delta) of a Pi-shaped message_update line, else None (decode fully).

    ``head`` is ``line_head(line)``; the caller has checked it starts with ``UPDATE_PREFIX``.
    """
    # A line cut short (a killed writer) must not pass: it has to end the object.
    if line[-1] != 0x7D:  # "}"
        end = len(line) - 1
        while end > 0 and line[end] in b" \t\r":
            end -= 1
        if line[end] != 0x7D:
            return None
    if head.startswith(_TEXT_DELTA_HEAD):
        # The common case, one line per streamed chunk: read the delta directly.
        start = head.find(_DELTA_KEY, _TEXT_DELTA_LEN, _TEXT_DELTA_LEN + 32)
        if start < 0:
            return None
        start += _DELTA_KEY_LEN - 1  # at the opening quote
        # In valid JSON the first '","partial":' after it closes the delta string;
        # the string decoder checks that (escapes, UTF-8) and refuses otherwise.
        stop = head.find(_DELTA_END, start, HEAD_BYTES)
        if stop < 0:
            return None
        try:
            return "text_delta", _STRING_DECODER.decode(head[start : stop + 1])
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            return None
    if not head.startswith(_EVENT_HEAD):
        return None
    kind_end = head.find(b'"', _EVENT_HEAD_LEN, _EVENT_HEAD_LEN + 64)
    if kind_end < 0:
        return None
    kind = head[_EVENT_HEAD_LEN:kind_end]
    if not kind.isascii() or b"\\" in kind or kind == b"text_delta":
        return None
    # No other assistantMessageEvent carries anything a pane keeps.
    return kind.decode("ascii"), None
