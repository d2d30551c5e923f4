"""The ordered ack window: PUBACKs leave in arrival order, each only after Kafka has the record.

Kafka confirms per partition batch, so confirmations arrive out of order across partitions;
MQTT wants acks in the order the PUBLISHes came (MQTT 3.1.1 4.6.0-2, MQTT 5 4.6.0-2). The
window holds every message read and not yet acked, oldest first, each with the future of the
Kafka write that carries it (one future is shared by all records of a batch). `pop_ready`
releases the longest prefix whose writes are all confirmed.

A failed write stops the prefix there: nothing after it is acked, and the caller releases the
whole window (the broker redelivers what we never acked; at-least-once, never a gap).
"""

from __future__ import annotations

import asyncio
import collections
from typing import NamedTuple


class Entry(NamedTuple):
    """One message in the window."""

    mid: int  # MQTT packet id (0 for QoS0: nothing to ack)
    qos: int
    write: asyncio.Future[object]  # the Kafka write carrying this message
    received_s: float  # monotonic clock when read
    reason: str | None  # dead-letter reason, None for telemetry


class WriteFailed(Exception):
    """The Kafka write of the window's oldest unconfirmed message failed."""

    def __init__(self, cause: BaseException):
        super().__init__(f"Kafka write failed: {cause!r}")
        self.cause = cause


class AckWindow:
    """Messages read and not yet acked, in arrival order."""

    def __init__(self) -> None:
        self._entries: collections.deque[Entry] = collections.deque()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: Entry) -> None:
        """Append the newest message."""
        self._entries.append(entry)

    def head(self) -> Entry | None:
        """The oldest message, or None."""
        return self._entries[0] if self._entries else None

    def pop_ready(self) -> list[Entry]:
        """Remove and return the oldest messages whose writes are confirmed, in order.

        Raises WriteFailed when the oldest message's write failed (after an earlier call has
        returned the confirmed prefix before it); the window is left untouched.
        """
        ready: list[Entry] = []
        entries = self._entries
        while entries:
            write = entries[0].write
            if not write.done():
                break
            error = asyncio.CancelledError() if write.cancelled() else write.exception()
            if error is not None:
                if ready:
                    break  # ack the confirmed prefix first; the failure is raised on the next call
                raise WriteFailed(error)
            ready.append(entries.popleft())
        return ready

    def release(self) -> list[Entry]:
        """Forget every message (the connection is gone; the broker will redeliver them)."""
        released = list(self._entries)
        self._entries.clear()
        return released
