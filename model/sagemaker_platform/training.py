"""The training job, as SageMaker runs it: contract in, config, data, fit, model out.

The platform owns the job: hyperparameters, channels, the Trainer and its callbacks and
loggers, several hosts, spot checkpoints and resume, the model directory's weights and
manifest, metrics.json and the failure file. The plug-in the `model` hyperparameter
names owns its rows, its LightningModule and DataModule, and what serving needs.

Configuration and data are checked before torch or Lightning are imported, so a bad
hyperparameter or a broken file fails in well under a second with a reason in
output/failure.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import archives, channels, contract, distributed, logs, sharding, tracking
from .errors import UserError, exit_with, run_job
from .hyperparameters import JobConfig, parse
from .plugin import Monitor, TrainContext, TrainingData
from .precision import resolve as resolve_precision
from .precision import trainer_kwargs as precision_kwargs
from .tracking import Tracking

if TYPE_CHECKING:  # imported where they are used, after the input has been checked
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from .callbacks import LogLines
    from .resume import Found, SpotCheckpoints

log = logging.getLogger("train")


@dataclass
class Prepared:
    """A checked job: its configuration and the plug-in's rows."""

    job: JobConfig
    rows: Any  # what the plug-in's `prepare` returned
    train_rows: int  # rows read from the train channel (this host's shard, when sharded)
    checkpoints: Path  # where this job's checkpoints are written and resumed from
    tracking: Tracking | None = None  # MLflow, when MLFLOW_TRACKING_URI is set
    layout: sharding.Layout = field(default_factory=sharding.Layout)  # rows that differ by host


def read_data(
    job: JobConfig, scratch: Path | None, layout: sharding.Layout | None = None
) -> TrainingData:
    """The train and validation channels as DataFrames: their tables with the plug-in's
    columns, or (`Plugin.data = "files"`) their files, listed and not read."""
    train_dir = contract.find_channel(contract.TRAIN_CHANNELS)
    if train_dir is None:
        raise UserError(
            "no training data: expected a channel named "
            + " or ".join(f"'{name}'" for name in contract.TRAIN_CHANNELS)
            + f" under {contract.data_dir()}"
        )
    kind = job.plugin.data
    if kind not in channels.KINDS:
        raise UserError(
            f"plug-in {job.plugin.name!r} sets data={kind!r}; expected one of "
            + ", ".join(map(repr, channels.KINDS))
        )
    columns = list(job.plugin.columns(job.hp)) if kind == channels.TABLES else []
    val_dir = contract.find_channel(contract.VALIDATION_CHANNELS)
    data_dir = contract.data_dir()
    found = {p.name: p for p in sorted(data_dir.iterdir()) if p.is_dir()}
    try:
        train = channels.read(train_dir, kind, columns)
    except channels.NoData as exc:
        if layout is None or not layout.train_local:
            raise
        raise UserError(
            f"{exc}; the channel is ShardedByS3Key and this host got none of its S3 objects: "
            "give it at least as many objects as hosts"
        ) from exc
    return TrainingData(
        train=train,
        validation=channels.read(val_dir, kind, columns) if val_dir else None,
        validation_fraction=job.settings.validation_fraction,
        seed=job.settings.seed,
        channels=found,
        scratch=scratch,
        archive_limits=archives.Limits.of(
            job.settings.max_unpacked_gb, job.settings.max_unpacked_files
        ),
    )


def read_layout() -> sharding.Layout:
    """inputdataconfig.json: Pipe mode refused, one `input ...` line, and which rows
    differ from host to host (sharded channels)."""
    configs = contract.read_input_data_config()
    sharding.check_input_modes(configs)
    if configs:
        log.info(
            "input %s",
            logs.kv(**{n: f"{c.input_mode}/{c.distribution}" for n, c in configs.items()}),
        )
    train_dir = contract.find_channel(contract.TRAIN_CHANNELS)
    val_dir = contract.find_channel(contract.VALIDATION_CHANNELS)
    return sharding.layout(
        configs,
        train_dir.name if train_dir else contract.TRAIN_CHANNELS[0],
        val_dir.name if val_dir else None,
    )


