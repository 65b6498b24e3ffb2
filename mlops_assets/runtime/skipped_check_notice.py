"""Drops Dagster's "Blocking asset check ... emitted no result" warning when the step that
owns the check was itself skipped (nothing new landed: acquire yields nothing, and every
step after it is skipped). Dagster logs it before it skips the downstream step too, so the
line says "will proceed" of a step that does not run. Any other case keeps the warning: a
step that ran and forgot its check result is a bug worth the line."""

from __future__ import annotations

import logging
import sys

ACTIVE_EXECUTION_LOGGER = "dagster._core.execution.plan.active"
NOTICE = "emitted no result in step "


class SkippedCheckNotice(logging.Filter):
    """The warning is logged from `ActiveExecution._should_skip_step`; its `self._skipped`
    says whether the step named in the line was skipped. Where Dagster's code no longer
    has that shape, the filter finds no frame and keeps the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if NOTICE not in message:
            return True
        step = message.split(NOTICE, 1)[1].split("'", 2)[1]
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == "_should_skip_step":
                skipped = getattr(frame.f_locals.get("self"), "_skipped", None)
                return not (isinstance(skipped, set) and step in skipped)
            frame = frame.f_back
        return True


def install() -> None:
    """Once per process (a second call adds nothing)."""
    logger = logging.getLogger(ACTIVE_EXECUTION_LOGGER)
    if not any(isinstance(f, SkippedCheckNotice) for f in logger.filters):
        logger.addFilter(SkippedCheckNotice())
