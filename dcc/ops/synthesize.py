"""synthesize.*: operators that make new instruction data (see the module docs as they land)."""
