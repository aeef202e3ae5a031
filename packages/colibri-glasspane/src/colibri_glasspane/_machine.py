"""One pane's state machine: decoded events in, a :class:`Pane` view out.

The stream state is derived, not stored, from a few facts the events set:

- ``run_active``: an ``agent_start`` (or, for zot, a turn or a message) without
  its end yet;
- ``awaiting_retry``: Pi announced a retry (``auto_retry_start``, or a
  ``compaction_end`` with ``willRetry``) and the new ``agent_start`` has not come;
- ``compacting``: a ``compaction_start`` without its ``compaction_end``;
- ``outcome``: how the last finished run ended, judged from the last assistant
  message of its ``agent_end`` (Pi exits 0 after a provider error, so the exit
  code cannot tell), or from the final ``auto_retry_end``;
- ``dialog`` / ``queued``: what the agent waits on (rpc dialog, queued messages).

Terminal states (done, error) are left only by events that begin new work:
``agent_start``, ``auto_retry_start`` and ``compaction_start`` (zot: a new turn
or message). Any other late event (a stray ``message_update``, a ``turn_end``,
a ``queue_update``) leaves them as they are.

The process state from the caller is merged in last: a process that ended
without a final successful event is an error, whatever the stream said.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from colibri_glasspane import _events as ev
from colibri_glasspane._lines import LineReader
from colibri_glasspane._mask import Masker, TextTail
from colibri_glasspane._model import (
    AgentState,
    Flag,
    GlasspaneConfig,
    LineCounters,
    Pane,
    ProcessKind,
    ProcessState,
    Runtime,
    StreamMode,
    ToolCall,
    Usage,
)

_DIALOG_METHODS = frozenset({"select", "confirm", "input", "editor"})
_SUCCESS_STOPS = frozenset({"stop", "length"})
_KNOWN_STOPS = _SUCCESS_STOPS | {"error", "aborted", "toolUse"}
_ERROR_TEXT_LIMIT = 1000
_FIELD_LIMIT = 500
_COUNTER_MAX = 2**63 - 1
# What a line that cannot be read raises: bad JSON, bad UTF-8 in a kept string, or
# nesting deeper than msgspec's recursion limit.
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)

_UPDATE_PREFIX = ev.UPDATE_PREFIX
_PI_DECODER = ev.pi_decoder()
_ZOT_DECODER = ev.zot_decoder()


class _Outcome:
    __slots__ = ("ok", "reason", "stop_reason")

    def __init__(self, ok: bool, stop_reason: str | None, reason: str | None) -> None:
        self.ok = ok
        self.stop_reason = stop_reason
        self.reason = reason


class _Dialog:
    __slots__ = ("deadline", "method", "title")

    def __init__(self, method: str, title: str, deadline: float | None) -> None:
        self.method = method
        self.title = title
        self.deadline = deadline


def _saturating_add(total: int, amount: float) -> int:
    """``total + amount`` for usage counters. An amount that is negative, not finite or
    beyond 2**63 - 1 is nonsense and counts as 0; the sum stops at 2**63 - 1, so it
    stays an integer every JSON reader (and msgspec) can read back."""
    if not (0 < amount < _COUNTER_MAX):  # also false for NaN
        return total
    return min(total + round(amount), _COUNTER_MAX)


def _short(text: str, limit: int = _ERROR_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_text(value: Any, masker: Masker) -> str | None:
    """A JSON value as text; secrets are masked before the JSON escaping, which would
    otherwise turn a secret holding ``"``, ``\\`` or a control character into text
    the masker no longer recognises."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(masker.mask_value(value), ensure_ascii=False, sort_keys=True)
    except RecursionError:
        return "(value nested too deeply to show)"
    except (TypeError, ValueError):
        return str(value)


