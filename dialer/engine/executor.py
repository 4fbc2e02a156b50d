"""Carrying out the engine's commands against the store and a telephony backend.

Store writes are batched into one transaction and committed before any call is placed,
so an attempt is always on disk before its call leaves (a crash in between leaves an open
attempt that recovery closes as `failed`, never a dial without a record).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime

from dialer.engine.commands import (
    AgentReleased,
    AgentWrapping,
    ClaimLeads,
    CloseAttempt,
    Command,
    ConnectAgent,
    DeskCommand,
    HangUp,
    LeadsClaimed,
    LineStateChanged,
    NoLeadForAgent,
    PlaceCall,
    PlayAbandonMessage,
    PreviewLead,
    RecordAttempts,
    ReleaseLeads,
    StartScript,
    SuppressNumber,
)
from dialer.engine.core import Engine
from dialer.engine.ledger import Claim, Ledger, Write
from lines.telephony import TelephonyBackend
from rules.phone import mask

logger = logging.getLogger(__name__)


class Executor:
    """Runs command lists in order; the only place the engine's decisions touch the world."""

    def __init__(
        self,
        ledger: Ledger,
        backend: TelephonyBackend,
        engine: Engine,
        clock: Callable[[], datetime],
        on_wrap_up: Callable[[str], None] | None = None,
        on_connect: Callable[[str], None] | None = None,
        on_desk: Callable[[DeskCommand], None] | None = None,
    ) -> None:
        """`on_wrap_up`, `on_connect` and `on_desk` tell simulated agents what the engine
        decided for them: a call ended, a call put through, a preview lead (or none)."""
        self._ledger = ledger
        self._backend = backend
        self._engine = engine
        self._clock = clock
        self._on_wrap_up = on_wrap_up
        self._on_connect = on_connect
        self._on_desk = on_desk
        self._writes: list[Write] = []

    def execute(self, commands: list[Command]) -> None:
        queue = deque(commands)
        while queue:
            command = queue.popleft()
            if isinstance(command, LineStateChanged):
                change = command.change
                subject = command.subject if command.kind == "trunk" else mask(command.subject)
                logger.info("%s %s: %s -> %s (%s)", command.kind, subject,
                            change.before.value, change.after.value, change.reason)
                self._writes.append(command)
            elif isinstance(command, RecordAttempts | ReleaseLeads | CloseAttempt
                            | SuppressNumber):
                self._writes.append(command)
            elif isinstance(command, ClaimLeads):
                queue.extendleft(reversed(self._claim(command)))
            else:
                self.flush()
                self._act(command)
        self.flush()

    def _claim(self, command: ClaimLeads) -> list[Command]:
        settings = self._engine.settings
        now = self._clock()
        writes, self._writes = self._writes, []
        claimed = self._ledger.commit(writes, Claim(
            campaign_id=settings.campaign_id, campaign=settings.campaign, limit=command.count,
            now=now, max_attempts=settings.max_attempts))
        return self._engine.handle(LeadsClaimed(at=now, requested=command.count,
                                                leads=tuple(claimed),
                                                for_agent=command.for_agent))

    def _act(self, command: Command) -> None:
        backend = self._backend
        if isinstance(command, PlaceCall):
            backend.place(command.request)
        elif isinstance(command, ConnectAgent):
            if self._on_connect is not None:
                self._on_connect(command.agent_id)
            backend.connect_agent(command.call_id, command.agent_id)
        elif isinstance(command, StartScript):
            backend.start_script(command.call_id, command.script, command.variables)
        elif isinstance(command, PlayAbandonMessage):
            backend.play_abandon_message(command.call_id)
        elif isinstance(command, HangUp):
            backend.hang_up(command.call_id)
        elif isinstance(command, AgentWrapping) and self._on_wrap_up is not None:
            self._on_wrap_up(command.agent_id)
        elif isinstance(command, PreviewLead | NoLeadForAgent | AgentReleased) and \
                self._on_desk is not None:
            self._on_desk(command)

    def flush(self) -> None:
        """Commit the batched writes (one transaction)."""
        if self._writes:
            writes, self._writes = self._writes, []
            self._ledger.commit(writes)
