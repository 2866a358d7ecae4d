"""The PlateReader as one MLEM model: networks, their metadata and the reader's settings.

    python -m platereader.stages.save_stack [--models out/models] [--output out/mlem/plate_reader]

writes `out/mlem/plate_reader.mlem` (the metadata: method signature, requirements) and the folder
`out/mlem/plate_reader/` (the two model files, in the format of out/models, and reader.json, the
`ReaderConfig`). Then

    mlem.api.load("out/mlem/plate_reader")            -> the PlateReader (same answers in-process)
    platereader serve                                 -> MLEM's FastAPI server, POST /predict
    mlem serve fastapi --model out/mlem/plate_reader  -> the same, without our hardening

How the stack is described to MLEM (the classes below, found by MLEM through their import path
`platereader.packaging.<Class>` when it reads the .mlem file):

- PlateReaderModelType: one method, `predict(image)`. The input is the *encoded image file*
  (MLEM's `binary` data type: the server takes it as a multipart upload) and is decoded by
  platereader.images.load_image, the decoder the CLI uses: EXIF orientation, every colour mode,
  a pixel limit against decompression bombs, plain errors for anything that is not an image.
  In Python the method also takes a decoded (H, W[, C]) uint8 array.
- PlateReaderIO: stores the two networks with platereader.nets.networks.save_model (weights and
  config, loaded with weights_only=True) and the reader's settings as JSON, not a pickle of Python
  objects: a saved package keeps loading, and answers the same, when the code around it changes.
- ImageAnswerType: the JSON answer {"plates": [{plate, text, format, confidence, corners, ...}]},
  with a pydantic schema so /docs shows it.
"""

from __future__ import annotations

import json
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

from platereader.nets.networks import load_model, save_model  # noqa: E402
from platereader.reader import PlateReader, ReaderConfig, answer_json  # noqa: E402
from platereader.errors import UserError  # noqa: E402
from platereader.images import load_image  # noqa: E402

DEFAULT_MODELS = "out/models"
DEFAULT_OUTPUT = "out/mlem/plate_reader"  # MLEM adds ".mlem" for the metadata file
METHOD = "predict"
ARGUMENT = "image"
# Explicit MLEM type names equal to the import path: MLEM imports the class from the name when it
# reads a .mlem file in a fresh process.
_PREFIX = "platereader.packaging."


class PlateAnswer(BaseModel):
    """One plate in an answer."""

    plate: str
    """The plate as printed in its format, "ZH 123456"."""
    text: str
    """Its characters as read, without separators: "ZH123456"."""
    format: str
    """The plate format it fits (platereader.formats), e.g. "swiss"."""
    confidence: float
    """Probability that this is a plate and reads so: presence x text confidence."""
    corners: List[List[float]]
    """The plate's corners [[x, y] x 4] in image pixels (top-left, top-right, bottom-right,
    bottom-left)."""

    class Config:
        title = "PlateAnswer"
        extra = "allow"  # the format's fields, e.g. canton and number for a Swiss plate


class ImageAnswer(BaseModel):
    """What POST /predict returns for one image: every plate, best first; [] when there is none."""

    plates: List[PlateAnswer]

    class Config:
        title = "ImageAnswer"


class ImageAnswerType(WithDefaultSerializer, DataType):
    """MLEM data type of the PlateReader's answer for one image (a JSON-ready dict)."""

    type: ClassVar[str] = _PREFIX + "ImageAnswerType"

    def get_requirements(self) -> Requirements:
        return Requirements.new()

    def get_writer(self, project: str = None, filename: str = None, **kwargs) -> DataWriter:
        raise NotImplementedError("plate answers are JSON; they are not saved as MLEM data")


class ImageAnswerSerializer(DataSerializer[ImageAnswerType]):
    """Answer dict <-> JSON, validated against ImageAnswer."""

    data_class: ClassVar = ImageAnswerType
    is_default: ClassVar = True
    type: ClassVar[str] = _PREFIX + "ImageAnswerSerializer"

    def serialize(self, data_type, instance: dict) -> dict:
        return ImageAnswer.parse_obj(instance).dict()

    def deserialize(self, data_type, obj) -> dict:
        return ImageAnswer.parse_obj(obj).dict()

    def get_model(self, data_type, prefix: str = "") -> Type[BaseModel]:
        return ImageAnswer


