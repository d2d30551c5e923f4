"""The cold path: a consumer group archiving every telemetry and alert record into a Parquet lake.

`writer` (the service), `buffer` (per-partition buffers and flush triggers), `decode` (values ->
typed Arrow), `flush` (atomic files + journal, recovery), `layout` (paths, names, visibility),
`compact` and `audit` (`fleet lake compact | audit`).
"""
