"""A table declared column by column with class labels is split stratified by its label:
every split holds each species in proportion, in every batch, and a part never changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.datasets.tabular.config import SplitConfig
from mlops_assets.datasets.tabular.split import assign
from tests.support.examples import penguins_csv


def test_each_class_takes_the_fractions_in_every_split():
    frame = pd.read_csv(penguins_csv())
    ids = pd.Series([f"row-{i}" for i in range(len(frame))])
    config = SplitConfig()
    labels = frame["species"].to_numpy()
    which = assign(ids, config, labels)
    for species in np.unique(labels):
        members = which[labels == species]
        for split, share in (("train", config.train), ("val", config.val), ("test", config.test)):
            # within one row of its share, whatever the class's size (Chinstrap: 68 rows)
            assert abs((members == split).sum() - share * len(members)) <= 1, (species, split)
    # the hash alone (the numeric shorthand's cut) is proportional only on average
    unstratified = assign(ids, config)
    assert (unstratified != which).any()
    # the same rows in another order get the same splits: it depends on ids, not positions
    order = np.random.default_rng(0).permutation(len(frame))
    again = assign(ids.iloc[order].reset_index(drop=True), config, labels[order])
    assert (again == which[order]).all()
