"""Arrow schemas per subsystem, derived from the catalog (the lake's Parquet columns).

Envelope first (vin, ts as UTC timestamp, seq, schema_version), then every signal of the
subsystem in catalog order; each field carries its unit, VSS path and description as metadata.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.catalog import BY_SUBSYSTEM, SUBSYSTEMS, Signal, Subsystem

ENVELOPE_FIELDS = (
    pa.field("vin", pa.string(), nullable=False),
    pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("schema_version", pa.int16(), nullable=False),
)


def _int_type(signal: Signal) -> pa.DataType:
    lo, hi = signal.min or 0, signal.max or 0
    for bits, typ in ((8, pa.int8()), (16, pa.int16()), (32, pa.int32())):
        if -(2 ** (bits - 1)) <= lo and hi < 2 ** (bits - 1):
            return typ
    return pa.int64()


def arrow_type(signal: Signal) -> pa.DataType:
    """The Arrow type of one signal."""
    if signal.type == "float":
        return pa.float64()
    if signal.type == "int":
        return _int_type(signal)
    if signal.type == "bool":
        return pa.bool_()
    if signal.type == "string":
        return pa.string()
    return pa.list_(pa.string())


def arrow_field(signal: Signal) -> pa.Field:
    """One nullable column with the signal's documentation attached."""
    meta = {"unit": signal.unit, "vss": signal.vss, "description": signal.description}
    return pa.field(signal.name, arrow_type(signal), nullable=True, metadata=meta)


def subsystem_schema(subsystem: Subsystem) -> pa.Schema:
    """Envelope + the subsystem's signals."""
    return pa.schema([*ENVELOPE_FIELDS, *(arrow_field(s) for s in BY_SUBSYSTEM[subsystem])])


SCHEMAS: dict[Subsystem, pa.Schema] = {sub: subsystem_schema(sub) for sub in SUBSYSTEMS}
