"""gopro_assets.lake.duck: one DuckDB database per process, one connection per query.
What a query registers and sets must stay its own, or two models' inputs would mix."""

import pyarrow as pa

from gopro_assets.lake import duck
from gopro_assets.sql_engine.runner import MACROS_DIR


def test_registered_tables_and_variables_stay_in_their_connection():
    a, b = duck.connect(), duck.connect()
    a.register("inputs", pa.table({"x": [1]}))
    b.register("inputs", pa.table({"x": [2, 3]}))
    a.execute("SET VARIABLE month = '2025-01'")
    b.execute("SET VARIABLE month = '2025-02'")
    assert a.sql("SELECT sum(x), getvariable('month') FROM inputs").fetchall() == [(1, "2025-01")]
    assert b.sql("SELECT sum(x), getvariable('month') FROM inputs").fetchall() == [(5, "2025-02")]
    a.close()  # closing one connection leaves the other working
    assert b.sql("SELECT count(*) FROM inputs").fetchall() == [(2,)]
    assert b.sql("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
    b.close()


def test_macros_are_loaded_once_and_seen_by_every_connection():
    macros = sorted(MACROS_DIR.glob("*.sql"))
    first = duck.connect(macros)
    second = duck.connect(macros)  # loading again is a no-op, not an "already exists" error
    other = duck.connect()
    # R7/R8 rounding: round_half_up_div(5, 2) = 3, (4, 3) = 1
    for con in (first, second, other):
        assert con.sql("SELECT round_half_up_div(5, 2), round_half_up_div(4, 3)").fetchall() == [(3, 1)]
        con.close()
