"""The query layer: DuckDB views over the Parquet lake and the fleet's canned questions.

    lake = Lake(LakeSettings.from_env().dir)              # in-memory DuckDB, one view per table
    result = run_query(lake, "leaderboard", Filters(), QuerySettings())
    result.columns, result.rows                           # ("rank", "vin", ...), [(1, "1FLEET...", ...), ...]

Views: `engine`, `transmission`, `electronics`, `chassis`, `infotainment` (the lake's frames) and
`alerts` (the alert records). Nothing here writes: the database is in memory, the lake is only read.
"""
