"""Face embedders the user brings: an ONNX file registered with ``facelens models add``.

facelens cannot ship the strongest face models (their weights come under their
own licences), but it runs them: the user registers a file with its input
contract (crop size, colour order, normalisation ``(x - mean) / std``, the five
reference points the face is aligned on) given as options, read from a JSON
beside the file (``FILE.json``), or from a preset:

* ``arcface``: 112x112, RGB, ``(x - 127.5) / 127.5``, the ArcFace five-point layout;
* ``facenet``: 160x160, RGB, ``(x - 127.5) / 128``, the same layout scaled to 160.

The registry of user models is a JSON file in the user's data folder
(``$FACELENS_MODELS_FILE`` overrides it). It records the file's absolute path and
sha256; the file is checked against it every time it is loaded, and a changed file
is refused. Nothing is ever downloaded. A user model has no shipped calibration:
its decisions are refused until ``facelens calibrate`` has fitted one in the gallery.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import platformdirs

from facelens import settings
from facelens.errors import InputError, ModelIntegrityError
from facelens.models.spec import ModelSpec
from facelens.types import FloatArray, ImageArray
from facelens.vectors import unit_rows

__all__ = [
    "ARCFACE_112",
    "PRESETS",
    "add_user_fusion",
    "add_user_model",
    "models_file",
    "remove_user_model",
    "user_spec",
    "user_specs",
]

MODELS_FILE_ENV = settings.MODELS_FILE.name

ARCFACE_112 = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)
"""The ArcFace five-point layout in a 112x112 crop (x, y; image-left eye first)."""

PRESETS: dict[str, dict[str, Any]] = {
    "arcface": {"size": 112, "colour": "RGB", "mean": 127.5, "std": 127.5},
    "facenet": {"size": 160, "colour": "RGB", "mean": 127.5, "std": 128.0},
}
"""Input contracts of the common model families (the template is ArcFace's, scaled)."""

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class InputContract:
    """What the network takes: square crop side (pixels), colour order, normalisation,
    and where the five landmarks go in the crop."""

    size: int
    colour: Literal["RGB", "BGR"]
    mean: float
    std: float
    template: tuple[tuple[float, float], ...]

    def describe(self) -> str:
        return (
            f"{self.size}x{self.size} {self.colour}, (x - {self.mean:g}) / {self.std:g}, "
            "aligned on 5 points"
        )


def contract_from(options: dict[str, Any]) -> InputContract:
    """An input contract from ``preset`` and/or explicit fields (explicit ones win)."""
    preset = options.get("preset")
    if preset is not None and preset not in PRESETS:
        raise InputError(f"no preset {preset!r}; known: {', '.join(PRESETS)}")
    fields = {
        **PRESETS.get(preset or "", {}),
        **{k: v for k, v in options.items() if v is not None},
    }
    missing = [k for k in ("size", "colour", "mean", "std") if k not in fields]
    if missing:
        raise InputError(
            f"the model's input is not described: give {', '.join(missing)} (or --preset "
            f"{'/'.join(PRESETS)}, or a JSON beside the file)"
        )
    size = int(fields["size"])
    if not 16 <= size <= 1024:
        raise InputError(f"an input size of {size} pixels is not a face crop (16-1024)")
    colour = str(fields["colour"]).upper()
    if colour not in ("RGB", "BGR"):
        raise InputError(f"colour order must be RGB or BGR, not {colour!r}")
    if float(fields["std"]) == 0:
        raise InputError("std must not be 0")
    template = fields.get("template") or [(x * size / 112, y * size / 112) for x, y in ARCFACE_112]
    points = tuple((float(x), float(y)) for x, y in template)
    if len(points) != 5:
        raise InputError(f"the alignment template needs 5 points (x, y), not {len(points)}")
    return InputContract(size, colour, float(fields["mean"]), float(fields["std"]), points)  # type: ignore[arg-type]


def models_file() -> Path:
    """The user-model registry: ``$FACELENS_MODELS_FILE``, else the user data folder."""
    configured = settings.models_file()
    if configured:
        return configured
    return Path(platformdirs.user_data_dir("facelens")) / "models.json"


def _read_registry() -> dict[str, dict[str, Any]]:
    path = models_file()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a facelens model registry ({exc})") from exc
    return dict(data.get("models", {}))


def _write_registry(models: dict[str, dict[str, Any]]) -> None:
    path = models_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"models": models}, indent=2), encoding="utf-8")
    temporary.replace(path)


