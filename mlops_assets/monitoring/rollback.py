"""Did the version deployed last make things worse than the one it replaced?

The monitor only decides: the version an environment served last against the one it served
before, each over its own last window, by the share of labelled requests it got right
(Fisher's exact test, one-sided: is the new one worse) or by the share of its requests the
model failed on. The rollback itself is the deploy step's (the sensor starts it), the only
step that holds the GitOps credentials.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from mlops_assets.core.config import RollbackConfig
from mlops_assets.monitoring.digest import hour_of, hour_summaries, merge_version
from mlops_assets.monitoring.rollout_status import RolloutState
from mlops_assets.registry import ModelRegistry
from mlops_assets.storage import Layout, ObjectStorage

LOOKBACK_HOURS = 24 * 14
"""How far back the version served before is looked for."""


@dataclass(frozen=True)
class RollbackDecision:
    environment: str
    version: int
    """The version to roll back."""
    to: int
    """The version it replaced, which serves again."""
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _window_stats(summaries: dict[str, dict], version: str, first: str, last: str) -> dict:
    total = merge_version(None, {})
    for hour, summary in summaries.items():
        stats = summary.get("versions", {}).get(version)
        if stats is not None and first <= hour <= last:
            total = merge_version(total, stats)
    return total


def decide_rollback(
    storage: ObjectStorage,
    layout: Layout,
    environment: str,
    config: RollbackConfig,
    window_hours: int,
    now: datetime,
) -> RollbackDecision | None:
    if not config.enabled:
        return None
    earliest = hour_of(now - timedelta(hours=LOOKBACK_HOURS))
    summaries = {}
    # the lookback's, and none later than now: a summary dated ahead is no server's
    for hour, key in hour_summaries(storage, layout, environment, earliest, hour_of(now)):
        summaries[hour] = storage.read_json(key)
    last_seen: dict[str, str] = {}
    for summary in summaries.values():
        for version, stats in summary.get("versions", {}).items():
            last_seen[version] = max(last_seen.get(version, ""), stats.get("last", ""))
    served = sorted((t, v) for v, t in last_seen.items() if t)
    if len(served) < 2:
        return None
    (_, before), (_, current) = served[-2], served[-1]
    if int(current) <= int(before):
        return None  # an older version serving again is a person's rollback, not a regression
    registry = ModelRegistry(storage, layout.use_case)
    if registry.status(int(current)).get("status") == "rolled_back":
        return None  # decided before; Argo CD has not moved the pods yet
    first = hour_of(now - timedelta(hours=window_hours - 1))
    new = _window_stats(summaries, current, first, hour_of(now))
    previous_last = datetime.fromisoformat(last_seen[before])
    old = _window_stats(
        summaries,
        before,
        hour_of(previous_last - timedelta(hours=window_hours - 1)),
        hour_of(previous_last),
    )
    head = f"v{current} in {environment}"
    if new["rows"] >= config.min_requests and new["errors"] / new["rows"] > config.max_error_rate:
        return RollbackDecision(
            environment,
            int(current),
            int(before),
            f"{head}: {new['errors']} of {new['rows']} requests failed "
            f"({new['errors'] / new['rows']:.1%}, more than {config.max_error_rate:.1%})",
        )
    if new["labelled"] < config.min_labelled or old["labelled"] < config.min_labelled:
        return None
    from scipy.stats import fisher_exact

    table = [
        [new["correct"], new["labelled"] - new["correct"]],
        [old["correct"], old["labelled"] - old["correct"]],
    ]
    p_value = float(fisher_exact(table, alternative="less").pvalue)
    if p_value >= config.alpha:
        return None
    live_new = new["correct"] / new["labelled"]
    live_old = old["correct"] / old["labelled"]
    return RollbackDecision(
        environment,
        int(current),
        int(before),
        f"{head}: live accuracy {live_new:.4f} on {new['labelled']} labelled requests against "
        f"v{before}'s {live_old:.4f} on {old['labelled']} over its last {window_hours} h "
        f"({100 * (live_new - live_old):+.1f} points, Fisher's exact test, one-sided "
        f"p={p_value:.2g})",
    )


def decide_cluster_rollback(
    storage: ObjectStorage, layout: Layout, environment: str, state: RolloutState | None
) -> RollbackDecision | None:
    """Git back to what the cluster serves, when Argo Rollouts aborted the canary of the
    version git names (rollout_status.py)."""
    if state is None or not state.diverged:
        return None
    named, serving = state.git_version, state.serving_version
    if not (named.isdigit() and serving.isdigit()):
        return None
    registry = ModelRegistry(storage, layout.use_case)
    if registry.status(int(named)).get("status") == "rolled_back":
        return None  # decided before; the commit has not reached the cluster yet
    why = f" ({state.message})" if state.message else ""
    return RollbackDecision(
        environment,
        int(named),
        int(serving),
        f"canary aborted by analysis: v{named} in {environment}{why}; the cluster serves "
        f"v{serving} again",
    )
