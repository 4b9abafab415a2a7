"""The seam between the platform and a model: the one class a plug-in implements.

A plug-in is one folder under `model/plugins/` (or a package on PYTHONPATH) that holds a
`SAGEMAKER_PLUGIN` marker file and whose `__init__.py` defines `plugin = MyPlugin()`, an
instance of a `Plugin` subclass (registry.py imports no folder without the marker). The
platform owns everything about SageMaker and running models; the plug-in owns its data,
its network and what serving needs, in these steps:

    training  (train)                          serving  (serve, per gunicorn worker)
      Hyperparameters    its own, typed           load(model_dir, runtime) -> model
      data               "tables" or "files"      warm_up(model)
      columns(hp)        what every file needs    sample_request(model): decoded,
      prepare(hp, data)  DataFrames -> rows         predicted, encoded once
                                                  per request:
      build(hp, rows, ctx)                          decode(model, body, type, options)
          -> LightningModule, LightningDataModule      -> records
      monitor(hp, rows)  the metric to keep best    predict(model, records)  <- batched
      export(hp, rows, module, model_dir)              -> one output per record
      evaluate(hp, rows, module, out_dir)           encode(model, records, outputs,
                                                           accept, options)

`prepare` runs before torch and Lightning are imported, so bad data fails in a second.
With `data = "files"` the platform lists each channel's files (images, audio, .npy,
.tar shards) instead of reading tables: one row per file, which the plug-in opens in
its own Dataset (see `TrainingData`).
Serving never imports Lightning: `load` rebuilds a plain `nn.Module` from the weights
the platform saved (`artifacts.load_state_dict`, weights-only) and the files `export`
wrote. `predict` receives the records of several requests at once (dynamic batching);
`decode` and `encode` run per request, so a record keeps its own fields (an `id` to echo)
and a request its own options (`X-Amzn-SageMaker-Custom-Attributes: top_k=3`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from . import archives, codecs

if TYPE_CHECKING:
    import lightning as L
    import pandas as pd

    from .runtime import Runtime


@dataclass(frozen=True)
class NoHyperparameters:
    """A plug-in without hyperparameters of its own."""


@dataclass
class TrainingData:
    """What the platform read from the channels, for `Plugin.prepare`.

    `train` is the `train` (or `training`) channel as one DataFrame, `validation` the
    `validation` channel's, or None. When it is None, hold out `validation_fraction` of
    train (`splitting.stratified_split` or `splitting.random_split`, seeded by `seed`).
    What a row is depends on `Plugin.data`:

        "tables"  a row of a data file (CSV, TSV, JSON Lines, Parquet), every file of
                  the channel concatenated, with a `channels.SOURCE` column
                  (`_source_file`) naming each row's file (say it in errors)
        "files"   a file of the channel, listed and never opened by the platform:
                  `path` (absolute, a string: open it yourself, in your Dataset, so
                  that FastFile fetches it only then), `relative` (its posix path in
                  the channel, `cat/001.png`: an ImageFolder label is its first part),
                  `size` (bytes) and `_source_file` (`train/cat/001.png`). Hidden files
                  are skipped; a link that leaves the channel is refused.

    Either way, with a `ShardedByS3Key` train channel the rows are this host's share.
    `channels` has every channel's folder by name (a `pretrained` channel, one of your
    own), `scratch` a folder of this job's removed at its end (where to extract an
    archive), and `archive_limits` what a channel's .tar.gz may expand to (pass both to
    `archives.extract`).
    """

    train: pd.DataFrame
    validation: pd.DataFrame | None
    validation_fraction: float
    seed: int
    channels: dict[str, Path] = field(default_factory=dict)  # every channel, by name
    scratch: Path | None = None  # a temporary folder for this job (removed at its end)
    # what a channel's .tar.gz may expand to: pass to `archives.extract`
    archive_limits: archives.Limits = field(default_factory=archives.Limits)


@dataclass(frozen=True)
class TrainContext:
    """What `Plugin.build` may need from the platform's settings and the cluster."""

    batch_size: int  # per process
    num_workers: int  # DataLoader workers
    seed: int
    world_size: int  # processes across every host
    precision: str  # Lightning's precision for this run


@dataclass(frozen=True)
class Monitor:
    """The validation metric that picks the best epoch (and drives early stopping)."""

    metric: str  # a name the LightningModule logs, e.g. "val_f1"
    mode: str = "max"  # or "min"


