"""Redelivered frames: the identities of the newest frames archived from one partition.

The bridge is at-least-once: after a crash or a Mosquitto restart, messages whose Kafka write
had already succeeded come again and land at new offsets of the same partition (a car's frames
of one subsystem all go to one partition, keyed by VIN). A frame is the same frame when its
(vin, seq, ts) is: the simulator and real telematics units number each car's frames per
subsystem and stamp them with the vehicle clock. Copies sit close to the original in the log
(within the bridge's in-flight window, 2,000 by default, plus Mosquitto's), so a window of the
last `size` identities per partition catches them; a late frame with a new identity is kept.

A dropped copy is not lost from the offset bookkeeping: it goes to the partition's rejects
(`_rejects/`, error "duplicate", its exact bytes), which the audit counts like any other file.
The window lives in memory: a copy arriving right after the writer itself restarted is kept
(the audit still balances; the row is then in the lake twice).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

DUPLICATE = "duplicate: same vin, seq and ts as a frame already archived from this partition"

Identity = tuple[str, int, int]

# Memory one remembered identity holds (the tuple, its str and ints, a set entry and a deque
# slot), counted in the writer's memory budget: measured 255 B with tracemalloc.
IDENTITY_BYTES = 256


class RecentFrames:
    """At most `size` identities, the oldest forgotten first."""

    def __init__(self, size: int):
        self.size = size
        self._order: deque[Identity] = deque()
        self._seen: set[Identity] = set()

    def __contains__(self, identity: object) -> bool:
        return identity in self._seen

    def __len__(self) -> int:
        return len(self._order)

    def add_all(self, identities: Iterable[Identity]) -> None:
        """Remember what a flush archived (only once it is in the lake)."""
        for identity in identities:
            if identity in self._seen:
                continue
            self._order.append(identity)
            self._seen.add(identity)
        while len(self._order) > self.size:
            self._seen.discard(self._order.popleft())