class PaneMachine:
    """Mutable per-pane state. Not thread-safe; the :class:`Glasspane` owns it."""

    def __init__(
        self,
        *,
        pane_id: str,
        agent: str,
        tenant: str | None,
        runtime: Runtime,
        mode: StreamMode,
        session_id: str | None,
        cwd: str | None,
        opened_at: float,
        config: GlasspaneConfig,
        masker: Masker,
    ) -> None:
        self.pane_id = pane_id
        self.agent = agent
        self.tenant = tenant
        self.runtime = runtime
        self.mode = StreamMode.RPC if runtime is Runtime.ZOT and mode is StreamMode.AUTO else mode
        self.session_id = session_id
        self.cwd = cwd
        self.opened_at = opened_at
        self.config = config
        self.masker = masker
        self.process = ProcessState.starting()

        self.reader = LineReader(config.max_line_bytes)
        self.events = 0
        self.unknown = 0
        self.malformed = 0

        self.mode_locked = False
        self.run_active = False
        self.awaiting_retry = False
        self.compacting = False
        self.outcome: _Outcome | None = None
        self.dialog: _Dialog | None = None
        self.queued = 0
        self.assistant_ends_in_run = 0
        self.run_error: str | None = None  # zot: an error event inside the current run

        self.turns = 0
        self.retries = 0
        self.tool_calls = 0
        self.current_tool: ToolCall | None = None
        self.last_tool: ToolCall | None = None
        self.last_event_at: float | None = None
        self.last_error: str | None = None
        self.tail = TextTail(config.text_tail_chars)
        self.text_fresh = False  # a new assistant message started; its first text replaces the tail

        self.tokens_in = 0
        self.tokens_out = 0
        self.cache_read = 0
        self.cache_write = 0
        self.cost_nanousd = 0

        self._now = opened_at
        decoder = _ZOT_DECODER if runtime is Runtime.ZOT else _PI_DECODER
        self._decode = decoder.decode
        self._tags = ev.ZOT_TAGS if runtime is Runtime.ZOT else ev.PI_TAGS
        self._fast_updates = runtime is Runtime.PI
        self._handlers: dict[type, Any] = {
            ev.Session: self._on_session,
            ev.AgentStart: self._on_agent_start,
            ev.AgentEnd: self._on_agent_end,
            ev.TurnStart: self._on_turn_start,
            ev.TurnEnd: self._on_progress,
            ev.MessageStart: self._on_message_start,
            ev.MessageUpdate: self._on_message_update,
            ev.MessageEnd: self._on_message_end,
            ev.ToolExecutionStart: self._on_tool_start,
            ev.ToolExecutionUpdate: self._on_tool_update,
            ev.ToolExecutionEnd: self._on_tool_end,
            ev.QueueUpdate: self._on_queue_update,
            ev.CompactionStart: self._on_compaction_start,
            ev.CompactionEnd: self._on_compaction_end,
            ev.AutoRetryStart: self._on_retry_start,
            ev.AutoRetryEnd: self._on_retry_end,
            ev.SessionInfoChanged: self._ignore,
            ev.ThinkingLevelChanged: self._ignore,
            ev.Response: self._on_response,
            ev.ExtensionUiRequest: self._on_ui_request,
            ev.ExtensionError: self._on_extension_error,
            ev.ZotResponse: self._on_zot_response,
            ev.ZotUserMessage: self._on_zot_activity,
            ev.ZotAssistantMessage: self._on_zot_assistant,
            ev.ZotTurnStart: self._on_zot_turn_start,
            ev.ZotTurnEnd: self._on_zot_activity,
            ev.ZotError: self._on_zot_error,
            ev.ZotDone: self._on_zot_done,
            ev.ZotUsage: self._on_zot_usage,
        }

    # --- ingest -------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview, now: float) -> None:
        self._now = now
        self.reader.feed(data, self._line)

    def end_of_stream(self, now: float) -> None:
        """The stream closed: an unterminated last line is judged like any other."""
        self._now = now
        line = self.reader.finish()
        if line is not None:
            self._line(line)

    def _line(self, line: memoryview | bytes) -> None:
        if not line:
            return  # a blank line separates nothing; not an event, not an error
        if self._fast_updates:
            head = line if isinstance(line, bytes) else ev.line_head(line)
            update = ev.fast_message_update(line, head) if head.startswith(_UPDATE_PREFIX) else None
            if update is not None:
                self.events += 1
                self.last_event_at = self._now
                self._on_update(update[0], update[1])
                return
        try:
            event = self._decode(line)
        except msgspec.ValidationError:
            self._not_an_event(line)
            return
        except _UNREADABLE:
            self.malformed += 1
            return
        self.events += 1
        self.last_event_at = self._now
        self._handlers[type(event)](event)

    def _not_an_event(self, line: memoryview | bytes) -> None:
        try:
            envelope = ev.ENVELOPE_DECODER.decode(line)
        except (msgspec.ValidationError, *_UNREADABLE):
            self.malformed += 1
            return
        if envelope.type in self._tags:
            self.malformed += 1  # a known event whose fields have the wrong types
        else:
            self.unknown += 1
            # Still a sign of life: newer Pi versions add event types.
            self.last_event_at = self._now

    # --- helpers --------------------------------------------------------------

    @property
    def terminal(self) -> bool:
        """Done or error by the stream alone (rpc success is idle, not terminal)."""
        if self.run_active or self.awaiting_retry or self.compacting or self.outcome is None:
            return False
        return not self.outcome.ok or self.mode is not StreamMode.RPC

    def _activity(self) -> None:
        """Any sign the agent is making progress: dialogs it waited on are answered."""
        self.dialog = None
        if not self.run_active and not self.terminal:
            # Attached mid-run (no agent_start seen) or rpc idle: it is working now.
            self.run_active = True
            self.mode_locked = True

    def _begin_run(self) -> None:
        self.mode_locked = True
        self.run_active = True
        self.awaiting_retry = False
        self.dialog = None
        self.assistant_ends_in_run = 0
        self.run_error = None
        self.current_tool = None

    def _error_text(self, text: str) -> str:
        return _short(self.masker.mask(text))

    def _field(self, text: str) -> str:
        """A name or id from the stream: masked, and bounded like everything a pane keeps."""
        return _short(self.masker.mask(text), _FIELD_LIMIT)

    def _add_usage(self, usage: ev.Usage | None) -> None:
        if usage is None:
            return
        cost = usage.cost.total if usage.cost is not None else 0.0
        self._add_counts(usage.input, usage.output, usage.cacheRead, usage.cacheWrite, cost)

    def _add_counts(
        self, tokens_in: float, tokens_out: float, cache_read: float, cache_write: float, usd: float
    ) -> None:
        self.tokens_in = _saturating_add(self.tokens_in, tokens_in)
        self.tokens_out = _saturating_add(self.tokens_out, tokens_out)
        self.cache_read = _saturating_add(self.cache_read, cache_read)
        self.cache_write = _saturating_add(self.cache_write, cache_write)
        self.cost_nanousd = _saturating_add(self.cost_nanousd, usd * 1e9)

    @staticmethod
    def _message_text(message: ev.Message) -> str | None:
        if isinstance(message.content, str):
            return message.content
        texts = [b.text for b in message.content if b.type == "text" and b.text is not None]
        return "".join(texts) if texts else None

    def _finish_run(self, outcome: _Outcome) -> None:
        self.mode_locked = True
        self.run_active = False
        self.current_tool = None
        self.outcome = outcome
        if not outcome.ok and outcome.reason is not None:
            self.last_error = outcome.reason

    def _detect_mode(self, mode: StreamMode) -> None:
        # Only before the first run: both modes announce themselves before it (json:
        # the session header; rpc: the prompt's response), and a mode that changed
        # later would reinterpret a finished run (done would turn idle).
        if self.mode is StreamMode.AUTO and not self.mode_locked:
            self.mode = mode

    # --- Pi handlers ----------------------------------------------------------

    def _ignore(self, event: Any) -> None:
        pass

    def _on_session(self, event: ev.Session) -> None:
        self._detect_mode(StreamMode.JSON)
        if event.id:
            self.session_id = self._field(event.id)
        if event.cwd:
            self.cwd = self._field(event.cwd)

    def _on_agent_start(self, event: ev.AgentStart) -> None:
        self._begin_run()

    def _on_turn_start(self, event: ev.TurnStart) -> None:
        self._activity()
        if not self.terminal:
            self.turns += 1

    def _on_progress(self, event: Any) -> None:
        self._activity()

    def _on_message_start(self, event: ev.MessageStart) -> None:
        self._activity()
        if event.message is not None and event.message.role == "assistant":
            self.text_fresh = True

    def _on_message_update(self, event: ev.MessageUpdate) -> None:
        update = event.assistantMessageEvent
        if update is None:
            self._activity()
        else:
            self._on_update(update.type, update.delta)

    def _on_update(self, kind: str, delta: str | None) -> None:
        self.dialog = None
        if not self.run_active:
            self._activity()
        if delta and kind == "text_delta":
            if self.text_fresh:
                self.tail.set("", self.masker)
                self.text_fresh = False
            self.tail.append(delta, self.masker)

    def _on_message_end(self, event: ev.MessageEnd) -> None:
        self._activity()
        message = event.message
        if message is None or message.role != "assistant":
            return
        if self.run_active:
            self.assistant_ends_in_run += 1
        self._add_usage(message.usage)
        text = self._message_text(message)
        if text:
            self.tail.set(text, self.masker)
            self.text_fresh = False

    def _on_agent_end(self, event: ev.AgentEnd) -> None:
        if self.terminal:
            return  # a duplicate or stray end changes nothing
        assistants = [m for m in event.messages if m.role == "assistant"]
        # Usage of assistant messages that never had a message_end (an exception
        # escaping Pi's loop emits only agent_end).
        unseen = len(assistants) - self.assistant_ends_in_run
        if unseen > 0:
            for message in assistants[-unseen:]:
                self._add_usage(message.usage)
        self.assistant_ends_in_run = 0
        self.dialog = None
        if not assistants:
            self._finish_run(_Outcome(False, None, "run ended without an assistant message"))
            return
        last = assistants[-1]
        if unseen > 0:
            text = self._message_text(last)
            if text:
                self.tail.set(text, self.masker)
        stop = last.stopReason
        detail = last.errorMessage
        if stop in _SUCCESS_STOPS:
            self._finish_run(_Outcome(True, stop, None))
        elif stop == "error":
            reason = f"provider error: {detail or 'no message'}"
            self._finish_run(_Outcome(False, stop, self._error_text(reason)))
        elif stop == "aborted":
            reason = f"aborted: {detail or 'no message'}"
            self._finish_run(_Outcome(False, stop, self._error_text(reason)))
        elif stop == "toolUse":
            reason = "run ended on a tool call without a final answer"
            self._finish_run(_Outcome(False, stop, reason))
        else:
            # From the stream: masked and bounded like every other string a pane keeps.
            shown = self._field(stop) if stop is not None else None
            reason = f"run ended with unknown stop reason {shown!r}"
            self._finish_run(_Outcome(False, shown, self._error_text(reason)))

    def _on_tool_start(self, event: ev.ToolExecutionStart) -> None:
        self._activity()
        if self.terminal:
            return
        self.tool_calls += 1
        self.current_tool = ToolCall(
            name=self._field(event.toolName or "?"),
            call_id=self._field(event.toolCallId) if event.toolCallId is not None else None,
            started_at=self._now,
            args=self._render_args(event.args),
        )
        self.last_tool = self.current_tool

    def _render_args(self, args: Any) -> str:
        if args is None:
            return ""
        limit = self.config.tool_args_chars
        try:
            text = msgspec.json.encode(self.masker.mask_value(args)).decode()
        except RecursionError:
            return "(arguments nested too deeply to show)"
        except (TypeError, ValueError, msgspec.EncodeError):
            text = str(args)
        text = self.masker.mask(text)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def _on_tool_update(self, event: ev.ToolExecutionUpdate) -> None:
        self._activity()
        if self.current_tool is None and not self.terminal:
            # Attached after the start: show the tool, start time unknown.
            self.current_tool = ToolCall(
                name=self._field(event.toolName or "?"),
                call_id=self._field(event.toolCallId) if event.toolCallId is not None else None,
            )

    def _on_tool_end(self, event: ev.ToolExecutionEnd) -> None:
        self._activity()
        self.current_tool = None

    def _on_queue_update(self, event: ev.QueueUpdate) -> None:
        self.queued = len(event.steering) + len(event.followUp)

    def _on_compaction_start(self, event: ev.CompactionStart) -> None:
        self.compacting = True

    def _on_compaction_end(self, event: ev.CompactionEnd) -> None:
        was_compacting = self.compacting
        self.compacting = False
        if event.errorMessage:
            self.last_error = self._error_text(f"compaction failed: {event.errorMessage}")
        if event.willRetry and not event.aborted and was_compacting:
            # Only a compaction we saw start: a stray end must not revive a finished pane.
            self.awaiting_retry = True

    def _on_retry_start(self, event: ev.AutoRetryStart) -> None:
        self.retries += 1
        self.awaiting_retry = True
        self.current_tool = None
        if event.errorMessage:
            self.last_error = self._error_text(f"provider error: {event.errorMessage}")

    def _on_retry_end(self, event: ev.AutoRetryEnd) -> None:
        was_waiting = self.awaiting_retry
        self.awaiting_retry = False
        if event.success:
            return
        final = event.finalError or "retries exhausted"
        reason = self._error_text(f"provider error: {final} (after {self.retries} retries)")
        self.last_error = reason
        if self.terminal:
            return  # done or error already: a late verdict does not rewrite it
        if not self.run_active or was_waiting:
            self._finish_run(_Outcome(False, "error", reason))

    def _on_response(self, event: ev.Response) -> None:
        self._detect_mode(StreamMode.RPC)
        if not event.success:
            error = _as_text(event.error, self.masker) or "no message"
            self.last_error = self._error_text(f"command {event.command or '?'} failed: {error}")
            return
        if event.command == "get_state" and event.data and not self.session_id:
            try:
                data = ev.STATE_DATA_DECODER.decode(event.data)
            except (msgspec.ValidationError, *_UNREADABLE):
                return
            if data.sessionId:
                self.session_id = self._field(data.sessionId)

    def _on_ui_request(self, event: ev.ExtensionUiRequest) -> None:
        self._detect_mode(StreamMode.RPC)
        if event.method not in _DIALOG_METHODS:
            return  # notify, setStatus, ...: fire and forget
        deadline = None
        if event.timeout is not None and event.timeout > 0:
            deadline = self._now + event.timeout / 1000.0
        title = _short(self.masker.mask(_as_text(event.title, self.masker) or ""), 200)
        self.dialog = _Dialog(event.method, title, deadline)

    def _on_extension_error(self, event: ev.ExtensionError) -> None:
        error = _as_text(event.error, self.masker) or "no message"
        where = _as_text(event.extensionPath, self.masker) or "?"
        self.last_error = self._error_text(f"extension error ({where}): {error}")

    # --- zot handlers ---------------------------------------------------------

    def _zot_start_if_idle(self) -> None:
        self.dialog = None
        if not self.run_active:
            self._begin_run()

    def _on_zot_response(self, event: ev.ZotResponse) -> None:
        if not event.success:
            error = _as_text(event.error, self.masker) or "no message"
            self.last_error = self._error_text(f"command failed: {error}")

    def _on_zot_activity(self, event: Any) -> None:
        self._zot_start_if_idle()

    def _on_zot_turn_start(self, event: ev.ZotTurnStart) -> None:
        self._zot_start_if_idle()
        self.turns += 1

    def _on_zot_assistant(self, event: ev.ZotAssistantMessage) -> None:
        self._zot_start_if_idle()
        for candidate in (event.text, event.content, event.message):
            if isinstance(candidate, str) and candidate:
                self.tail.set(candidate, self.masker)
                break

    def _on_zot_error(self, event: ev.ZotError) -> None:
        text = (
            _as_text(event.message, self.masker)
            or _as_text(event.error, self.masker)
            or "no message"
        )
        reason = self._error_text(f"agent error: {text}")
        self.last_error = reason
        if self.terminal:
            return
        self.run_error = reason
        self._finish_run(_Outcome(False, "error", reason))

    def _on_zot_done(self, event: ev.ZotDone) -> None:
        if not self.run_active:
            return
        if self.run_error is not None:
            self._finish_run(_Outcome(False, "error", self.run_error))
        else:
            self._finish_run(_Outcome(True, "stop", None))

    def _on_zot_usage(self, event: ev.ZotUsage) -> None:
        self._add_counts(
            event.input, event.output, event.cache_read, event.cache_write, event.cost_usd
        )

    # --- secrets --------------------------------------------------------------

    def remask(self, masker: Masker) -> None:
        """Use a new set of secrets, and apply it to every string already kept."""
        self.masker = masker
        self.tail.remask(masker)
        self.last_error = masker.mask_optional(self.last_error)
        self.session_id = masker.mask_optional(self.session_id)
        self.cwd = masker.mask_optional(self.cwd)
        if self.outcome is not None:
            self.outcome.reason = masker.mask_optional(self.outcome.reason)
            if self.outcome.stop_reason not in _KNOWN_STOPS:
                self.outcome.stop_reason = masker.mask_optional(self.outcome.stop_reason)
        if self.run_error is not None:
            self.run_error = masker.mask(self.run_error)
        if self.dialog is not None:
            self.dialog.title = masker.mask(self.dialog.title)
        self.current_tool = self._remask_tool(self.current_tool, masker)
        self.last_tool = self._remask_tool(self.last_tool, masker)

    @staticmethod
    def _remask_tool(tool: ToolCall | None, masker: Masker) -> ToolCall | None:
        if tool is None:
            return None
        return ToolCall(
            name=masker.mask(tool.name),
            call_id=masker.mask_optional(tool.call_id),
            started_at=tool.started_at,
            args=masker.mask(tool.args),
        )

    # --- view -----------------------------------------------------------------

    def stream_state(self, now: float) -> tuple[AgentState, str | None]:
        """The state the events alone give, and why (for error and blocked)."""
        dialog = self.dialog
        if dialog is not None and dialog.deadline is not None and now >= dialog.deadline:
            dialog = None  # Pi answers a timed-out dialog with its default itself
        outcome = self.outcome
        if self.terminal:
            assert outcome is not None
            if not outcome.ok:
                return AgentState.ERROR, outcome.reason
            return AgentState.DONE, None
        if dialog is not None:
            return AgentState.BLOCKED, f"waiting for an answer to {dialog.method}: {dialog.title}"
        if self.queued and (self.run_active or self.awaiting_retry or self.compacting):
            return AgentState.BLOCKED, f"{self.queued} queued steering/follow-up message(s)"
        if self.run_active or self.awaiting_retry or self.compacting:
            return AgentState.WORKING, None
        return AgentState.IDLE, None

    def view(self, now: float) -> Pane:
        state, reason = self.stream_state(now)
        process = self.process
        flags: set[Flag] = set()
        outcome = self.outcome
        unfinished = self.run_active or self.awaiting_retry
        if process.death_signal is not None:
            flags.add(Flag.KILLED)
        if process.ended:
            if not unfinished and outcome is not None:
                if outcome.ok:
                    clean = process.kind is ProcessKind.EXITED and process.code == 0
                    if (
                        clean
                        or process.death_signal is not None
                        or process.kind is ProcessKind.LOST
                    ):
                        state, reason = AgentState.DONE, None
                    else:
                        state, reason = AgentState.ERROR, process.describe()
                else:
                    state, reason = AgentState.ERROR, outcome.reason
            else:
                described = process.describe()
                if process.kind is ProcessKind.EXITED and process.death_signal is None:
                    described += " without a final event" if process.code == 0 else ""
                state, reason = AgentState.ERROR, described
        else:
            if self.awaiting_retry:
                flags.add(Flag.RETRYING)
            if self.compacting:
                flags.add(Flag.COMPACTING)
        if outcome is not None and not unfinished:
            if outcome.stop_reason == "length" and outcome.ok:
                flags.add(Flag.TRUNCATED)
            if outcome.stop_reason == "aborted":
                flags.add(Flag.ABORTED)
        # A live one-shot (json mode) agent that has not finished a run is meant to
        # be working even before its first agent_start: silence there is a stall too.
        silent_start = (
            state is AgentState.IDLE
            and self.mode is not StreamMode.RPC
            and outcome is None
            and not process.ended
        )
        if state is AgentState.WORKING or silent_start:
            since = self.last_event_at if self.last_event_at is not None else self.opened_at
            if now - since >= self.config.stall_after:
                flags.add(Flag.STALLED)
        if state in (AgentState.ERROR, AgentState.BLOCKED) or Flag.STALLED in flags:
            flags.add(Flag.NEEDS_ATTENTION)
        current_tool = self.current_tool if not process.ended else None
        return Pane(
            id=self.pane_id,
            agent=self.agent,
            tenant=self.tenant,
            runtime=self.runtime,
            mode=self.mode,
            session_id=self.session_id,
            cwd=self.cwd,
            state=state,
            flags=tuple(sorted(flags, key=lambda f: f.value)),
            reason=reason,
            process=process,
            current_tool=current_tool,
            last_tool=self.last_tool,
            tool_calls=self.tool_calls,
            turns=self.turns,
            retries=self.retries,
            stop_reason=outcome.stop_reason if outcome is not None else None,
            opened_at=self.opened_at,
            last_event_at=self.last_event_at,
            last_error=self.last_error,
            text_tail=self.tail.export(self.masker),
            usage=Usage(
                input=self.tokens_in,
                output=self.tokens_out,
                cache_read=self.cache_read,
                cache_write=self.cache_write,
                cost_nanousd=self.cost_nanousd,
            ),
            lines=LineCounters(
                bytes=self.reader.consumed,
                events=self.events,
                unknown=self.unknown,
                malformed=self.malformed,
                oversize=self.reader.oversize,
            ),
        )
