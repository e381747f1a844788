"""The moves between a send's states (data, enforced by the send service and the lease
queue). The send's and a ledger recipient's states themselves are the contract's
(:mod:`mailshot.contracts.sends`), since the CRM shows them too.

``scheduled -> sending -> sent``; ``scheduled|sending -> paused -> sending`` (or back to
``scheduled`` when resumed before its time); any open state -> ``cancelled``; ``failed``
when the queue gives up on a unit (it killed too many workers). ``sent -> sending`` is the
one way back: resending the recipients left in doubt.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from mailshot.contracts.sends import RecipientState, SendState
from mailshot.queue import JobMoves

__all__ = [
    "COUNT_COLUMNS",
    "LEASABLE",
    "SEND_MOVES",
    "UNFINISHED",
    "RecipientState",
    "SendState",
    "UnitKind",
    "allowed",
]


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
