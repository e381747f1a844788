"""The bridge's unit handlers, one per kind of the CRM's :class:`UnitKind`: what a worker
does with a leased unit (:mod:`.prepare`, :mod:`.chunk`, :mod:`.finalize`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from mailshot.bridge.errors import PermanentError
from mailshot.bridge.units.base import Check, Done, Handler
from mailshot.bridge.units.chunk import write_chunk
from mailshot.bridge.units.finalize import finalize
from mailshot.bridge.units.prepare import prepare
from mailshot.contracts.states import UnitKind

__all__ = ["HANDLERS", "Check", "Done", "Handler", "handler_for", "on_side_lane"]

HANDLERS: Final[Mapping[UnitKind, Handler]] = {
    # A prepare mostly waits while the CRM snapshots the audience: it must not hold a
    # lease loop that could be serving a small sync meanwhile.
    UnitKind.PREPARE: Handler(prepare, on_side_lane=True),
    UnitKind.CHUNK: Handler(write_chunk),
    UnitKind.FINALIZE: Handler(finalize),
}


def handler_for(kind: str) -> Handler:
    """The handler of ``kind``; a kind the bridge does not know fails its job."""
    try:
        return HANDLERS[UnitKind(kind)]
    except ValueError:
        raise PermanentError(
            "BRIDGE_UNKNOWN_UNIT", f"The bridge does not know units of kind {kind}."
        ) from None


def on_side_lane(kind: str) -> bool:
    """Whether units of ``kind`` run on the side lane (an unknown kind does not)."""
    try:
        return HANDLERS[UnitKind(kind)].on_side_lane
    except ValueError:
        return False
