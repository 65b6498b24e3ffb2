"""LSFB-ISOL: download, clip checks, shards and the DataOps stages of the sign-language use case."""
