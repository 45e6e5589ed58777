"""Landing-zone parsing and validation (contract §2, §3) and ingestion into the lake."""
