"""The monitor's verdicts: does the live metric hold, are the inputs drifting, is there
enough feedback. The retraining trigger reads them from the materialization."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_assets.monitoring.monitor import MonitorReport

CHECKS = ("live_metric_holds", "inputs_not_drifting", "enough_feedback")
TRIGGERS = ("live_metric_holds", "inputs_not_drifting")
"""The checks whose ERROR starts retraining."""


@dataclass
class Verdict:
    name: str
    status: str
    """PASS, WARN, ERROR, or NOT ENOUGH DATA (which passes: there is nothing to act on)."""
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status in ("PASS", "NOT ENOUGH DATA")


def verdicts(
    report: MonitorReport,
    *,
    min_labelled: int,
    min_requests: int,
    tolerance: float,
    drift_threshold: float,
    drift_error_share: float,
) -> list[Verdict]:
    judged = report.judged
    if judged is None:
        none = "no requests in the window"
        return [Verdict(name, "NOT ENOUGH DATA", none) for name in CHECKS]
    head = f"{judged.environment} v{judged.version}"
    reference = judged.reference
    out = []
    # live_metric_holds
    metric = reference.metric if reference else "accuracy"
    test = reference.test_metric if reference else None
    if judged.labelled < min_labelled or judged.interval is None:
        out.append(
            Verdict(
                "live_metric_holds",
                "NOT ENOUGH DATA",
                f"{head}: not enough data, {judged.labelled} labelled request(s) "
                f"({min_labelled} needed)",
                {"labelled": judged.labelled},
            )
        )
    else:
        low, high = judged.interval
        line = (
            f"{head}: live {metric} {judged.live_metric:.4f} (95% CI {low:.4f} to {high:.4f}, "
            f"{judged.labelled} labelled)"
            + (f" vs test {test:.4f}, tolerance {tolerance:g}" if test is not None else "")
        )
        if judged.regression:  # an error: worse when its interval lies wholly above
            failed = test is not None and low > test * (1 + tolerance)
        else:
            failed = test is not None and high < test - tolerance
        out.append(
            Verdict(
                "live_metric_holds",
                "ERROR" if failed else "PASS",
                ("FAIL: " if failed else "") + line,
                {
                    "live": judged.live_metric,
                    "ci_low": low,
                    "ci_high": high,
                    "test": test if test is not None else "none",
                    "labelled": judged.labelled,
                },
            )
        )
    # inputs_not_drifting
    if judged.rows < min_requests or not judged.drift:
        why = (
            "inputs are not logged"
            if judged.rows >= min_requests
            else f"{judged.rows} logged row(s) ({min_requests} needed)"
        )
        out.append(Verdict("inputs_not_drifting", "NOT ENOUGH DATA", f"{head}: {why}"))
    else:
        drifted = {k: v for k, v in judged.drift.items() if v >= drift_threshold}
        share = len(drifted) / len(judged.drift)
        top = sorted(drifted.items(), key=lambda kv: -kv[1])[:8]
        status = "ERROR" if share >= drift_error_share else "WARN" if drifted else "PASS"
        out.append(
            Verdict(
                "inputs_not_drifting",
                status,
                f"{head}: {len(drifted)} of {len(judged.drift)} input feature(s) drifted "
                f"(PSI >= {drift_threshold:g} against the training split)"
                + (": " + ", ".join(f"{k}={v:.2f}" for k, v in top) if top else ""),
                {
                    "drifted_features": len(drifted),
                    "features": len(judged.drift),
                    "max_psi": max(judged.drift.values()),
                    "rows": judged.rows,
                },
            )
        )
    # enough_feedback
    enough = judged.labelled >= min_labelled
    out.append(
        Verdict(
            "enough_feedback",
            "PASS" if enough else "WARN",
            f"{head}: {judged.labelled} of {judged.rows} logged row(s) labelled "
            f"({judged.coverage:.1%}); {min_labelled} needed to judge the live metric",
            {"labelled": judged.labelled, "coverage": judged.coverage},
        )
    )
    return out
