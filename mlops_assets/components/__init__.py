"""What every use-case component shares: the base component and its common settings.

The component types a `defs.yaml` names live with their dataset kind:
`mlops_assets.kinds.tabular.TabularUseCase`, `mlops_assets.kinds.lsfb.LsfbUseCase`.
"""