class PlateReaderIO(ModelIO):
    """Saves a PlateReader as two model files (platereader.nets format) and reader.json."""

    type: ClassVar[str] = _PREFIX + "PlateReaderIO"
    networks: ClassVar = ("localize/model.pt", "ocr/model.pt")
    settings: ClassVar = "reader.json"

    def dump(self, storage: Storage, path: str, model: PlateReader) -> Artifacts:
        # Each network with the metadata it was saved with: margins, input and crop sizes, int8 copies.
        parts = ((model.localizer, model.localizer_extra), (model.ocr, model.ocr_extra))
        artifacts = {}
        for name, (network, extra) in zip(self.networks, parts):
            with storage.open(posixpath.join(path, name)) as (f, art):
                save_model(network, f, extra)
            artifacts[name] = art
        with storage.open(posixpath.join(path, self.settings)) as (f, art):
            f.write(json.dumps(model.config.to_dict(), indent=2, sort_keys=True).encode())
        artifacts[self.settings] = art
        return artifacts

    def load(self, artifacts: Artifacts) -> PlateReader:
        missing = [name for name in (*self.networks, self.settings) if name not in artifacts]
        if missing:
            raise UserError(f"the MLEM package lacks {', '.join(missing)}: re-create it with "
                            "`dvc repro save_stack`")
        loaded = []
        for name in self.networks:
            with artifacts[name].open() as f:
                loaded.append(load_model(f))
        with artifacts[self.settings].open() as f:
            config = ReaderConfig.from_dict(json.loads(f.read()))
        (localizer, localizer_extra), (ocr, ocr_extra) = loaded
        return PlateReader(localizer, ocr, ocr_extra, localizer_extra, config)


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
            returns=ImageAnswerType(),
        )
        return cls(methods={METHOD: signature}).bind(obj)

    def predict(self, image) -> dict:
        """Encoded image file (bytes) or decoded uint8 array -> the PlateReader's answer."""
        if not isinstance(image, np.ndarray):
            image = load_image(image)
        return answer_json(self.model.read([image])[0])

    def get_requirements(self) -> Requirements:
        # The pip packages the package needs; the code itself is this repository (src/).
        return Requirements.new([InstallableRequirement.from_module(module)
                                 for module in _runtime_modules()])


def _runtime_modules():
    import PIL
    import torch

    return (torch, np, PIL)


def save_stack(reader: PlateReader, output: str = DEFAULT_OUTPUT):
    """Save `reader` as a MLEM model at `output`, replacing what was there."""
    from mlem.api import save

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


def load_package(model: str = DEFAULT_OUTPUT):
    """The MLEM model metadata at `model` (path without .mlem), loaded, checked to be a plate reader."""
    from mlem.core.errors import MlemError
    from mlem.core.metadata import load_meta

    if model.endswith(".mlem"):
        model = model[: -len(".mlem")]
    if not os.path.isfile(model + ".mlem"):
        raise UserError(f"no MLEM model at {model} ({model}.mlem is missing): create it with "
                        "`dvc repro save_stack`")
    try:
        meta = load_meta(model, load_value=True)
    except (MlemError, OSError, ValueError) as exc:
        raise UserError(f"cannot load the MLEM model at {model} ({exc}): re-create it with "
                        "`dvc repro save_stack`") from None
    if not isinstance(meta.model_type, PlateReaderModelType):
        raise UserError(f"{model} is a MLEM model but not a plate reader package: create one with "
                        "`dvc repro save_stack`")
    return meta


def load_reader(model: str = DEFAULT_OUTPUT) -> PlateReader:
    """The PlateReader packaged at `model`, with the settings it was packaged with."""
    return load_package(model).model_type.model
