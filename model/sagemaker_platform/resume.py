"""Spot training: resumable checkpoints, SIGTERM, and a data order that survives a restart.

    checkpoints/last.ckpt   the one resumable checkpoint: rewritten at every epoch end (by
                            ModelCheckpoint), every `checkpoint_every_n_steps` optimizer
                            steps and on SIGTERM (by `SpotCheckpoints`)
    checkpoints/best.ckpt   the best epoch so far, also complete enough to resume from

SageMaker syncs checkpoints/ to `checkpoint_s3_uri` while the job runs and copies it back
onto every host when a job starts with the same URI. On start, `find_checkpoint` picks the
checkpoint with the highest global step, read from the file itself (a file downloaded
from S3 has the download's mtime, not the save's), and training continues from it.

Lightning resumes the loops, optimizer and scheduler; for a checkpoint saved mid-epoch
it also needs the training DataLoader to carry on where it stopped. `ResumableLoader`
counts the batches it handed out, `SpotCheckpoints` saves that count in the checkpoint
and, after a restart, has the loader skip as many, and `EpochShuffle` draws the same order
for the same epoch in every run: the rest of an interrupted epoch is exactly the batches
it had not seen yet.

Why not Lightning's own protocol (a loader with `state_dict`/`load_state_dict`): Lightning
2.6 drops the loader's state on resume when `configure_optimizers` reads
`trainer.estimated_stepping_batches`, as ours does for the LR schedule
(Lightning-AI/pytorch-lightning#20550). Its warning that the loader "is not resumable"
is therefore silenced here: this module resumes it.
"""

from __future__ import annotations

import logging
import os
import signal
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities.exceptions import SIGTERMException

from . import logs
from .errors import Interrupted, UserError
from .loaders import ResumableLoader

log = logging.getLogger("train")

RESUME_FILE = "last.ckpt"
_NEEDED = ("state_dict", "global_step", "epoch", "loops", "optimizer_states")

warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
# ModelCheckpoint's note on a non-empty checkpoints/: expected when resuming, and a
# checkpoint of another run is refused by `check_fits`.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


@dataclass(frozen=True)
class Found:
    """A resumable checkpoint: where it is, its global step, its (0-based) epoch."""

    path: Path
    step: int
    epoch: int
    shapes: dict[str, tuple[int, ...]] = field(repr=False, default_factory=dict)


def read_checkpoint(path: Path) -> Found | None:
    """The checkpoint's step and weight shapes, or None when it cannot resume a run.

    Memory-mapped and weights-only: nothing is copied into memory but the small values.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as exc:  # a truncated upload, a file of another format
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("checkpoint %s", logs.kv(skipped=path.name, reason=first[:200]))
        return None
    if not isinstance(ckpt, dict) or any(key not in ckpt for key in _NEEDED):
        return None
    shapes = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    return Found(path, int(ckpt["global_step"]), int(ckpt["epoch"]), shapes)


def find_checkpoint(directory: Path) -> Found | None:
    """The newest resumable checkpoint in `directory`: highest global step, last.ckpt
    before best.ckpt at the same step. None for a missing or empty directory."""
    if not directory.is_dir():
        return None
    paths = sorted(p for p in directory.glob("*.ckpt") if not p.is_symlink())
    found = [f for p in paths if (f := read_checkpoint(p))]
    if not found:
        return None
    return max(found, key=lambda f: (f.step, f.path.name == RESUME_FILE))


def check_folder(directory: Path) -> None:
    """The checkpoint folder holds files; any symbolic link in it (or as it) is refused,
    as a sync from checkpoint_s3_uri makes none. Through a link the job would read a
    checkpoint from outside the folder and resume from it, and write outside: Lightning
    saves best.ckpt to a temporary file and moves it onto the name, and a link there to
    a folder moves the checkpoint into that folder."""
    links = [directory] if directory.is_symlink() else []
    if directory.is_dir():
        links += sorted(p for p in directory.iterdir() if p.is_symlink())
    if links:
        link = links[0]
        what = "the checkpoint folder" if link == directory else f"{directory.name}/{link.name}"
        raise UserError(
            f"{what} is a symbolic link; the checkpoint folder must hold files only, as "
            "the job writes its checkpoints there: remove the link"
        )


def check_fits(found: Found, module: torch.nn.Module) -> None:
    """A checkpoint from another run (other classes, another backbone) is a UserError
    naming the first weight that differs, before Lightning fails on it mid-setup."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    for name in sorted(set(expected) | set(found.shapes)):
        if expected.get(name) != found.shapes.get(name):
            raise UserError(
                f"checkpoints/{found.path.name} is from another model: weight {name} has "
                f"shape {found.shapes.get(name)} there and {expected.get(name)} here. "
                "Use a fresh checkpoint_s3_uri for a new run, or empty the old one"
            )