class Plugin:
    """Subclass it, set `name` and `Hyperparameters`, and override what your model needs.

    Defaults: no columns required, `prepare` hands the DataFrames on, no validation
    metric, nothing exported beyond the weights, no evaluation, no warm-up or sample
    request, JSON records in and out. `build`, `load` and `predict` have no default.
    """

    #: written into the model directory's plugin.json and the log lines
    name: ClassVar[str] = ""
    #: the plug-in's hyperparameters: a frozen dataclass of `config.setting(...)` fields
    Hyperparameters: ClassVar[type] = NoHyperparameters
    #: what its channels hold: "tables" (the platform reads their data files into rows;
    #: `columns` names what each needs) or "files" (any files, e.g. images in label
    #: folders: the platform lists them, one row per file, and the plug-in opens them)
    data: ClassVar[str] = "tables"
    #: the `val_*` metrics its LightningModule logs: the launcher registers a metric
    #: definition for each (SageMaker charts them; a tuning job can optimise one)
    metrics: ClassVar[tuple[str, ...]] = ("val_loss",)
    #: serving variables of its own (a dataclass of `setting(..., env=NAME)` fields that
    #: `load` reads with `config.parse_env`), listed in docs/serving.md beside the platform's
    ServeSettings: ClassVar[type | None] = None
    #: the request Content-Types `decode` takes and the Accept types `encode` writes;
    #: the first of each is the default
    content_types: ClassVar[tuple[str, ...]] = (codecs.JSON, codecs.JSONLINES)
    accept_types: ClassVar[tuple[str, ...]] = (codecs.JSON, codecs.JSONLINES)
    #: `precision=auto` trains it in bf16-mixed on a CPU whose bf16 units (AVX512-BF16,
    #: AMX) measure faster than fp32 (`cpu_bf16.cpu_bf16_pays`) too, not only on a GPU
    #: that has bf16. Set it where that measured faster with the same quality
    #: (`bench_train.py --compare-precision`): networks whose time goes to large matrix
    #: multiplies, such as transformers. Small MLPs and CNNs gain nothing from CPU
    #: autocast (the tabular MLP trained at 0.70x) and keep fp32 there.
    bf16_on_cpu: ClassVar[bool] = False

    # --- training, before torch is imported --------------------------------------------
    def columns(self, hp: Any) -> Sequence[str]:
        """Columns every data file must have; the reader names the file that lacks one.
        Not called for a plug-in whose `data` is "files"."""
        return ()

    def prepare(self, hp: Any, data: TrainingData) -> Any:
        """Check the rows and shape them for `build` (raise `UserError` naming the column
        and file); the result is handed to every later training step."""
        return data

    def summary(self, rows: Any) -> dict[str, Any]:
        """Figures for the `data ...` log line (e.g. `train_examples`, `classes`)."""
        return {}

    def vocabulary(self, rows: Any) -> Any:
        """What the rows taught the plug-in that gives its inputs and outputs their
        meaning (class names in output order, category lists: plain lists in a dict), or
        None. With a sharded train channel each host prepares its own shard: the hosts
        compare this before training, and fail saying how they differ, since equal
        shapes with other meanings (a class in place of another) would train one model
        on misaligned labels."""
        return None

    # --- training, with torch and Lightning ---------------------------------------------
    def build(self, hp: Any, rows: Any, ctx: TrainContext) -> tuple[L.LightningModule, Any]:
        """The LightningModule and LightningDataModule to fit. Use `loaders.train_loader`
        for the training DataLoader: it resumes mid-epoch after a spot interruption."""
        raise NotImplementedError(f"plug-in {self.name!r} does not define build()")

    def monitor(self, hp: Any, rows: Any) -> Monitor | None:
        """The validation metric to keep the best epoch by; None: no validation (the
        last epoch is kept)."""
        return None

    def export(self, hp: Any, rows: Any, module: L.LightningModule, model_dir: Path) -> None:
        """Write what serving needs beside the weights (the platform has written
        model.ckpt and plugin.json): labels, a tokenizer, column statistics..."""

    def evaluate(self, hp: Any, rows: Any, module: L.LightningModule, out_dir: Path) -> dict:
        """The best epoch's figures on the validation rows, for metrics.json and the
        `result` line (numbers at the top level); plots may go into `out_dir`."""
        return {}

    # --- serving (never imports Lightning) ----------------------------------------------
    def check(self, model_dir: Path) -> None:
        """Fail before the server starts if `model_dir` cannot load (raise `UserError`).
        Runs in the serving process without torch: read files, not weights."""

    def load(self, model_dir: Path, runtime: Runtime) -> Any:
        """The model, ready to predict, on `runtime.device`."""
        raise NotImplementedError(f"plug-in {self.name!r} does not define load()")

    def warm_up(self, model: Any) -> None:
        """Run once after `load`, before /ping says ready."""

    def sample_request(self, model: Any) -> tuple[bytes, str] | None:
        """A request `model` must answer: (body, Content-Type), one small record built from
        what the model knows (its columns, its vocabulary), never from the sample data.
        After `warm_up` the platform sends it through `decode`, `predict` and `encode`
        (every Accept type) as it would a request, and a failure there fails the worker's
        start in one line: /ping says ready only for a model that answers. Default None:
        no sample, and ready once `warm_up` returns."""
        return None

    def decode(
        self, model: Any, body: bytes, content_type: str, options: Mapping[str, str]
    ) -> Sequence[Any]:
        """The records of one request (raise `codecs.HTTPError(400, ...)` for bad input:
        every check belongs here, with the loaded `model` at hand to check against, since
        `predict` shares a batch with other requests: an error there fails them all).
        Default: JSON (`{"instances": [...]}`, a list, or one value) or JSON Lines."""
        return codecs.decode_records(body, content_type)

    def predict(self, model: Any, records: Sequence[Any]) -> Sequence[Any]:
        """One output per record, in order, as a torch tensor, a numpy array or a list;
        records of several requests come together, and a request of many records comes
        in several calls (`batching.PASSES_PER_CALL`)."""
        raise NotImplementedError(f"plug-in {self.name!r} does not define predict()")

    def encode(
        self,
        model: Any,
        records: Sequence[Any],
        outputs: Sequence[Any],
        accept: str,
        options: Mapping[str, str],
    ) -> str | bytes:
        """One request's answer. Default: `{"predictions": [...]}` or JSON Lines."""
        return codecs.encode_records(list(outputs), accept)
