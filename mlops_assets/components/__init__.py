"""The component types a `defs.yaml` names (`type:`), where `dg` looks for them
(`registry_modules = ["mlops_assets.components.*"]`): the base `UseCase` with its common
settings (`use_case`, `config`), and one type per dataset kind, `tabular.TabularUseCase`
and `lsfb.LsfbUseCase`, each the Dagster side of its kind in `mlops_assets.datasets`.
"""