def add_user_model(
    model_id: str, file: Path, options: dict[str, Any], licence: str, builtin: set[str]
) -> dict[str, Any]:
    """Register ``file`` as the embedder ``model_id``; returns the registry entry.

    ``options`` (preset, size, colour, mean, std, template) complete those of the JSON
    beside the file (``FILE.json``), if any. The file must be an ONNX graph with one
    image input; its sha256 is recorded.
    """
    if not _ID.match(model_id):
        raise InputError(
            f"a model id is 2-64 of a-z 0-9 . _ -, starting with a letter or digit: {model_id!r}"
        )
    if model_id in builtin:
        raise InputError(f"{model_id} is a model shipped with facelens; choose another id")
    file = file.expanduser().resolve()
    if not file.is_file():
        raise InputError(f"{file}: no such file")
    beside = file.with_suffix(".json")
    described: dict[str, Any] = {}
    if beside.is_file():
        try:
            described = dict(json.loads(beside.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise InputError(f"{beside}: not JSON ({exc})") from exc
    contract = contract_from({**described, **{k: v for k, v in options.items() if v is not None}})
    data = file.read_bytes()
    try:
        graph = onnx.load_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and others
        raise InputError(f"{file}: not an ONNX model ({exc})") from exc
    inputs = [
        i for i in graph.graph.input if i.name not in {t.name for t in graph.graph.initializer}
    ]
    if len(inputs) != 1:
        raise InputError(f"{file}: an embedder takes one image input, this one takes {len(inputs)}")
    entry = {
        "id": model_id,
        "file": str(file),
        "sha256": hashlib.sha256(data).hexdigest(),
        "licence": licence or described.get("licence") or "as declared by the user: none given",
        "size": contract.size,
        "colour": contract.colour,
        "mean": contract.mean,
        "std": contract.std,
        "template": [list(p) for p in contract.template],
    }
    models = _read_registry()
    models[model_id] = entry
    _write_registry(models)
    return entry


def add_user_fusion(
    model_id: str,
    parts: list[tuple[str, float]],
    flipped: list[str],
    builtin: set[str],
    known: set[str],
) -> dict[str, Any]:
    """Register a score-level fusion (:mod:`facelens.models.fusion`) of embedders, any of
    them user models: ``parts`` are ``(embedder id, weight)``; ``flipped`` parts also
    read the mirror image. Like a user model, it needs ``facelens calibrate``."""
    if not _ID.match(model_id):
        raise InputError(f"a model id is 2-64 of a-z 0-9 . _ -: {model_id!r}")
    if model_id in builtin:
        raise InputError(f"{model_id} is a model shipped with facelens; choose another id")
    if len(parts) < 2:
        raise InputError("a fusion needs at least two embedders")
    for part, weight in parts:
        if part not in known or part == model_id:
            raise InputError(f"{part} is not a registered embedder (see `facelens models`)")
        if weight <= 0:
            raise InputError(f"the weight of {part} must be positive, not {weight}")
    for part in flipped:
        if part not in {p for p, _ in parts}:
            raise InputError(f"--flip {part}: not one of the fusion's parts")
    licences = ", ".join(p for p, _ in parts)
    entry = {
        "id": model_id,
        "parts": [[p, float(w)] for p, w in parts],
        "flipped": list(flipped),
        "licence": f"each part's own ({licences})",
    }
    models = _read_registry()
    models[model_id] = entry
    _write_registry(models)
    return entry


def remove_user_model(model_id: str) -> bool:
    """Forget a user model (its file is left alone); False if there was none."""
    models = _read_registry()
    if models.pop(model_id, None) is None:
        return False
    _write_registry(models)
    return True


class UserModelSpec(ModelSpec):
    """A user model's spec: its file is where the user keeps it, not inside a package."""

    def path(self) -> Path:
        return Path(self.file)

    def reinstall_advice(self) -> str:
        return (
            f"the file changed since it was registered; if the change is intended, register "
            f"it again: `facelens models add {self.id} {self.file} ...`"
        )


def user_specs() -> list[ModelSpec]:
    """Every registered user model."""
    return [_spec(entry) for entry in _read_registry().values()]


def user_spec(model_id: str) -> ModelSpec | None:
    entry = _read_registry().get(model_id)
    return None if entry is None else _spec(entry)


def _spec(entry: dict[str, Any]) -> ModelSpec:
    if "parts" in entry:  # a fusion: the registry loads and combines the parts
        parts = tuple((str(p), float(w)) for p, w in entry["parts"])
        return ModelSpec(
            id=entry["id"],
            task="embedder",
            family="user-fusion",
            package="",
            package_version="",
            module="",
            file="",
            sha256="",
            folded_digest="",
            licence=entry["licence"],
            upstream="registered by the user (facelens models add-fusion)",
            input_spec="each part's own",
            factory=None,
            parts=parts,
            flipped_parts=tuple(entry.get("flipped", ())),
        )
    contract = contract_from({k: entry[k] for k in ("size", "colour", "mean", "std", "template")})
    return UserModelSpec(
        id=entry["id"],
        task="embedder",
        family="user-onnx",
        package="user file",
        package_version="as registered",
        module="",
        file=entry["file"],
        sha256=entry["sha256"],
        folded_digest="",
        licence=entry["licence"],
        upstream="registered by the user (facelens models add); never downloaded",
        input_spec=contract.describe(),
        factory=_create,
        calibration_file=None,
    )


def _create(spec: ModelSpec, model_bytes: bytes, threads: int | None, runtime: str) -> OnnxEmbedder:
    entry = _read_registry().get(spec.id)
    if entry is None:
        raise ModelIntegrityError(f"{spec.id} is no longer registered")
    contract = contract_from({k: entry[k] for k in ("size", "colour", "mean", "std", "template")})
    return OnnxEmbedder(spec.id, model_bytes, contract, threads)


class OnnxEmbedder:
    """A user's ONNX face embedder; see :class:`facelens.models.base.Embedder`."""

    def __init__(
        self, model_id: str, model_bytes: bytes, contract: InputContract, threads: int | None
    ) -> None:
        from facelens.models.runtime import create_session

        self.model_id = model_id
        self.contract = contract
        self.input_size = (contract.size, contract.size)
        self.reference_landmarks: FloatArray = np.array(contract.template, dtype=np.float32)
        self._session = create_session(model_bytes, threads)
        self._input = self._session.get_inputs()[0]
        shape = self._input.shape
        self._channels_first = len(shape) == 4 and shape[1] == 3
        self._one_at_a_time = len(shape) == 4 and shape[0] == 1  # a fixed batch of one
        probe = self._run(np.zeros((1, contract.size, contract.size, 3), np.uint8))
        self.dimension = int(probe.shape[1])

    def embed(self, crops: ImageArray) -> FloatArray:
        """``(N, size, size, 3)`` RGB uint8 -> ``(N, dimension)`` float32, unit L2 norm."""
        if len(crops) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return unit_rows(self._run(crops))

    def _run(self, crops: ImageArray) -> np.ndarray:
        pixels = crops[..., ::-1] if self.contract.colour == "BGR" else crops
        blob = (pixels.astype(np.float32) - self.contract.mean) / self.contract.std
        if self._channels_first:
            blob = blob.transpose(0, 3, 1, 2)
        batches = [blob[i : i + 1] for i in range(len(blob))] if self._one_at_a_time else [blob]
        outputs = [
            np.asarray(self._session.run(None, {self._input.name: np.ascontiguousarray(b)})[0])
            for b in batches
        ]
        return np.concatenate(outputs).astype(np.float32).reshape(len(crops), -1)
