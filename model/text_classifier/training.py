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
from dataclasses import asdict
from pathlib import Path

from . import contract, distributed, logs, pretrained
from .config import TrainConfig, parse_hyperparameters
from .data import Splits, load_splits
from .errors import UserError, exit_with, run_job

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
    """Fine-tune, then write model/ and output/data/. Returns the evaluation report."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from . import artifacts, evaluation, resume
    from .lightning_module import ClassifierModule, LogLines, TextDataModule
    from .text import TextEncoder

    logs.quiet_libraries()
    cluster = distributed.resolve(contract.read_resource_config(), distributed.gpu_count())
    if cluster.distributed:
        os.environ.update(distributed.process_env(cluster))
        log.info("cluster %s", logs.kv(**distributed.describe(cluster)))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
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
    has_val = len(splits.val_texts) > 0
    checkpoints = contract.checkpoints_dir()
    best = ModelCheckpoint(
        dirpath=checkpoints,
        filename="best",
        monitor="val_f1" if has_val else None,
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
    # per process: in DDP each one gets 1/world_size of the rows
    steps_per_epoch = -(-len(splits.train_texts) // (cfg.batch_size * cluster.world_size))
    log_lines = LogLines(every_n_steps=max(1, steps_per_epoch // 5))
    callbacks = [best, log_lines, spot]
    if has_val and cfg.early_stopping_patience:
        callbacks.append(EarlyStopping("val_f1", mode="max", patience=cfg.early_stopping_patience))
    precision = resolve_precision(cfg.precision)
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        **distributed.trainer_kwargs(cluster),
        precision=precision,
        accumulate_grad_batches=cfg.gradient_accumulation,
        callbacks=callbacks,
        logger=TensorBoardLogger(str(contract.tensorboard_dir()), name="", version=""),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
        deterministic=False,
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
    )
    log.info(
        "fit %s",
        logs.kv(
            precision=precision,
            accelerator=trainer.accelerator.__class__.__name__,
            backbone=Path(backbone).name,
            torch_threads=torch.get_num_threads(),
        ),
    )
    started = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=found.path if found else None)
    except SIGTERMException:
        raise spot.interrupted(trainer) from None
    except torch.distributed.DistError as exc:
        if not cluster.distributed:
            raise
        raise distributed.explain_failure(cluster, exc) from exc
    elapsed = time.perf_counter() - started
    if not trainer.is_global_zero:
        # The best checkpoint is on rank 0's disk; rank 0 writes model/ and output/.
        log.info("done %s", logs.kv(rank=trainer.global_rank, steps=trainer.global_step))
        return {}

    best_path = best.best_model_path or best.last_model_path
    checkpoint = torch.load(best_path, map_location="cpu", weights_only=False)
    module.load_state_dict(checkpoint["state_dict"])
    net = module.network.eval()

    spec = artifacts.ModelSpec(labels=splits.names, text=settings, pooling=cfg.pooling)
    artifacts.write_model_dir(
        contract.model_dir(), checkpoint, spec, net.backbone.config, tokenizer
    )

    extra = {
        "best_epoch": int(checkpoint.get("epoch", -1)) + 1,  # 1-based, as in the log lines
        "epochs_run": trainer.current_epoch,
        "train_seconds": round(elapsed, 2),
        "train_samples_per_sec": round(log_lines.samples_per_second, 2),
        "train_step_cpu_seconds": round(log_lines.train_cpu_seconds, 3),
        "train_rows": len(splits.train_texts),
        "precision": precision,
    }
    report: dict = {}
    if has_val:
        preds = []
        with torch.inference_mode():
            for start in range(0, len(splits.val_texts), 64):
                batch = encoder(splits.val_texts[start : start + 64])
                preds.append(net(batch["input_ids"], batch["attention_mask"]).argmax(-1))
        y_pred = torch.cat(preds).numpy()
        report = evaluation.classification_report(splits.val_labels, y_pred, splits.names)
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
