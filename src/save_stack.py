"""Package the PlateReader (localizer + OCR) as one MLEM model: python -m src.save_stack.

    python -m src.save_stack [--models out/models] [--output out/mlem/plate_reader]

writes `out/mlem/plate_reader.mlem` (the metadata: method signature, requirements) and the folder
`out/mlem/plate_reader/` (the two model files, in the same format as out/models). Then

    mlem.api.load("out/mlem/plate_reader")            -> the PlateReader (same answers in-process)
    python -m src.serve                               -> MLEM's FastAPI server, POST /predict
    mlem serve fastapi --model out/mlem/plate_reader  -> the same, without our hardening

How the stack is described to MLEM (the classes below, found by MLEM through their import path
`src.save_stack.<Class>` when it reads the .mlem file, so run MLEM from the repository root):

- PlateReaderModelType: one method, `predict(image)`. The input is the *encoded image file*
  (MLEM's `binary` data type: the server takes it as a multipart upload) and is decoded by
  src.utils.images.load_image, the decoder the CLI uses: EXIF orientation, every colour mode,
  a pixel limit against decompression bombs, plain errors for anything that is not an image.
  In Python the method also takes a decoded (H, W[, C]) uint8 array.
- PlateReaderIO: stores the two networks with src.models.networks.save_model (weights and
  config, loaded with weights_only=True), not a pickle of Python objects, so a saved package
  keeps loading when the code around it changes.
- PlateAnswerType: the JSON answer {plate, canton, number, confidence, corners}, with a pydantic
  schema so /docs shows it.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import shutil
from typing import Any, ClassVar, Dict, Iterator, List, Optional, Type

# MLEM reports usage to a server unless told not to; this machine is offline.
os.environ.setdefault("MLEM_NO_ANALYTICS", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

import numpy as np  # noqa: E402
from mlem.core.artifacts import Artifacts, Storage  # noqa: E402
from mlem.core.data_type import (  # noqa: E402
    BinaryDataType,
    DataSerializer,
    DataType,
    DataWriter,
    WithDefaultSerializer,
)
from mlem.core.hooks import TOP_PRIORITY_VALUE, IsInstanceHookMixin  # noqa: E402
from mlem.core.model import Argument, ModelHook, ModelIO, ModelType, Signature  # noqa: E402
from mlem.core.requirements import InstallableRequirement, Requirements  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from src.models.networks import load_model, save_model  # noqa: E402
from src.stack.reader import PlateReader  # noqa: E402
from src.utils.errors import UserError, run_main  # noqa: E402
from src.utils.images import load_image  # noqa: E402

DEFAULT_MODELS = "out/models"
DEFAULT_OUTPUT = "out/mlem/plate_reader"  # MLEM adds ".mlem" for the metadata file
METHOD = "predict"
ARGUMENT = "image"
# Explicit MLEM type names equal to the import path: MLEM imports the class from the name when it
# reads a .mlem file in a fresh process, and `python -m src.save_stack` (module __main__) writes
# the same names as an import of src.save_stack would.
_PREFIX = "src.save_stack."


class PlateAnswer(BaseModel):
    """What POST /predict returns for one image."""

    plate: Optional[str]
    """The plate as printed, "ZH 123456"; null when no valid Swiss plate was read."""
    canton: Optional[str]
    """Canton code ("ZH"), null with no plate."""
    number: Optional[str]
    """The digits ("123456"), null with no plate."""
    confidence: float
    """With a plate: probability the reading is right. Without: probability there is none."""
    corners: Optional[List[List[float]]]
    """The plate's corners [[x, y] x 4] in image pixels (top-left, top-right, bottom-right,
    bottom-left), null with no plate."""

    class Config:
        title = "PlateAnswer"


class PlateAnswerType(WithDefaultSerializer, DataType):
    """MLEM data type of one PlateReader answer (a JSON-ready dict)."""

    type: ClassVar[str] = _PREFIX + "PlateAnswerType"

    def get_requirements(self) -> Requirements:
        return Requirements.new()

    def get_writer(self, project: str = None, filename: str = None, **kwargs) -> DataWriter:
        raise NotImplementedError("plate answers are JSON; they are not saved as MLEM data")


class PlateAnswerSerializer(DataSerializer[PlateAnswerType]):
    """Answer dict <-> JSON, validated against PlateAnswer."""

    data_class: ClassVar = PlateAnswerType
    is_default: ClassVar = True
    type: ClassVar[str] = _PREFIX + "PlateAnswerSerializer"

    def serialize(self, data_type, instance: dict) -> dict:
        return PlateAnswer.parse_obj(instance).dict()

    def deserialize(self, data_type, obj) -> dict:
        return PlateAnswer.parse_obj(obj).dict()

    def get_model(self, data_type, prefix: str = "") -> Type[BaseModel]:
        return PlateAnswer


class PlateReaderIO(ModelIO):
    """Saves a PlateReader as two model files (src.models.networks format), no pickled code."""

    type: ClassVar[str] = _PREFIX + "PlateReaderIO"
    files: ClassVar = ("localize/model.pt", "ocr/model.pt")

    def dump(self, storage: Storage, path: str, model: PlateReader) -> Artifacts:
        # Each network with the metadata it was saved with: the OCR's crop margin, both int8 copies.
        parts = ((model.localizer, model.localizer_extra), (model.ocr, model.ocr_extra))
        artifacts = {}
        for name, (network, extra) in zip(self.files, parts):
            with storage.open(posixpath.join(path, name)) as (f, art):
                save_model(network, f, extra)
            artifacts[name] = art
        return artifacts

    def load(self, artifacts: Artifacts) -> PlateReader:
        missing = [name for name in self.files if name not in artifacts]
        if missing:
            raise UserError(f"the MLEM package lacks {', '.join(missing)}: re-create it with "
                            "`python -m src.save_stack`")
        loaded = []
        for name in self.files:
            with artifacts[name].open() as f:
                loaded.append(load_model(f))
        (localizer, localizer_extra), (ocr, ocr_extra) = loaded
        return PlateReader(localizer, ocr, ocr_extra, localizer_extra)


class PlateReaderModelType(ModelType, ModelHook, IsInstanceHookMixin):
    """MLEM model type of a PlateReader: one method, predict(image) -> answer."""

    type: ClassVar[str] = _PREFIX + "PlateReaderModelType"
    valid_types: ClassVar = (PlateReader,)
    priority: ClassVar = TOP_PRIORITY_VALUE  # this hook, not MLEM's generic ones

    io: ModelIO = PlateReaderIO()

    @classmethod
    def process(cls, obj: Any, sample_data: Optional[Any] = None,
                methods_sample_data: Optional[Dict[str, Any]] = None,
                **kwargs) -> "PlateReaderModelType":
        signature = Signature(
            name=METHOD,
            args=[Argument(name=ARGUMENT, type_=BinaryDataType(), required=True)],
            returns=PlateAnswerType(),
        )
        return cls(methods={METHOD: signature}).bind(obj)

    def predict(self, image) -> dict:
        """Encoded image file (bytes) or decoded uint8 array -> the PlateReader's answer."""
        if not isinstance(image, np.ndarray):
            image = load_image(image)
        return self.model.predict(image)

    def get_requirements(self) -> Requirements:
        # The pip packages the package needs; the code itself is this repository (src/).
        return Requirements.new([InstallableRequirement.from_module(module)
                                 for module in _runtime_modules()])


