"""Images: a small CNN that classifies pictures, trained from a channel of image files
in label folders (`train/<label>/<name>.png`, the ImageFolder layout) and served from
PNG or JPEG bodies and JSON. Train with `model=image_classifier`; the worked example of
a plug-in that reads its channels' files itself (`data = "files"`).

    config.py            Hyperparameters (image_size, width, blocks, ...)
    image.py             THE decoding and preprocessing path both sides use (Pillow)
    data.py              the platform's file listing -> labels and the split (reads no image)
    network.py           the plain nn.Module (a small CNN), rebuilt by serving
    lightning_module.py  the Dataset that opens each file, the LightningModule, the DataModule
    artifacts.py         its files in the model directory: labels.json, network.json
    inference.py         the loaded model: stacks decoded images, runs the network
    codecs.py            requests (image/png, image/jpeg, application/x-image, JSON of
                         base64 images, JSON Lines) and answers
    sample.py            pictures of shapes and requests, for the demo and tests

Imports stay light here: the platform imports this package in `serve` and before
checking the data in `train`; Pillow loads with the first image, torch and Lightning
after `prepare`. Every import inside the package is relative, so the folder works the
same under another name, anywhere on PYTHONPATH.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sagemaker_platform.codecs import top_k
from sagemaker_platform.plugin import Monitor, Plugin, TrainContext, TrainingData

from . import codecs
from .config import Hyperparameters, check_shape


class ImageClassifierPlugin(Plugin):
    name = "image_classifier"
    Hyperparameters = Hyperparameters
    data = "files"  # the platform lists the channels' files; the Dataset opens them
    metrics = ("val_loss", "val_accuracy", "val_f1")
    content_types = codecs.CONTENT_TYPES
    accept_types = codecs.ACCEPT_TYPES

    # --- training ------------------------------------------------------------------------
    def prepare(self, hp: Hyperparameters, data: TrainingData):
        from .data import load_rows

        check_shape(hp.image_size, hp.blocks)
        return load_rows(data)

    def summary(self, rows) -> dict[str, Any]:
        return {
            "train_images": len(rows.train),
            "val_images": len(rows.val),
            "classes": len(rows.names),
            "validation": rows.validation,
        }

    def vocabulary(self, rows) -> dict[str, Any]:
        return {"classes": list(rows.names)}

    def build(self, hp: Hyperparameters, rows, ctx: TrainContext):
        from sagemaker_platform.splitting import class_weights

        from .lightning_module import ImageDataModule, ImageModule
        from .network import SmallCNN

        net = SmallCNN(len(rows.names), hp.image_size, hp.width, hp.blocks, hp.dropout)
        weights = class_weights(rows.train.labels, len(rows.names)) if hp.class_weighting else None
        module = ImageModule(net, len(rows.names), hp.learning_rate, hp.weight_decay, weights)
        datamodule = ImageDataModule(rows, hp.image_size, ctx.batch_size, ctx.num_workers, ctx.seed)
        return module, datamodule

    def monitor(self, hp: Hyperparameters, rows) -> Monitor | None:
        return Monitor("val_f1", "max") if rows.has_validation else None

    def export(self, hp: Hyperparameters, rows, module, model_dir: Path) -> None:
        from . import artifacts

        artifacts.write_model_dir(model_dir, rows.names, module.network.config)

    def evaluate(self, hp: Hyperparameters, rows, module, out_dir: Path) -> dict:
        import torch

        from sagemaker_platform import evaluation

        from .lightning_module import ImageDataModule

        loader = ImageDataModule(rows, hp.image_size, 64, 0, 0).val_dataloader()
        net = module.network.eval()
        with torch.inference_mode():
            preds = torch.cat([net(images).argmax(-1) for images, _ in loader]).numpy()
        return evaluation.classification_evaluation(rows.val.labels, preds, rows.names, out_dir)

    # --- serving -------------------------------------------------------------------------
    def check(self, model_dir: Path) -> None:
        from . import artifacts

        artifacts.read_spec(model_dir)

    def load(self, model_dir: Path, runtime):
        from .inference import ImageModel

        return ImageModel(model_dir, runtime)

    def sample_request(self, model) -> tuple[bytes, str]:
        """A grey PNG of the model's size: the platform sends it through decode, predict
        and encode (every Accept type) before /ping says ready."""
        import numpy as np

        from .image import encode_png

        body = encode_png(np.full((model.image_size, model.image_size, 3), 128, np.uint8))
        return body, codecs.PNG

    def decode(self, model, body: bytes, content_type: str, options: Mapping[str, str]):
        top_k(options, len(model.labels))  # a bad top_k is a 400 before any work
        return codecs.decode(body, content_type, model.image_size)

    def predict(self, model, records: Sequence[codecs.ImageRecord]):
        """Class probabilities, one row per record."""
        import numpy as np

        return model.predict(np.stack([r.pixels for r in records]))

    def encode(self, model, records, outputs, accept: str, options: Mapping[str, str]) -> str:
        k = top_k(options, len(model.labels))
        return codecs.encode(records, outputs, model.labels, accept, k)


plugin = ImageClassifierPlugin()
