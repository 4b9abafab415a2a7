"""class_weighting gives the rare class the larger weight in the loss, for each shipped
classifier, by label (an inverted or misaligned weight vector trains without error and
only shows as worse recall on the rare class, long after)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests import helpers


def imbalanced(plugin_name: str, tmp_path) -> tuple[pd.DataFrame, str, int, int]:
    """The plug-in's sample rows (or files) with all but 5 of one class dropped."""
    channel = tmp_path / "train"
    channel.mkdir()
    helpers.sample(plugin_name).write_data(channel, 240, 0)
    frame = helpers.channel_rows(plugin_name, channel)
    labels = pd.Series(helpers.row_labels(plugin_name, frame))
    rare = sorted(labels.unique())[0]
    keep = (labels != rare) | (labels.groupby(labels).cumcount() < 5)
    frame = frame[keep.to_numpy()].reset_index(drop=True)
    counts = labels[keep].value_counts()
    return frame, rare, int(counts[rare]), int(counts.max())


def test_the_rare_class_weighs_more_by_its_label(plugin_name, plugin_hp, tmp_path):
    from sagemaker_platform.hyperparameters import parse
    from sagemaker_platform.plugin import TrainContext, TrainingData

    frame, rare, n_rare, n_common = imbalanced(plugin_name, tmp_path)
    job = parse({**plugin_hp, "class_weighting": "true"})
    data = TrainingData(train=frame, validation=frame, validation_fraction=0.0, seed=0)
    plugin = job.plugin
    rows = plugin.prepare(job.hp, data)
    module, _ = plugin.build(job.hp, rows, TrainContext(8, 0, 0, 1, "32"))
    weights = module.loss_fn.weight.tolist()
    names = plugin.vocabulary(rows)["classes"]  # class names in output order
    assert len(weights) == len(names)
    by_label = dict(zip(names, weights, strict=True))
    assert by_label[rare] == max(weights) > min(weights), by_label
    # inverse frequency: the rare class outweighs the commonest by their counts' ratio
    assert by_label[rare] / min(weights) == pytest.approx(n_common / n_rare, rel=1e-3)
