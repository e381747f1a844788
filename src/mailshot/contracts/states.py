"""The sync's states and unit kinds, as the CRM's API names them to people and workers."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    PREPARING = "preparing"
    RUNNING = "running"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


#: A job in one of these states is active (a mailshot has at most one).
ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.PREPARING, JobState.RUNNING, JobState.FINALIZING)


class UnitKind(StrEnum):
    #: Snapshot the audience (once per job) and cut it into chunks.
    PREPARE = "prepare"
    #: Write one range of the snapshot to the ESP.
    CHUNK = "chunk"
    #: Check the ESP's counts; waits until every chunk is written.
    FINALIZE = "finalize"


class SyncState(StrEnum):
    """A mailshot's ``sync_state``: the user's summary of its latest job."""

    NOT_SYNCHRONISED = "not_synchronised"
    QUEUED = "queued"
    SYNCHRONISING = "synchronising"
    SYNCHRONISED = "synchronised"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Where a mailshot's sync no longer moves by itself.
FINAL_SYNC_STATES = frozenset({SyncState.SYNCHRONISED, SyncState.FAILED, SyncState.CANCELLED})