def prepare(scratch: Path | None = None) -> Prepared:
    """Everything that can fail because of the input, before any heavy import."""
    raw = contract.read_hyperparameters()
    job = parse(raw)
    log.info("hyperparameters %s", logs.kv(**job.log_values()))
    if job.reserved:
        log.info("sagemaker_hyperparameters %s", logs.kv(**job.reserved))
    checkpoints = checkpoints_dir(job)
    layout = read_layout()
    data = read_data(job, scratch, layout)
    rows = job.plugin.prepare(job.hp, data)
    log.info(
        "data %s",
        logs.kv(
            model=job.plugin.name,
            train_channel_rows=len(data.train),
            validation_channel_rows=len(data.validation) if data.validation is not None else 0,
            **job.plugin.summary(rows),
        ),
    )
    return Prepared(job, rows, len(data.train), checkpoints, tracking.from_env(job), layout)


def fit(prepared: Prepared) -> dict:
    """Train, then write model/ and output/data/. Returns the evaluation report (empty
    on every rank but 0, which alone writes)."""
    import lightning as L

    logs.quiet_libraries()  # again: importing Lightning installs its own handler and level
    cluster = join_cluster()
    L.seed_everything(prepared.job.settings.seed, workers=True, verbose=False)
    built = build(prepared, cluster)
    elapsed = train(built, cluster)
    trainer = built.trainer
    if not trainer.is_global_zero:
        # The best checkpoint is on rank 0's disk; rank 0 writes model/ and output/.
        log.info("done %s", logs.kv(rank=trainer.global_rank, steps=trainer.global_step))
        return {}
    report = export(prepared, built, elapsed)
    check_model_written(contract.model_dir())
    return report


# --- the steps of `fit` -----------------------------------------------------------------
@dataclass
class Run:
    """What `build` assembles for `train` and `export`."""

    module: L.LightningModule
    datamodule: Any  # a LightningDataModule
    trainer: L.Trainer
    best: ModelCheckpoint  # checkpoints/best.ckpt (and last.ckpt at each epoch end)
    log_lines: LogLines
    spot: SpotCheckpoints  # step and SIGTERM checkpoints
    resume_from: Found | None  # the checkpoint in checkpoints/ this run continues, if any
    monitor: Monitor | None
    precision: str
    mlflow: Any = None  # the MLFlowLogger, when the job tracks to MLflow


def join_cluster() -> distributed.Cluster:
    """This host's place among the job's hosts; the variables DDP reads when there are
    several processes."""
    cluster = distributed.resolve(contract.read_resource_config(), distributed.gpu_count())
    if cluster.distributed:
        os.environ.update(distributed.process_env(cluster))
        log.info("cluster %s", logs.kv(**distributed.describe(cluster)))
    return cluster


