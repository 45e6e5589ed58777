"""Pure business rules, one package per domain, named after it. Imports no Dagster: unit-tested on plain tables. Rule numbers resolve in docs/RULES.md."""