def _runtime_modules():
    import PIL
    import torch

    return (torch, np, PIL)


def save_stack(models_dir: str = DEFAULT_MODELS, output: str = DEFAULT_OUTPUT):
    """Load the PlateReader from `models_dir` and save it as a MLEM model at `output`."""
    from mlem.api import save

    reader = PlateReader.load(models_dir)
    # Replace, never mix: a previous package's files must not survive next to the new ones.
    for stale in (output, output + ".mlem"):
        if os.path.isdir(stale):
            shutil.rmtree(stale)
        elif os.path.exists(stale):
            os.remove(stale)
    parent = os.path.dirname(output)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return save(reader, output)


def iter_files(output: str) -> Iterator[str]:
    yield output + ".mlem"
    for root, _, files in os.walk(output):
        for name in sorted(files):
            yield os.path.join(root, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.save_stack", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help="folder holding localize/model.pt and ocr/model.pt (default: %(default)s)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="MLEM model path, without .mlem (default: %(default)s)")
    args = parser.parse_args(argv)
    save_stack(args.models, args.output)
    for path in iter_files(args.output):
        print(f"wrote {path}")


if __name__ == "__main__":
    import importlib

    # Run the copy imported as src.save_stack, the module MLEM's type names point to.
    run_main(importlib.import_module("src.save_stack").main)
