"""The order class names are shown and stored in, whatever their type (a kind's split
and profile, and the monitor's prediction shares)."""

from __future__ import annotations


def class_order(name: str) -> tuple[int, float, str]:
    """Class names in order: numbers by value (2 before 10), then text alphabetically."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)
