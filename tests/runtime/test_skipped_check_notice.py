"""Dagster's "Blocking asset check ... emitted no result" line: gone when the step owning the
check was skipped (nothing new); kept where the filter cannot tell (Dagster's code changed)."""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from mlops_assets.runtime import skipped_check_notice

NOTICE = "emitted no result"


def graph() -> list[dg.AssetsDefinition]:
    @dg.asset(output_required=False)
    def first():
        yield from ()  # nothing new: every step after it is skipped

    @dg.asset(
        deps=[first],
        check_specs=[dg.AssetCheckSpec("ok", asset="second", blocking=True)],
    )
    def second():
        yield dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])

    @dg.asset(deps=[second])
    def third() -> None:
        return None

    return [first, second, third]


def notices(caplog, assets) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=skipped_check_notice.ACTIVE_EXECUTION_LOGGER):
        assert dg.materialize(assets).success
    return [r.getMessage() for r in caplog.records if NOTICE in r.getMessage()]


@pytest.fixture
def without_filter():
    logger = logging.getLogger(skipped_check_notice.ACTIVE_EXECUTION_LOGGER)
    kept = list(logger.filters)
    for f in kept:
        logger.removeFilter(f)
    yield logger
    for f in list(logger.filters):
        logger.removeFilter(f)
    for f in kept:
        logger.addFilter(f)


def test_the_line_goes_only_when_the_checks_step_was_skipped(caplog, without_filter):
    nothing_new = graph()
    assert notices(caplog, nothing_new)  # Dagster's own behaviour: the spurious line
    skipped_check_notice.install()
    skipped_check_notice.install()  # once per process
    assert len(without_filter.filters) == 1
    assert notices(caplog, nothing_new) == []
    # logged from anywhere but the skip decision, the filter cannot tell: the line stays
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=skipped_check_notice.ACTIVE_EXECUTION_LOGGER):
        without_filter.warning(
            "Blocking asset check 'second:ok' emitted no result in step 'second'; downstream "
            "step 'third' will proceed without gating on it."
        )
    assert [r for r in caplog.records if NOTICE in r.getMessage()]
