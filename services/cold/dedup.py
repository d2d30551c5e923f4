"""Redelivered frames: the identities of the newest frames archived from one partition.

The bridge is at-least-once: after a crash or a Mosquitto restart, messages whose Kafka write
had already succeeded come again and land at new offsets of the same partition (a car's frames
of one subsystem all go to one partition, keyed by VIN). A frame is the same frame when its
(vin, seq, ts) is: the simulator and real telematics units number each car's frames per
subsystem and stamp them with the vehicle clock. Copies sit close to the original in the log
(within the bridge's in-flight window, 2,000 by default, plus Mosquitto's), so a window of the
last `size` identities per partition catches them; a late frame with a new identity is kept.

    recent = RecentFrames(10_000)
    repeated = recent.repeats(table.select(IDENTITY))  # bool per row: a copy of an earlier frame
    recent.add(archived.select(IDENTITY))               # once the flush is in the lake

The window is an Arrow table and both steps are Arrow kernels (a hash group-by and a semi
join), so a flush spends no Python per row on it. The tuple-and-set window it replaced held
the GIL ~0.7 s per 500k frames (py-spy --gil on `fleet bench cold`'s input), time the fetch
loop on the event loop thread waited for; on a 16k-row flush against a full 10k window, a
Python thread spinning beside it kept 77% of its pace instead of 47%.

A dropped copy is not lost from the offset bookkeeping: it goes to the partition's rejects
(`_rejects/`, error "duplicate", its exact bytes), which the audit counts like any other file.
The window lives in memory: a copy arriving right after the writer itself restarted is kept
(the audit still balances; the row is then in the lake twice).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

DUPLICATE = "duplicate: same vin, seq and ts as a frame already archived from this partition"

# The columns naming a frame (ts as the decoder's int64 epoch ms).
IDENTITY: Final = ("vin", "seq", "ts")
_ROW = "__row"


class RecentFrames:
    """At most `size` identities (an Arrow table, newest last), the oldest forgotten first."""

    def __init__(self, size: int):
        self.size = size
        self._window: pa.Table | None = None

    def __len__(self) -> int:
        return 0 if self._window is None else self._window.num_rows

    @property
    def nbytes(self) -> int:
        """Memory the window holds (every Arrow buffer it references), for the memory budget."""
        return 0 if self._window is None else self._window.get_total_buffer_size()

    def repeats(self, keys: pa.Table) -> pa.BooleanArray:
        """Per row of `keys` (the IDENTITY columns): whether an earlier row or the window has it."""
        rows = keys.append_column(_ROW, pa.array(range(keys.num_rows), pa.int64()))
        firsts = rows.group_by(list(IDENTITY), use_threads=False).aggregate([(_ROW, "min")])
        repeated = pc.invert(pc.is_in(rows[_ROW], value_set=firsts[f"{_ROW}_min"]))
        if self._window is not None:
            seen = rows.join(self._window, keys=list(IDENTITY), join_type="left semi")
            if seen.num_rows:
                repeated = pc.or_(repeated, pc.is_in(rows[_ROW], value_set=seen[_ROW]))
        return repeated.combine_chunks() if isinstance(repeated, pa.ChunkedArray) else repeated

    def add(self, identities: pa.Table) -> None:
        """Remember what a flush archived (only once it is in the lake), in offset order; the
        identities are new to the window (`repeats` sent the others to the rejects)."""
        if self.size <= 0 or identities.num_rows == 0:
            return
        newest = identities.select(list(IDENTITY)).slice(max(0, identities.num_rows - self.size))
        window = newest if self._window is None else pa.concat_tables([self._window, newest])
        window = window.slice(max(0, window.num_rows - self.size))
        # A copy: a slice would keep the whole flush's buffers alive.
        self._window = window.take(pa.array(range(window.num_rows), pa.int64()))

    def __contains__(self, identity: object) -> bool:
        """Whether one (vin, seq, ts) is in the window (for tests and inspection: a scan)."""
        if self._window is None or not isinstance(identity, tuple) or len(identity) != len(IDENTITY):
            return False
        mask = None
        for name, value in zip(IDENTITY, identity, strict=True):
            eq = pc.equal(self._window[name], pa.scalar(value, self._window.schema.field(name).type))
            mask = eq if mask is None else pc.and_(mask, eq)
        return bool(pc.any(mask).as_py())
