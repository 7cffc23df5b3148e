"""How the course runner talks to a chapter's kernel: per-cell time limits, and no silent waits.

A chapter is executed by papermill, which drives an ``nbclient`` kernel client. For each cell the client
sends an ``execute_request`` on the *shell* channel, then waits for two things: the ``execute_reply`` on
the shell channel and the kernel's ``status: idle`` on the *IOPub* channel (after the cell's outputs).
Stock nbclient waits for the reply with **one** limit for every cell (the runner used 1,800 s) and, once
the kernel is idle, keeps waiting for the reply until that limit, whatever else it knows.

:class:`GuardedClient` changes three things (the rest is nbclient's):

* **Per-cell limits** (:func:`cell_timeout`): seconds for a widget cell, minutes for a training cell,
  overridable per cell (``metadata.reidbook.timeout`` or a ``timeout-<seconds>`` tag) and scaled by
  ``$REIDBOOK_CELL_TIMEOUT_SCALE`` on a slow machine. A cell past its limit raises nbclient's
  ``CellTimeoutError``: the runner reports the chapter as failed (never "ok").
* **Idle without a reply**: the kernel publishes ``idle`` only after its handler has finished and queued
  the reply, so an idle kernel whose reply has not come within ``reply_grace`` seconds has lost it. The
  cell is then completed from what IOPub delivered (its outputs, and its error if it raised) and the
  event is recorded (``events``), instead of a wait until the cell limit.
* **A reply without idle** (a dropped IOPub message) is recorded too, after ``iopub_timeout`` seconds,
  rather than failing a cell that finished.

``events`` is a list of dicts ``{"cell": index, "kind": "lost-reply" | "lost-idle", "seconds": …}`` the
runner shows on the index page.
"""
from __future__ import annotations

import asyncio
import os
import re
from queue import Empty
from time import monotonic
from typing import Any

__all__ = ["cell_timeout", "cell_kind", "CELL_LIMITS", "register_engine", "ENGINE_NAME"]  # + GuardedClient (lazy)

ENGINE_NAME = "reidbook"

# A widget cell calls one of reidbook.widgets' sliders or ipywidgets' interact: it draws once, in seconds.
WIDGET_CALL = re.compile(r"(?<![\w.])(?:\w+_slider|interact(?:ive)?(?:_output)?)\s*\(")
# A training cell trains or fine-tunes, or loads something the zoo may have to train first (chapter 08's
# compare.collect gathers every contender, training those the zoo lacks: 300 s ran out on it in quick).
TRAINING_CALL = re.compile(r"\bzoo\.(?:get|cached)\(|\bfit(?:_preset)?\(|\btrain\w*\(|\bdistill\w*\(|"
                           r"\bprune\w*\(|\bprepare_\w+\(|\bstudent\w*\(|\bteachers?\w*\(|"
                           r"\bcollect\(|\bfine_?tune\w*\(")

# Seconds per cell kind and profile; None = no limit (full trains for hours on a researcher's GPU).
CELL_LIMITS: dict[str, dict[str, int | None]] = {
    "smoke": {"widget": 60, "training": 300, "other": 120},
    "quick": {"widget": 60, "training": 900, "other": 300},
    "full": {"widget": 120, "training": None, "other": 3600},
}


def cell_kind(source: str) -> str:
    """``"widget"``, ``"training"`` or ``"other"``, from the cell's code (see the module docstring)."""
    if WIDGET_CALL.search(source):
        return "widget"
    if TRAINING_CALL.search(source):
        return "training"
    return "other"


def _timeout_scale() -> float:
    raw = os.environ.get("REIDBOOK_CELL_TIMEOUT_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"REIDBOOK_CELL_TIMEOUT_SCALE must be a number (e.g. 2 on a slow machine), "
                         f"got {raw!r}") from None
    if not scale > 0:
        raise ValueError(f"REIDBOOK_CELL_TIMEOUT_SCALE must be > 0, got {raw!r}")
    return scale


def cell_timeout(source: str, metadata: dict | None = None, profile: str = "quick",
                 ceiling: int | None = None) -> int | None:
    """The time limit (seconds) of one cell, or ``None`` for none.

    Order: ``metadata["reidbook"]["timeout"]``, then a ``timeout-<seconds>`` tag, then
    :data:`CELL_LIMITS` ``[profile][cell_kind(source)]`` (``ceiling``, when given, replaces the limit of
    training and other cells; widget cells keep theirs). Every limit is multiplied by
    ``$REIDBOOK_CELL_TIMEOUT_SCALE`` (default 1).
    """
    metadata = metadata or {}
    explicit = (metadata.get("reidbook") or {}).get("timeout")
    if explicit is None:
        for tag in metadata.get("tags", []):
            m = re.fullmatch(r"timeout-(\d+)", str(tag))
            if m:
                explicit = int(m.group(1))
    if explicit is not None:
        limit = int(explicit) or None
    else:
        kind = cell_kind(source)
        limits = CELL_LIMITS.get(profile, CELL_LIMITS["quick"])
        limit = limits[kind] if (ceiling is None or kind == "widget") else ceiling
    if limit is None:
        return None
    return max(1, round(limit * _timeout_scale()))