def build(prepared: Prepared, cluster: distributed.Cluster) -> Run:
    """The plug-in's module and data, the checkpointing callbacks (resuming from
    checkpoints/ when it holds a run) and the Trainer."""
    import torch

    from .callbacks import FiniteMetrics, LogLines

    job = prepared.job
    settings = job.settings
    precision = resolve_precision(settings.precision, job.plugin.bf16_on_cpu)
    ctx = TrainContext(
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        seed=settings.seed,
        world_size=cluster.world_size,
        precision=precision,
    )
    module, datamodule = job.plugin.build(job.hp, prepared.rows, ctx)
    monitor = job.plugin.monitor(job.hp, prepared.rows)
    best, resume_from, spot = _checkpointing(
        prepared.checkpoints, settings.checkpoint_every_n_steps, monitor, module
    )
    log_lines = LogLines()
    # A logging cadence for TensorBoard: at most every 50 steps, at least once an epoch.
    # (A sharded train channel: this host's rows, among its own processes.)
    splits = cluster.devices if prepared.layout.train_local else cluster.world_size
    steps_per_epoch = -(-prepared.train_rows // (settings.batch_size * splits))
    loggers = [_tensorboard()]
    # MLflow on the job's rank 0 only: Lightning learns the ranks of the other hosts in
    # `fit`, after the run would have been opened on each of them.
    tracked = prepared.tracking and distributed.is_global_zero(cluster.node_rank)
    mlflow = tracking.logger(prepared.tracking, job) if tracked else None
    if mlflow is not None:
        loggers.append(mlflow)
    trainer = _trainer(
        job,
        cluster,
        [best, log_lines, spot, FiniteMetrics(monitor.metric if monitor else None)],
        precision,
        monitor,
        steps_per_epoch,
        loggers,
        prepared.layout,
        job.plugin.vocabulary(prepared.rows),
    )
    if mlflow is not None:
        tracking.start(mlflow, prepared.tracking, job)
    # What Lightning runs, as the log line and metrics.json say it (the same as resolved:
    # the one precision it would change, 16-mixed on a CPU, is refused there).
    precision = str(trainer.precision)
    log.info(
        "fit %s",
        logs.kv(
            model=job.plugin.name,
            precision=precision,
            accelerator=trainer.accelerator.__class__.__name__,
            monitor=monitor.metric if monitor else "none",
            torch_threads=torch.get_num_threads(),
        ),
    )
    return Run(
        module=module,
        datamodule=datamodule,
        trainer=trainer,
        best=best,
        log_lines=log_lines,
        spot=spot,
        resume_from=resume_from,
        monitor=monitor,
        precision=precision,
        mlflow=mlflow,
    )


def _tensorboard():
    from lightning.pytorch.loggers import TensorBoardLogger

    return TensorBoardLogger(str(contract.tensorboard_dir()), name="", version="")


# SageMaker's job names: letters, digits and hyphens (safe as one folder name).
_JOB_NAME = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$")


def checkpoints_dir(job: JobConfig) -> Path:
    """checkpoints/, or checkpoints/<training job name>/ for a trial of a tuning job.

    The trials of one tuning job share its checkpoint_s3_uri, which SageMaker copies into
    checkpoints/ of every trial: each trial keeps its own subfolder, so it never resumes
    another trial's run, while a spot restart of the same trial (the same job name)
    finds its own. Outside a tuning job the folder itself is used, as before: a new job
    given the URI of an earlier one resumes it. A trial ignores checkpoints at the top.
    """
    top = contract.checkpoints_dir()
    if job.tuning_objective is None:
        return top
    name = contract.training_job_name()
    if name is None:
        log.warning(
            "checkpoints %s",
            logs.kv(dir=top, reason=f"{contract.TRAINING_JOB_NAME_ENV} is not set"),
        )
        return top
    if not _JOB_NAME.match(name):
        raise UserError(
            f"{contract.TRAINING_JOB_NAME_ENV}={name!r} is not a SageMaker job name "
            "(letters, digits and hyphens): it names the trial's checkpoint folder"
        )
    log.info("checkpoints %s", logs.kv(dir=top / name, trial=name))
    return top / name


def _checkpointing(checkpoints: Path, every_n_steps: int, monitor: Monitor | None, module):
    """`checkpoints`: the best epoch, the checkpoint to resume (refused when it is of
    another model) and the step and SIGTERM checkpoints."""
    from . import resume

    best = resume.EpochCheckpoints(
        dirpath=checkpoints,
        filename="best",
        monitor=monitor.metric if monitor else None,
        mode=monitor.mode if monitor else "min",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    resume.check_folder(checkpoints)
    found = resume.find_checkpoint(checkpoints)
    if found is not None:
        resume.check_fits(found, module)
        log.info(
            "resume %s", logs.kv(checkpoint=found.path, step=found.step, epoch=found.epoch + 1)
        )
    spot = resume.SpotCheckpoints(
        checkpoints, every_n_steps, found.step if found is not None else -1
    )
    return best, found, spot


def _trainer(
    job: JobConfig,
    cluster: distributed.Cluster,
    callbacks: list,
    precision: str,
    monitor: Monitor | None,
    steps_per_epoch: int,
    loggers: list,
    layout: sharding.Layout,
    vocabulary: Any,
) -> L.Trainer:
    """One Trainer for one process or DDP; early stopping on the plug-in's metric when
    there is validation; no progress bar (the log lines say it all)."""
    import lightning as L

    from .resume import EarlyStop

    settings = job.settings
    if monitor is not None and settings.early_stopping_patience:
        stop = EarlyStop(
            monitor.metric, mode=monitor.mode, patience=settings.early_stopping_patience
        )
        callbacks = [*callbacks, stop]
    return L.Trainer(
        max_epochs=settings.epochs,
        **distributed.trainer_kwargs(cluster, layout, vocabulary),
        **precision_kwargs(precision),
        accumulate_grad_batches=settings.gradient_accumulation,
        callbacks=callbacks,
        logger=loggers,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if monitor is not None else 0,
        deterministic=False,
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
    )


def train(run: Run, cluster: distributed.Cluster) -> float:
    """`trainer.fit`, from the resumed checkpoint if any; the seconds it took. SIGTERM
    becomes `Interrupted` (exit 143, no failure file); a lost peer, a ClusterError."""
    import torch
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    # Until Lightning installs its SIGTERM handler, after the hosts have met, SIGTERM keeps
    # its default action and ends the process at once (tini reports 143). Install no
    # Python handler before that: the rendezvous blocks in C++ (TCPStore, gloo), where a
    # Python handler only runs once TRAINING_DIST_TIMEOUT has run out (test_scale.py).
    ckpt_path = run.resume_from.path if run.resume_from else None
    started = time.perf_counter()
    try:
        run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:
        raise run.spot.interrupted(run.trainer) from None
    except torch.distributed.DistError as exc:
        if not cluster.distributed:
            raise
        raise distributed.explain_failure(cluster, exc) from exc
    return time.perf_counter() - started


def export(prepared: Prepared, run: Run, elapsed: float) -> dict:
    """Rank 0: the best epoch's weights and the manifest into model/, with what the
    plug-in exports beside them; its evaluation into output/data/."""
    from . import artifacts, evaluation, registry

    job = prepared.job
    checkpoint = _best_checkpoint(run)
    module = run.module.cpu().eval()
    model_dir = contract.model_dir()
    artifacts.write_weights(model_dir, checkpoint)
    artifacts.write_manifest(model_dir, job.plugin.name, registry.module_name(job.settings.model))
    job.plugin.export(job.hp, prepared.rows, module, model_dir)

    extra = {
        "model": job.plugin.name,
        "best_epoch": int(checkpoint.get("epoch", -1)) + 1,  # 1-based, as in the log lines
        "epochs_run": run.trainer.current_epoch,
        "train_seconds": round(elapsed, 2),
        "train_samples_per_sec": round(run.log_lines.samples_per_second, 2),
        "train_step_cpu_seconds": round(run.log_lines.train_cpu_seconds, 3),
        "train_rows": _rows_trained_on(run, prepared.train_rows),
        "train_channel_rows": prepared.train_rows,
        "precision": run.precision,
        **_shard_figures(prepared, run),
    }
    out_dir = contract.output_data_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    report = job.plugin.evaluate(job.hp, prepared.rows, module, out_dir) if run.monitor else {}
    evaluation.write_metrics(out_dir, report, extra)
    log.info(
        "result %s",
        logs.kv(
            best_epoch=extra["best_epoch"],
            **evaluation.headline(report),
            train_seconds=extra["train_seconds"],
            train_samples_per_sec=extra["train_samples_per_sec"],
        ),
    )
    unregistered = sorted(set(evaluation.headline(report)) - set(job.plugin.metrics))
    if unregistered:  # in the result line, yet no metric definition will chart them
        log.warning(
            "not charted %s: the result line has them, the plug-in's `metrics` does not "
            "(list them there for SageMaker metric definitions)",
            logs.kv(metrics=",".join(unregistered)),
        )
    if run.mlflow is not None:
        tracking.finish(run.mlflow, {**extra, **report}, out_dir)
    return {**extra, **report}


def _rows_trained_on(run: Run, channel_rows: int) -> int:
    """The rows of the plug-in's training DataLoader: the train channel's less what it
    held out for validation (or more, if it made several rows of one). A loader of no
    known length (an IterableDataset) counts as the channel's rows."""
    loader = run.trainer.train_dataloader
    dataset = getattr(loader, "dataset", None)
    try:
        return len(dataset)
    except TypeError:
        return channel_rows


def _shard_figures(prepared: Prepared, run: Run) -> dict:
    """With sharded channels on several hosts: the job's training rows (this host holds
    only its shard), the rows repeated per epoch to even the steps, and whose validation
    rows the plug-in's evaluation covers (the per-epoch val_* metrics cover every host's)."""
    figures: dict = {}
    splits = getattr(run.trainer.strategy, "train_splits", None)
    if splits:
        figures["train_rows"] = sum(split.rows for split in splits)
        figures["train_rows_repeated_per_epoch"] = sum(split.repeated for split in splits)
    if prepared.layout.validation_local and run.trainer.num_nodes > 1:
        figures["evaluation_rows"] = f"validation rows of {run.trainer.strategy.host} only"
    return figures


def _best_checkpoint(run: Run) -> dict:
    """The best epoch's checkpoint (the last epoch's without validation), loaded
    weights-only, with its weights loaded into the module."""
    import torch

    from .resume import inside

    saved = run.best.best_model_path or run.best.last_model_path
    path = inside(saved, run.best.dirpath)
    if path is None:  # EpochCheckpoints restores none from a checkpoint: never read one
        raise UserError(f"the best checkpoint {saved!r} is not a *.ckpt file in checkpoints/")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"checkpoints/{Path(path).name} cannot be loaded weights-only: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    run.module.load_state_dict(checkpoint["state_dict"])
    return checkpoint


def check_model_written(model_dir: Path) -> None:
    """Rank 0, last: no job ends 0 without a model. The weights and the manifest the
    platform wrote must still be there after the plug-in's `export` and `evaluate`."""
    from .artifacts import CHECKPOINT, MANIFEST

    paths = [model_dir / CHECKPOINT, model_dir / MANIFEST]
    missing = [f"model/{p.name}" for p in paths if not p.is_file()]
    if missing:
        raise UserError(
            f"the job wrote no model: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing after the plug-in's export "
            "(a plug-in writes beside them, never removes them)"
        )
    empty = [f"model/{p.name}" for p in paths if p.stat().st_size == 0]
    if empty:
        raise UserError(f"the job wrote no model: {', '.join(empty)} is empty")


def run() -> None:
    # Scratch space outside the input channels, removed when the job ends: where a
    # plug-in may extract archives (TMPDIR chooses the disk).
    with tempfile.TemporaryDirectory(prefix="train-") as scratch:
        fit(prepare(Path(scratch)))


def main() -> None:
    """Entry point of `train` (SageMaker runs `docker run IMAGE train`)."""
    logs.setup()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log.info("start %s", logs.kv(base_dir=contract.base_dir()))
    exit_with(run_job(run, contract.failure_path, write=writes_failure_file()))


def writes_failure_file() -> bool:
    """Only the job's rank 0 writes output/failure (every failing rank still exits 1). A
    resourceconfig.json too broken to tell the rank counts as rank 0: say why."""
    try:
        node_rank = contract.read_resource_config().node_rank
    except ValueError:
        return True
    return distributed.is_global_zero(node_rank)
