"""The training job, as SageMaker runs it: contract in, config, data, fit, model out.

Configuration and data are checked before torch or Lightning are imported, so a bad
hyperparameter or a broken file fails in well under a second with a reason in
output/failure.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import contract, distributed, logs, pretrained
from .config import TrainConfig, parse_hyperparameters
from .data import Splits, load_splits
from .errors import UserError, exit_with, run_job

if TYPE_CHECKING:  # imported where they are used, after the input has been checked
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from .lightning_module import ClassifierModule, LogLines, TextDataModule
    from .resume import Found, SpotCheckpoints
    from .text import TextEncoder

log = logging.getLogger("train")


def class_weights(labels, num_classes: int) -> list[float]:
    """Inverse class frequency, normalised so that a balanced set gets all ones."""
    import numpy as np

    counts = np.bincount(labels, minlength=num_classes).astype(float)
    counts[counts == 0] = 1.0
    weights = len(labels) / (num_classes * counts)
    return [round(float(w), 6) for w in weights]


def resolve_precision(requested: str) -> str:
    import torch

    if requested != "auto":
        return "32-true" if requested == "32" else requested
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def prepare(scratch: Path | None = None) -> tuple[TrainConfig, Splits, str]:
    """Everything that can fail because of the input, before any heavy import. A
    model.tar.gz in the pretrained channel is extracted under `scratch`."""
    cfg = parse_hyperparameters(contract.read_hyperparameters())
    log.info("hyperparameters %s", logs.kv(**{k: v for k, v in asdict(cfg).items()}))
    train_dir = contract.find_channel(contract.TRAIN_CHANNELS)
    if train_dir is None:
        raise UserError(
            "no training data: expected a channel named "
            + " or ".join(f"'{name}'" for name in contract.TRAIN_CHANNELS)
            + f" under {contract.data_dir()}"
        )
    val_dir = contract.find_channel(contract.VALIDATION_CHANNELS)
    splits = load_splits(
        train_dir, val_dir, cfg.text_column, cfg.label_column, cfg.validation_fraction, cfg.seed
    )
    log.info(
        "data %s",
        logs.kv(
            train_rows=len(splits.train_texts),
            val_rows=len(splits.val_texts),
            classes=splits.num_classes,
            validation=(
                "channel"
                if val_dir
                else f"split_{cfg.validation_fraction}"
                if splits.val_texts
                else "none"
            ),
        ),
    )
    return cfg, splits, pretrained.resolve(cfg, scratch)


def fit(cfg: TrainConfig, splits: Splits, backbone: str) -> dict:
    """Fine-tune, then write model/ and output/data/. Returns the evaluation report
    (empty on every rank but 0, which alone writes)."""
    import lightning as L

    logs.quiet_libraries()  # again: importing Lightning installs its own handler and level
    cluster = join_cluster()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    job = build(cfg, splits, backbone, cluster)
    elapsed = train(job, cluster)
    if not job.trainer.is_global_zero:
        # The best checkpoint is on rank 0's disk; rank 0 writes model/ and output/.
        log.info("done %s", logs.kv(rank=job.trainer.global_rank, steps=job.trainer.global_step))
        return {}
    return export(cfg, splits, job, elapsed)


# --- the steps of `fit` -----------------------------------------------------------------
@dataclass
class Job:
    """What `build` assembles for `train` and `export`."""

    module: ClassifierModule
    datamodule: TextDataModule
    encoder: TextEncoder  # the tokenizer, with its settings, for training and evaluation
    tokenizer: Any  # the `tokenizers.Tokenizer` written into model/tokenizer/
    trainer: L.Trainer
    best: ModelCheckpoint  # checkpoints/best.ckpt (and last.ckpt at each epoch end)
    log_lines: LogLines
    spot: SpotCheckpoints  # step and SIGTERM checkpoints
    resume_from: Found | None  # the checkpoint in checkpoints/ this run continues, if any
    precision: str


def join_cluster() -> distributed.Cluster:
    """This host's place among the job's hosts; the variables DDP reads when there are
    several processes."""
    cluster = distributed.resolve(contract.read_resource_config(), distributed.gpu_count())
    if cluster.distributed:
        os.environ.update(distributed.process_env(cluster))
        log.info("cluster %s", logs.kv(**distributed.describe(cluster)))
    return cluster


def build(cfg: TrainConfig, splits: Splits, backbone: str, cluster: distributed.Cluster) -> Job:
    """The network from `backbone`, the Lightning module and data, the checkpointing
    callbacks (resuming from checkpoints/ when it holds a run) and the Trainer."""
    import torch

    from .lightning_module import ClassifierModule, LogLines, TextDataModule
    from .text import TextEncoder

    tokenizer, settings, net = pretrained.load(backbone, splits.names, cfg)
    encoder = TextEncoder(tokenizer, settings)
    weights = (
        class_weights(splits.train_labels, splits.num_classes) if cfg.class_weighting else None
    )
    module = ClassifierModule(
        net,
        splits.num_classes,
        cfg.learning_rate,
        cfg.head_learning_rate,
        cfg.weight_decay,
        cfg.warmup_ratio,
        weights,
    )
    datamodule = TextDataModule(
        splits, encoder, cfg.batch_size, cfg.num_workers, cfg.group_by_length, cfg.seed
    )
    best, resume_from, spot = _checkpointing(cfg, splits, module)
    # per process: in DDP each one gets 1/world_size of the rows
    steps_per_epoch = -(-len(splits.train_texts) // (cfg.batch_size * cluster.world_size))
    log_lines = LogLines(every_n_steps=max(1, steps_per_epoch // 5))
    precision = resolve_precision(cfg.precision)
    trainer = _trainer(cfg, splits, cluster, [best, log_lines, spot], precision, steps_per_epoch)
    log.info(
        "fit %s",
        logs.kv(
            precision=precision,
            accelerator=trainer.accelerator.__class__.__name__,
            backbone=Path(backbone).name,
            torch_threads=torch.get_num_threads(),
        ),
    )
    return Job(
        module=module,
        datamodule=datamodule,
        encoder=encoder,
        tokenizer=tokenizer,
        trainer=trainer,
        best=best,
        log_lines=log_lines,
        spot=spot,
        resume_from=resume_from,
        precision=precision,
    )


def _checkpointing(cfg: TrainConfig, splits: Splits, module: ClassifierModule):
    """checkpoints/: the best epoch, the checkpoint to resume (refused when it is of
    another model) and the step and SIGTERM checkpoints."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from . import resume

    checkpoints = contract.checkpoints_dir()
    best = ModelCheckpoint(
        dirpath=checkpoints,
        filename="best",
        monitor="val_f1" if splits.has_validation else None,
        mode="max",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    found = resume.find_checkpoint(checkpoints)
    if found is not None:
        resume.check_fits(found, module)
        log.info(
            "resume %s", logs.kv(checkpoint=found.path, step=found.step, epoch=found.epoch + 1)
        )
    spot = resume.SpotCheckpoints(
        checkpoints, cfg.checkpoint_every_n_steps, found.step if found is not None else -1
    )
    return best, found, spot


def _trainer(
    cfg: TrainConfig,
    splits: Splits,
    cluster: distributed.Cluster,
    callbacks: list,
    precision: str,
    steps_per_epoch: int,
) -> L.Trainer:
    """One Trainer for one process or DDP; early stopping on val_f1 when there is
    validation; no progress bar (the log lines say it all)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping
    from lightning.pytorch.loggers import TensorBoardLogger

    if splits.has_validation and cfg.early_stopping_patience:
        stop = EarlyStopping("val_f1", mode="max", patience=cfg.early_stopping_patience)
        callbacks = [*callbacks, stop]
    return L.Trainer(
        max_epochs=cfg.epochs,
        **distributed.trainer_kwargs(cluster),
        precision=precision,
        accumulate_grad_batches=cfg.gradient_accumulation,
        callbacks=callbacks,
        logger=TensorBoardLogger(str(contract.tensorboard_dir()), name="", version=""),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if splits.has_validation else 0,
        deterministic=False,
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
    )


def train(job: Job, cluster: distributed.Cluster) -> float:
    """`trainer.fit`, from the resumed checkpoint if any; the seconds it took. SIGTERM
    becomes `Interrupted` (exit 143, no failure file); a lost peer, a ClusterError."""
    import torch
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    # Until Lightning installs its SIGTERM handler, after the hosts have met, SIGTERM keeps
    # its default action and ends the process at once (tini reports 143). Install no
    # Python handler before that: the rendezvous blocks in C++ (TCPStore, gloo), where a
    # Python handler only runs once TRAINING_DIST_TIMEOUT has run out (test_scale.py).
    ckpt_path = job.resume_from.path if job.resume_from else None
    started = time.perf_counter()
    try:
        job.trainer.fit(job.module, datamodule=job.datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:
        raise job.spot.interrupted(job.trainer) from None
    except torch.distributed.DistError as exc:
        if not cluster.distributed:
            raise
        raise distributed.explain_failure(cluster, exc) from exc
    return time.perf_counter() - started


def export(cfg: TrainConfig, splits: Splits, job: Job, elapsed: float) -> dict:
    """Rank 0: the best epoch's network into model/, its evaluation into output/data/."""
    from . import artifacts, evaluation

    net, checkpoint = _best_network(job)
    spec = artifacts.ModelSpec(labels=splits.names, text=job.encoder.settings, pooling=cfg.pooling)
    artifacts.write_model_dir(
        contract.model_dir(), checkpoint, spec, net.backbone.config, job.tokenizer
    )

    extra = {
        "best_epoch": int(checkpoint.get("epoch", -1)) + 1,  # 1-based, as in the log lines
        "epochs_run": job.trainer.current_epoch,
        "train_seconds": round(elapsed, 2),
        "train_samples_per_sec": round(job.log_lines.samples_per_second, 2),
        "train_step_cpu_seconds": round(job.log_lines.train_cpu_seconds, 3),
        "train_rows": len(splits.train_texts),
        "precision": job.precision,
    }
    report = evaluate(net, job.encoder, splits) if splits.has_validation else {}
    evaluation.write_results(contract.output_data_dir(), report, extra)
    log.info(
        "result %s",
        logs.kv(
            best_epoch=extra["best_epoch"],
            **(
                {"val_accuracy": report["accuracy"], "val_f1": report["macro_f1"]} if report else {}
            ),
            train_seconds=extra["train_seconds"],
            train_samples_per_sec=extra["train_samples_per_sec"],
        ),
    )
    return {**extra, **report}


def _best_network(job: Job):
    """The network with the best epoch's weights (the last epoch's without validation),
    and that checkpoint."""
    import torch

    best_path = job.best.best_model_path or job.best.last_model_path
    checkpoint = torch.load(best_path, map_location="cpu", weights_only=False)
    job.module.load_state_dict(checkpoint["state_dict"])
    return job.module.network.eval(), checkpoint


def evaluate(net, encoder: TextEncoder, splits: Splits) -> dict:
    """The classification report of `net` on the validation rows."""
    import torch

    from . import evaluation

    preds = []
    with torch.inference_mode():
        for start in range(0, len(splits.val_texts), 64):
            batch = encoder(splits.val_texts[start : start + 64])
            preds.append(net(batch["input_ids"], batch["attention_mask"]).argmax(-1))
    y_pred = torch.cat(preds).numpy()
    return evaluation.classification_report(splits.val_labels, y_pred, splits.names)


def run() -> None:
    # Scratch space outside the input channels, removed when the job ends: where a
    # pretrained model.tar.gz is extracted (TMPDIR chooses the disk).
    with tempfile.TemporaryDirectory(prefix="train-") as scratch:
        cfg, splits, backbone = prepare(Path(scratch))
        fit(cfg, splits, backbone)


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
