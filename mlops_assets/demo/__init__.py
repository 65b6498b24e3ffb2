"""Demo data for the digits use case."""
