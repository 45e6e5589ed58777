"""The code location's definitions, one folder per domain (= asset group), loaded by dg.load_from_defs_folder."""