def inside(path: object, folder: str | Path) -> str | None:
    """`path` as this job may use it: the real path of a `*.ckpt` file directly in
    `folder` (after resolving links and `..`), else None. A URL (`s3://...`) is never
    inside: a checkpoint's saved state names only the job's own files."""
    if not isinstance(path, str) or not path or "://" in path or "::" in path:
        return None
    try:
        real = Path(os.path.realpath(path))
        home = Path(os.path.realpath(folder))
        ok = real.parent == home and real.suffix == ".ckpt" and not real.is_dir()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return None
    return str(real) if ok else None


def _score(value: object) -> torch.Tensor | None:
    """A saved score: one number (a tensor or a float), not NaN; else None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        value = float(value)
    if type(value) not in (int, float) or value != value:
        return None
    return torch.tensor(float(value))


class EpochCheckpoints(ModelCheckpoint):
    """checkpoints/best.ckpt by the plug-in's metric, and last.ckpt at the end of every
    epoch.

    Lightning 2.6's `save_last=True` rewrites last.ckpt at an epoch end only when that
    epoch also saved a best checkpoint: after an epoch that did not improve, last.ckpt
    still held an older step, and a spot restart repeated the epoch. Here an epoch end
    that saved no best checkpoint saves last.ckpt alone. It happens inside this callback,
    which Lightning runs after the others, so the checkpoint holds this epoch's best score.

    On resume, Lightning restores the paths saved in last.ckpt (`best_model_path`,
    `last_model_path`, `best_k_models`, `kth_best_model_path`) as they are, and later
    deletes the "previous" best and last checkpoints by those paths, through fsspec: a
    checkpoint from checkpoint_s3_uri naming `checkpoints/../../x` or `s3://bucket/key`
    deleted that file or object. `load_state_dict` keeps only the paths of
    `*.ckpt` files in this job's checkpoint folder (see `inside`), and only scores that
    are numbers; the rest is dropped, in one log line. A run's own state is all inside,
    so a spot restart keeps its best score and best.ckpt as before.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict) if isinstance(state_dict, dict) else {}
        dropped: list[str] = []

        def path(key: str) -> str:
            value = state.get(key) or ""
            kept = inside(value, self.dirpath) if value else ""
            if kept is None:
                dropped.append(f"{key}={value}")
            return kept or ""

        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            state[key] = path(key)
        models = state.get("best_k_models")
        kept_models = {}
        for name, score in (models if isinstance(models, dict) else {}).items():
            real, value = inside(name, self.dirpath), _score(score)
            if real is None or value is None:
                dropped.append(f"best_k_models[{name}]")
            else:
                kept_models[real] = value
        state["best_k_models"] = kept_models
        if state["kth_best_model_path"] not in kept_models:
            state["kth_best_model_path"] = ""
        for key, default in (("best_model_score", None), ("kth_value", self.kth_value)):
            value = _score(state.get(key))
            state[key] = default if value is None else value
        state.setdefault("dirpath", self.dirpath)
        if dropped:
            log.warning(
                "resume %s",
                logs.kv(
                    ignored="outside_checkpoints",
                    entries=len(dropped),
                    first=dropped[0][:300],
                ),
            )
        super().load_state_dict(state)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._last_unless_saved(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._last_unless_saved(trainer)

    def _last_unless_saved(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class EarlyStop(EarlyStopping):
    """Lightning's EarlyStopping, whose state from a checkpoint is checked: Lightning
    restores `patience` too (a resumed job then ignored its own early_stopping_patience),
    and any type in any field (a string patience failed the job mid-epoch). Here the
    job's patience stands; the waited epochs, a number in [0, patience]; the best score, a
    number; anything else starts afresh. Same state key as EarlyStopping, so checkpoints
    written before keep resuming."""

    @property
    def state_key(self) -> str:
        return "EarlyStopping" + repr({"monitor": self.monitor, "mode": self.mode})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict if isinstance(state_dict, dict) else {}
        wait, stopped = state.get("wait_count"), state.get("stopped_epoch")
        best = _score(state.get("best_score"))
        self.wait_count = wait if type(wait) is int and 0 <= wait <= self.patience else 0
        self.stopped_epoch = stopped if type(stopped) is int and 0 <= stopped < 2**31 else 0
        if best is not None:
            self.best_score = best
        reason = state.get("stopping_reason")
        valid = {r.value for r in EarlyStoppingReason}
        self.stopping_reason = EarlyStoppingReason(reason if reason in valid else 0)
        message = state.get("stopping_reason_message")
        self.stopping_reason_message = message[:500] if isinstance(message, str) else None


class SpotCheckpoints(L.Callback):
    """Rewrites checkpoints/last.ckpt every `every_n_steps` optimizer steps and when
    Lightning stops the run on SIGTERM.

    Lightning's own SIGTERM handler (`_SignalConnector`) only raises a flag; the training
    loop finishes the batch in progress and then raises `SIGTERMException`, which reaches
    `on_exception` here. The checkpoint is written at once (to a temporary name, then
    renamed, so that a kill mid-write leaves the previous one intact) and `fit` turns the
    exception into `Interrupted`: exit 143, no failure file.

    A SIGTERM that lands in the middle of validation keeps the previous checkpoint: a
    half-validated epoch would resume with a partial val_f1 and could pick the wrong best.
    Every rank calls `trainer.save_checkpoint` (which only writes on rank 0).
    """

    def __init__(self, dirpath: Path, every_n_steps: int = 0, resume_step: int = -1):
        self.dirpath = dirpath
        self.every_n_steps = every_n_steps
        self.resume_step = resume_step
        self._last_step = -1  # the step of the last checkpoint this run wrote
        self._loader: ResumableLoader | None = None
        self._resume_position = 0  # batches of its epoch the resumed checkpoint had seen

    def state_dict(self) -> dict[str, int]:
        return {"data_position": self._loader.position if self._loader is not None else 0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # A count of batches; `on_train_start` bounds it by the epoch's batches.
        position = state.get("data_position", 0) if isinstance(state, dict) else None
        if type(position) is not int or not 0 <= position < 2**62:
            log.warning("resume %s", logs.kv(ignored="data_position", value=str(position)[:100]))
            position = 0
        self._resume_position = position

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Every rank reads its own checkpoints/; on SageMaker every host gets the same copy
        # of checkpoint_s3_uri. Ranks that would start from different steps would run a
        # different number of steps and wait on each other forever: refuse instead.
        if trainer.world_size > 1:
            # max(step) and max(-step) = -min(step) in one all-reduce
            steps = torch.tensor(
                [self.resume_step, -self.resume_step], device=trainer.strategy.root_device
            )
            torch.distributed.all_reduce(steps, op=torch.distributed.ReduceOp.MAX)
            highest, lowest = int(steps[0]), -int(steps[1])
            if highest != lowest:
                raise UserError(
                    f"the hosts would resume from different steps (from {lowest} to {highest}; "
                    "-1 is none): every host needs the same checkpoints/, which SageMaker "
                    "copies from checkpoint_s3_uri onto each host"
                )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loader = trainer.train_dataloader
        self._loader = loader if isinstance(loader, ResumableLoader) else None
        # 0 < position < batches: saved mid-epoch (a full count is an epoch-end save).
        if self._loader is not None and 0 < self._resume_position < trainer.num_training_batches:
            self._loader.skip_next(self._resume_position)
            log.info(
                "resume %s",
                logs.kv(
                    epoch=trainer.current_epoch + 1,
                    skip_batches=self._resume_position,
                    of=trainer.num_training_batches,
                ),
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step  # optimizer steps: unchanged by an accumulating batch
        if not self.every_n_steps or step % self.every_n_steps or step in (0, self._last_step):
            return
        if batch_idx + 1 >= trainer.num_training_batches:
            # The epoch-end checkpoint follows validation. One saved here, before it, would
            # resume as a finished epoch whose validation never ran.
            return
        self.save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        if trainer.validating or trainer.global_step == self._last_step:
            return  # keep the last complete checkpoint (see the class docstring)
        self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        final = self.dirpath / RESUME_FILE
        partial = final.with_name(final.name + ".partial")
        trainer.save_checkpoint(partial)
        if trainer.is_global_zero:
            os.replace(partial, final)
            log.info("checkpoint %s", logs.kv(step=trainer.global_step, path=final))
        self._last_step = trainer.global_step

    def interrupted(self, trainer: L.Trainer) -> Interrupted:
        """Log where the run stopped and what a restart resumes from (rank 0 holds the
        checkpoints); the exception for `run_job`."""
        line: dict[str, Any] = {"signal": "SIGTERM", "step": trainer.global_step}
        if trainer.is_global_zero:
            newest = find_checkpoint(self.dirpath)
            line["checkpoint"] = newest.path if newest else "none"
            line["checkpoint_step"] = newest.step if newest else -1
        log.warning("interrupted %s", logs.kv(**line, rank=trainer.global_rank))
        return Interrupted(signal.SIGTERM)
