"""Quota settlement: what a job's end does to the credits reserved for it.

Credits are reserved when a job is admitted, committed when its video is delivered and released when it ends
any other way — each exactly once. The rule is here, in the job layer; a store applies it in the same
transaction as the state change that ends the job, and touches only a reservation still `reserved`, so a
replay or a competing worker can never settle twice.
"""

from __future__ import annotations

from typing import assert_never

from bot.domain.models import JobState
from bot.jobs.ports import ReservationState


def settlement_for(state: JobState) -> ReservationState | None:
    """Where a job's reservation goes when the job enters `state`; None while the job is not over."""
    match state:
        case JobState.DELIVERED:
            return ReservationState.COMMITTED
        case JobState.FAILED | JobState.CANCELLED | JobState.EXPIRED | JobState.TIMED_OUT | JobState.UNKNOWN:
            # UNKNOWN too: the member gets nothing for it, so it must not count against them.
            return ReservationState.RELEASED
        case JobState.PENDING | JobState.QUEUED | JobState.RUNNING | JobState.SUCCEEDED | JobState.DELIVERING:
            return None
        case _:
            assert_never(state)
