"""The lake: storage roots (local or S3), Delta tables, DuckDB connections and the privacy rule for what may be written. The only code that knows where data lives; imports no Dagster."""
