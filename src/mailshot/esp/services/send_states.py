"""A send's states and the moves between them (data, enforced by the send service and the
lease queue), and a ledger recipient's states.

``scheduled -> sending -> sent``; ``scheduled|sending -> paused -> sending`` (or back to
``scheduled`` when resumed before its time); any open state -> ``cancelled``; ``failed``
when the queue gives up on a unit (it killed too many workers). ``sent -> sending`` is the
one way back: resending the recipients left in doubt.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from mailshot.queue import JobMoves


class SendState(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RecipientState(StrEnum):
    PENDING = "pending"
    #: Marked before its data goes out; a worker that dies leaves it to become in_doubt.
    SENDING = "sending"
    SENT = "sent"
    #: A 4xx reply: retried at ``next_attempt_at``, failed after the give-up time.
    DEFERRED = "deferred"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    #: The data went out and no reply came: never resent unless an operator asks.
    IN_DOUBT = "in_doubt"
    #: Never sent: the send was cancelled first.
    CANCELLED = "cancelled"


class UnitKind(StrEnum):
    #: One range of the ledger's ids.
    BATCH = "batch"


_END: Final = frozenset({SendState.CANCELLED, SendState.FAILED})
SEND_MOVES: Final = JobMoves[SendState](
    table={
        SendState.SCHEDULED: frozenset({SendState.SENDING, SendState.PAUSED}) | _END,
        SendState.SENDING: frozenset({SendState.SENT, SendState.PAUSED}) | _END,
        SendState.PAUSED: frozenset({SendState.SENDING, SendState.SCHEDULED}) | _END,
        SendState.SENT: frozenset({SendState.SENDING}),
        SendState.CANCELLED: frozenset(),
        SendState.FAILED: frozenset(),
    },
    failed=SendState.FAILED,
)
#: States a worker may lease a unit of a send in.
LEASABLE: Final = (SendState.SCHEDULED, SendState.SENDING)
#: Recipient states that keep a send from being sent.
UNFINISHED: Final = (RecipientState.PENDING, RecipientState.SENDING, RecipientState.DEFERRED)
#: The count column of each recipient state on ``sends``.
COUNT_COLUMNS: Final = {state: f"{state.value}_count" for state in RecipientState}


def allowed(current: str, target: SendState) -> bool:
    return SEND_MOVES.allowed(SendState(current), target)
