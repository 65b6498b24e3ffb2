"""Markdown tables and small PNG plots for materialization metadata.

Plots are embedded in Markdown as data URIs so the Dagster UI shows them in
place, without a notebook or an artifact store.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from io import BytesIO
from typing import Any


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            value = f"{value:.4g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def figure(width: float = 6.0, height: float = 2.6):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=80)


def embed(fig, alt: str) -> str:
    buffer = BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def bar_plot(
    series: dict[str, dict[str, float]],
    title: str,
    alt: str,
    *,
    normalize: bool = False,
    threshold: float | None = None,
) -> str:
    """Grouped bars, one group per category (as shares when `normalize`), optional threshold."""
    fig = figure()
    ax = fig.add_subplot()
    categories = list(next(iter(series.values())).keys()) if series else []
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        total = (sum(values.values()) or 1) if normalize else 1
        ax.bar(
            [x + i * width for x in range(len(categories))],
            [values.get(c, 0) / total for c in categories],
            width=width,
            label=name,
        )
    step = max(1, len(categories) // 12)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(0, len(categories), step)])
    ax.set_xticklabels(
        categories[::step],
        fontsize=7,
        rotation=45 if step > 1 else 0,
        ha="right" if step > 1 else "center",
    )
    if threshold is not None:
        ax.axhline(threshold, color="red", linestyle="--", linewidth=1, label="threshold")
    ax.set_title(title, fontsize=9)
    if len(series) > 1 or threshold is not None:
        ax.legend(fontsize=7)
    return embed(fig, alt)


def heatmap(matrix: list[list[int]], labels: list[str], title: str, alt: str) -> str:
    """A confusion matrix as a picture: rows are true classes, columns predictions."""
    fig = figure(4.2, 3.6)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                ax.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if value > top / 2 else "black",
                )
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    return embed(fig, alt)
