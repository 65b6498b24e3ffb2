"""Local storage whose writes of chosen keys happen in a forced order across threads: the
races two runs at once can meet, made to happen every time."""

from __future__ import annotations

import threading
from pathlib import Path

from mlops_assets.storage.local import LocalStorage

SCHEDULE: dict[str, tuple[str, str]] = {}
"""thread name -> (key part it must not write before, event name): the forced interleaving."""
EVENTS: dict[str, threading.Event] = {}
"""'<thread> wrote <key part>' -> set once that thread wrote such a key."""


def schedule(rules: dict[str, tuple[str, str]]) -> None:
    """Replace the interleaving: each rule's event is created unset."""
    SCHEDULE.clear()
    EVENTS.clear()
    SCHEDULE.update(rules)
    for _, event in rules.values():
        EVENTS[event] = threading.Event()


def scheduled_storage(root: Path) -> LocalStorage:
    class Scheduled(LocalStorage):
        """Local storage whose writes of shared keys happen in the scheduled order."""

        def _before(self, key: str) -> None:
            rule = SCHEDULE.get(threading.current_thread().name)
            if rule and rule[0] in key:
                assert EVENTS[rule[1]].wait(20), f"{rule[1]} never happened"

        def _after(self, key: str) -> None:
            wrote = f"{threading.current_thread().name} wrote "
            for event, happened in EVENTS.items():
                if event.startswith(wrote) and event[len(wrote) :] in key:
                    happened.set()

        def write_bytes(self, key, data, *, if_absent=False):
            self._before(key)
            written = super().write_bytes(key, data, if_absent=if_absent)
            self._after(key)
            return written

        def put_file(self, key, path):
            self._before(key)
            super().put_file(key, path)
            self._after(key)

        def replace_if(self, key, data, token):
            self._before(key)
            return super().replace_if(key, data, token)

    return Scheduled(root=str(root))
