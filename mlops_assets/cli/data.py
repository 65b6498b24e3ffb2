"""`seed`, `synth`, `lsfb-sample`: demo data for the landing zone and an LSFB mirror."""

from __future__ import annotations

from pathlib import Path

import click

from mlops_assets.cli.base import landing_of, main, storage_of_settings, which_batches


@main.command()
@click.option("--batches", default=3, show_default=True, help="Split the digits into N batches.")
@click.option("--which", default=None, help="Write only these batches, e.g. '1-3' or '4'.")
@click.option(
    "--bad-fraction",
    default=0.0,
    show_default=True,
    help="Share of rows made to break the contract (for trying out quarantine).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True
)
def seed(batches: int, which: str | None, bad_fraction: float, fmt: str) -> None:
    """Drop scikit-learn's digits into the landing zone, in batches."""
    from mlops_assets.demo.digits_data import seed_digits

    for key in seed_digits(
        storage_of_settings(), batches, which_batches(which, batches), bad_fraction, fmt
    ):
        click.echo(f"wrote {key}")


@main.command()
@click.option("--rows", type=int, required=True, help="Number of rows.")
@click.option("--name", default=None, help="File name in the landing zone.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="parquet", show_default=True
)
@click.option("--seed", "rng_seed", default=0, show_default=True)
def synth(rows: int, name: str | None, fmt: str, rng_seed: int) -> None:
    """Write one synthetic digits batch of any size (for benchmarks)."""
    from mlops_assets.demo.digits_data import synthetic_batch, to_bytes

    key = f"{landing_of('digits')}/{name or f'synthetic-{rows}-{rng_seed}.{fmt}'}"
    storage_of_settings().write_bytes(key, to_bytes(synthetic_batch(rows, rng_seed), fmt))
    click.echo(f"wrote {key} ({rows} rows)")


@main.command("lsfb-sample")
@click.argument(
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".mlops/lsfb-mirror"),
)
@click.option("--signers", default=10, show_default=True)
@click.option("--signs", default=12, show_default=True)
@click.option("--clips-per-sign", default=3, show_default=True, help="per signer")
def lsfb_sample(folder: Path, signers: int, signs: int, clips_per_sign: int) -> None:
    """Write a small generated dataset in the exact LSFB-ISOL layout, to serve as a mirror
    (python -m http.server) when the real server is out of reach."""
    from mlops_assets.demo.lsfb_data import generate

    made = generate(folder, signers=signers, signs=signs, clips_per_sign=clips_per_sign)
    click.echo(
        f"wrote {len(made.instances)} clips of {len(made.signs)} signs to {folder}; serve it "
        f"with: python3 -m http.server -d {folder} 8000, and set "
        "MLOPS_LSFB_SOURCE=http://127.0.0.1:8000"
    )
