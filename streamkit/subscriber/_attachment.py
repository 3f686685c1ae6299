"""`Attachment`: the consumer a subscription reads on one stream, fixed when it starts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attachment:
    """Which consumer a subscription reads on one stream, and how long its leases last.

    Found (``consumer=``) or created (ephemeral) when the subscription starts,
    then handed to its workers, which only read it.
    """

    consumer: str
    ack_wait: float
    """The consumer's ack deadline, in seconds."""
    lease_deadline: float
    """How long a lease lasts without renewal, in seconds: the ack deadline, or less when
    something else must be renewed as often (an ephemeral consumer's inactivity limit)."""