def _reply_from_outputs(msg_id: str, cell) -> dict[str, Any]:
    """An ``execute_reply`` rebuilt from what IOPub delivered (used when the real one was lost)."""
    error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
    content: dict[str, Any] = {"status": "ok", "execution_count": cell.get("execution_count")}
    if error is not None:
        content.update(status="error", ename=error.get("ename", ""), evalue=error.get("evalue", ""),
                       traceback=list(error.get("traceback", [])))
    return {"msg_type": "execute_reply", "header": {"msg_type": "execute_reply"},
            "parent_header": {"msg_id": msg_id}, "metadata": {}, "content": content}


def _client_class():
    from nbclient.exceptions import CellTimeoutError
    from nbclient.util import ensure_async
    from papermill.clientwrap import PapermillNotebookClient
    from traitlets import Any as AnyTrait, Float

    class GuardedClient(PapermillNotebookClient):
        """papermill's client with per-cell limits and a bounded wait for a lost reply (module docstring)."""

        reply_grace = Float(30.0, help="seconds to wait for execute_reply once the kernel is idle").tag(config=True)
        poll_interval = Float(0.5, help="seconds between checks while waiting for a reply").tag(config=True)
        late_reply = Float(2.0, help="a reply read this many seconds after it was sent is noted").tag(config=True)
        events = AnyTrait(None, allow_none=True, help="a list the client appends lost-message events to")

        def _note(self, kind: str, cell, seconds: float) -> None:
            if self.events is not None:
                index = next((i for i, c in enumerate(self.nb.cells) if c is cell), None)
                self.events.append({"cell": index, "kind": kind, "seconds": round(seconds, 1)})

        async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
            deadline = None if timeout is None else monotonic() + timeout
            idle_since = None
            while True:
                now = monotonic()
                if deadline is not None and now >= deadline:
                    task_poll_kernel_alive.cancel()
                    await self._async_check_alive()  # a dead kernel is reported as such, not as a timeout
                    raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", timeout, cell)
                if task_poll_output_msg.done():
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= self.reply_grace:
                        task_poll_kernel_alive.cancel()
                        self.log.warning("kernel idle for %.0f s without an execute_reply; completing the cell "
                                         "from its IOPub messages", now - idle_since)
                        self._note("lost-reply", cell, now - idle_since)
                        return _reply_from_outputs(msg_id, cell)
                # Short polls: each new poll asks the socket for its state, so a reply whose wake-up the
                # event loop missed is read within one interval (one long poll would sleep on it).
                step = self.poll_interval if deadline is None else max(0.01, min(self.poll_interval, deadline - now))
                try:
                    msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=step))
                except Empty:
                    continue
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                self._check_delivery(msg, cell)
                if self.record_timing:
                    from nbclient.client import timestamp

                    cell["metadata"]["execution"]["shell.execute_reply"] = timestamp(msg)
                t_reply = monotonic()
                try:
                    await asyncio.wait_for(task_poll_output_msg, self.iopub_timeout)
                except (asyncio.TimeoutError, Empty):
                    self.log.warning("no IOPub idle %s s after the reply; continuing", self.iopub_timeout)
                    self._note("lost-idle", cell, monotonic() - t_reply)
                task_poll_kernel_alive.cancel()
                return msg

        async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
            from nbclient.exceptions import CellExecutionComplete

            while True:  # short polls, as for the reply
                try:
                    msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=self.poll_interval))
                except Empty:
                    continue
                if msg["parent_header"].get("msg_id") == parent_msg_id:
                    try:
                        self.process_message(msg, cell, cell_index)
                    except CellExecutionComplete:
                        return

        def _check_delivery(self, msg, cell) -> None:
            """Note a reply read ``late_reply`` seconds or more after the kernel sent it: its wake-up was
            missed and the short polls recovered it (with one long poll it waited for the cell's limit)."""
            import datetime as dt

            sent = (msg.get("header") or {}).get("date")
            if isinstance(sent, dt.datetime):
                if sent.tzinfo is None:
                    sent = sent.replace(tzinfo=dt.timezone.utc)
                delay = (dt.datetime.now(dt.timezone.utc) - sent).total_seconds()
                if delay >= self.late_reply:
                    self._note("late-reply", cell, delay)

        async def _async_handle_timeout(self, timeout, cell=None):
            if cell is None:  # a request outside any cell (kernel_info at the end): stock nbclient asserts
                raise TimeoutError(f"the kernel did not answer within {timeout} s")
            return await super()._async_handle_timeout(timeout, cell)

    return GuardedClient


def __getattr__(name: str):
    if name == "GuardedClient":  # built lazily: papermill/nbclient are imported only by the runner
        value = globals()["GuardedClient"] = _client_class()
        return value
    raise AttributeError(name)


def register_engine() -> str:
    """Register the papermill engine :data:`ENGINE_NAME`: papermill's nbclient engine, executing with
    :class:`GuardedClient`. Idempotent."""
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    client = __getattr__("GuardedClient") if "GuardedClient" not in globals() else globals()["GuardedClient"]

    class GuardedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs.pop("input_path", None)
            kwargs.pop("startup_timeout", None)
            kwargs["timeout"] = execution_timeout if execution_timeout else kwargs.get("timeout")
            return client(nb_man, startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
                          log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                          **kwargs).execute()

    papermill_engines.register(ENGINE_NAME, GuardedEngine)
    return ENGINE_NAME
