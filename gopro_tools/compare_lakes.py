"""Compare every Delta table of two lakes: same schema, same rows (order-insensitive).

``python -m gopro_tools.compare_lakes LAKE_A LAKE_B`` — used to show that a refactor keeps
every table's content (e.g. the demo lake built by two commits); exit 1 when any differs.
"""

import sys
from pathlib import Path

import duckdb
from deltalake import DeltaTable

a, b = Path(sys.argv[1]), Path(sys.argv[2])
names = sorted({p.parent.name for p in a.glob("*/_delta_log")} | {p.parent.name for p in b.glob("*/_delta_log")})
bad = 0
for name in names:
    if not (a / name).exists() or not (b / name).exists():
        print(f"{name}: only in {'a' if (a / name).exists() else 'b'}")
        bad += 1
        continue
    ta, tb = DeltaTable(str(a / name)).to_pyarrow_table(), DeltaTable(str(b / name)).to_pyarrow_table()
    if ta.schema.names != tb.schema.names or ta.schema != tb.schema:
        print(f"{name}: schema differs\n  a={ta.schema}\n  b={tb.schema}")
        bad += 1
    common = [c for c in ta.schema.names if c in tb.schema.names]
    con = duckdb.connect()
    con.register("ta", ta.select(common))
    con.register("tb", tb.select(common))
    cols = ", ".join(f'"{c}"' for c in common)
    n1 = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM ta EXCEPT ALL SELECT {cols} FROM tb)").fetchone()[0]
    n2 = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM tb EXCEPT ALL SELECT {cols} FROM ta)").fetchone()[0]
    status = (
        "same" if n1 == n2 == 0 and ta.num_rows == tb.num_rows else f"DIFFERS ({n1} rows only in a, {n2} only in b)"
    )
    if status != "same":
        bad += 1
    print(f"{name}: {ta.num_rows} vs {tb.num_rows} rows, {status}")
print("tables:", len(names), "differing:", bad)
sys.exit(1 if bad else 0)
