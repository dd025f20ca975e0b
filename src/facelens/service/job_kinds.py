"""The registry of background job kinds: what each takes, checks and produces.

Adding a kind means one :class:`JobKind` in :data:`JOB_KINDS` (via
:func:`register`): its name (the URL ``POST /api/jobs/<name>``), the role
needed, the upload it takes (``video`` or ``zip``), the parameters it
accepts (name -> type), and a ``run(job, context)`` that writes its output
into ``job.output_dir``, reports progress with ``job.progress(fraction,
message)`` and returns ``{"file": <name in output_dir>, "media_type": ...,
"summary": {...}}``. A kind whose code is not installed (its module is
missing) is not offered.

Kinds now: ``identify_photos`` (a zip of photos -> JSON of every face's
identity), ``video_identify`` (a video -> JSON timeline of who appears when,
or with ``draw`` the annotated video; :mod:`facelens.apps.video.identify`)
and ``anonymize`` (an image or a video -> the same with faces hidden, plus
JSON and HTML reports; :mod:`facelens.apps.anonymize`). A result may have
several files (``result["files"]``); ``file`` is the main one.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from facelens.errors import FaceLensError, ImageDecodeError
from facelens.service.context import ServiceContext
from facelens.service.errors import InvalidRequestError, RequestTooLargeError, VideoTooLongError
from facelens.service.jobs import JobContext
from facelens.service.keys import Role
from facelens.service.limits import decode_image

__all__ = ["JobKind", "available_kinds", "check_media", "check_video", "check_zip", "register"]

Upload = Literal["video", "zip", "media"]
"""What a kind takes: a video, a zip of photos, or ``media`` (one image or one video)."""
ParamType = type[bool] | type[int] | type[float] | type[str]
Limits = dict[str, Any]
"""JSON Schema keywords a parameter's value must meet: minimum, maximum, exclusiveMinimum,
exclusiveMaximum, enum, maxLength (checked by :meth:`JobKind.check_params`, and published in
the OpenAPI schema)."""

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
OPERATING_POINT_LIMITS: dict[str, Limits] = {
    "fmr": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "threshold": {"minimum": -1, "maximum": 1},
}


@dataclass(frozen=True)
class JobKind:
    """One kind of background job (see the module docstring)."""

    name: str
    description: str
    upload: Upload
    run: Callable[[JobContext, ServiceContext], dict[str, Any]]
    role: Role = "query"
    params: dict[str, ParamType] = field(default_factory=dict)
    module: str | None = None  # the module the kind needs; the kind is hidden without it
    limits: dict[str, Limits] = field(default_factory=dict)
    exclusive: tuple[tuple[str, str], ...] = ()  # pairs of parameters never given together
    elsewhere: dict[str, str] = field(default_factory=dict)  # parameter -> where it is taken

    @property
    def available(self) -> bool:
        return self.module is None or importlib.util.find_spec(self.module) is not None

    def check_params(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The parameters with their declared types; unknown or mistyped ones are refused."""
        checked: dict[str, Any] = {}
        for name, value in raw.items():
            expected = self.params.get(name)
            if name in self.elsewhere:
                raise InvalidRequestError(f"{self.name} takes no {name!r}: {self.elsewhere[name]}")
            if expected is None:
                allowed = ", ".join(self.params) or "none"
                raise InvalidRequestError(
                    f"{self.name} takes no parameter {name!r} (allowed: {allowed})"
                )
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise InvalidRequestError(f"parameter {name!r} must be {_TYPE_WORDS[expected]}")
            _check_limits(name, value, self.limits.get(name, {}))
            checked[name] = value
        for first, second in self.exclusive:
            if first in checked and second in checked:
                raise InvalidRequestError(f"give {first!r} or {second!r}, not both")
        return checked

    def params_schema(self) -> dict[str, Any]:
        """The JSON Schema of this kind's ``params`` object (what :meth:`check_params` takes)."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                name: {"type": _JSON_TYPES[kind], **self.limits.get(name, {})}
                for name, kind in self.params.items()
            },
            "additionalProperties": False,
        }
        if self.exclusive:
            schema["not"] = {"anyOf": [{"required": list(pair)} for pair in self.exclusive]}
        return schema

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "description": self.description,
            "upload": self.upload,
            "role": self.role,
            "params": {name: t.__name__ for name, t in self.params.items()},
            "choices": {
                name: list(limit["enum"]) for name, limit in self.limits.items() if "enum" in limit
            },
        }


def _check_limits(name: str, value: Any, limits: Limits) -> None:
    """Refuse ``value`` outside the JSON Schema keywords of ``limits``."""
    if isinstance(value, bool):
        return
    problems: dict[str, Callable[[Any], bool]] = {
        "minimum": lambda bound: bool(value < bound),
        "maximum": lambda bound: bool(value > bound),
        "exclusiveMinimum": lambda bound: bool(value <= bound),
        "exclusiveMaximum": lambda bound: bool(value >= bound),
        "enum": lambda allowed: value not in allowed,
        "maxLength": lambda most: len(value) > most,
    }
    for keyword, bound in limits.items():
        if problems[keyword](bound):
            raise InvalidRequestError(
                f"parameter {name!r} must be {_LIMIT_WORDS[keyword](bound)}, not {value!r}"
            )


_LIMIT_WORDS: dict[str, Callable[[Any], str]] = {
    "minimum": lambda bound: f"at least {bound}",
    "maximum": lambda bound: f"at most {bound}",
    "exclusiveMinimum": lambda bound: f"more than {bound}",
    "exclusiveMaximum": lambda bound: f"less than {bound}",
    "enum": lambda allowed: "one of " + ", ".join(str(a) for a in allowed),
    "maxLength": lambda most: f"at most {most} characters long",
}
"""Each JSON Schema keyword of the job parameters' limits, as the words of a refusal."""


JOB_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    JOB_KINDS[kind.name] = kind
    return kind


def available_kinds() -> dict[str, JobKind]:
    return {name: kind for name, kind in JOB_KINDS.items() if kind.available}


# --- checks of an upload before its job is queued ---------------------------------------------

MAX_ZIP_MEMBERS = 2000


def check_zip(path: Path, max_total_bytes: int) -> list[zipfile.ZipInfo]:
    """The image members of a zip, refusing bombs (declared sizes) and damaged archives."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImageDecodeError(f"not a readable zip archive ({exc})") from exc
    if len(members) > MAX_ZIP_MEMBERS:
        raise RequestTooLargeError(
            f"{len(members)} files in the zip; the limit is {MAX_ZIP_MEMBERS}"
        )
    total = sum(m.file_size for m in members)
    if total > max_total_bytes:
        raise RequestTooLargeError(
            f"the zip unpacks to {total:,} bytes; the limit is {max_total_bytes:,}"
        )
    if not members:
        raise InvalidRequestError("the zip holds no file")
    return members


def check_video(path: Path, max_seconds: float, max_pixels: int) -> dict[str, float]:
    """Probe an uploaded video (container metadata, no decoding) and check its length and size.

    Raises :class:`~facelens.errors.VideoOpenError` (422) for a file that is
    not a readable video, :class:`VideoTooLongError` (413) above ``max_seconds``,
    :class:`RequestTooLargeError` for frames above ``max_pixels``. The jobs
    also stop reading at ``max_seconds``, whatever the container claims.
    """
    from facelens.video.reader import probe_video

    info = probe_video(path)
    if info.width * info.height > max_pixels:
        raise RequestTooLargeError(
            f"frames of {info.width}x{info.height} are above the limit of {max_pixels:,} pixels"
        )
    fps = float(info.fps or 0)
    seconds = info.duration
    if seconds is None and info.frame_count and fps > 0:
        seconds = info.frame_count / fps
    if seconds is None or fps <= 0:
        raise ImageDecodeError("the video does not state its length and frame rate")
    if seconds > max_seconds:
        raise VideoTooLongError(
            f"the video lasts {seconds:.0f} s; the limit is {max_seconds:.0f} s"
        )
    return {
        "seconds": round(seconds, 3),
        "fps": round(fps, 3),
        "width": info.width,
        "height": info.height,
    }


# What an upload holds, from its bytes: the name and the declared content type do not decide.

_IMAGE_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tiff"}


def sniff_media(path: Path) -> tuple[Literal["image", "video"], str]:
    """``("image", suffix)`` when Pillow recognises the bytes of ``path``, else ``("video", "")``.

    The suffix is the one to write the image back in (``.png`` for formats
    without a writer here). Only the header is read; a file Pillow recognises
    but cannot open (too large, damaged) is an image, whose decoding then
    says what is wrong. Whether a non-image is a readable video is for
    :func:`check_video` to say.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return "image", _IMAGE_SUFFIXES.get(str(picture.format), ".png")
    except UnidentifiedImageError:
        return "video", ""
    except Exception:  # a known format that does not open: decode_image reports why
        return "image", ".png"


def check_media(path: Path, label: str, max_seconds: float, max_pixels: int) -> dict[str, Any]:
    """Check an upload that may be an image or a video (sniffed, see :func:`sniff_media`)."""
    kind, _ = sniff_media(path)
    if kind == "image":
        image = decode_image(path.read_bytes(), label, max_pixels)
        return {"image": {"width": image.width, "height": image.height}}
    try:
        return {"video": check_video(path, max_seconds, max_pixels)}
    except FaceLensError as error:
        if error.code != "video_open_failed":
            raise
        raise ImageDecodeError(f"{label}: neither an image nor a video that can be read") from error


def _count(number: int, noun: str) -> str:
    """``"1 frame"``, ``"2 frames"``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _share_reporter(
    job: JobContext, start: float = 0.0, end: float = 0.95
) -> Callable[[float, str], None]:
    """``job.progress`` for work that tells its share done in [0, 1], mapped into
    [``start``, ``end``] and recorded once per percent (each record is a database write)."""
    last = -1.0

    def report(share: float, message: str) -> None:
        nonlocal last
        fraction = start + (end - start) * min(max(share, 0.0), 1.0)
        if fraction - last >= 0.01:
            last = fraction
            job.progress(fraction, message)

    return report


# --- identify_photos ---------------------------------------------------------------------------


def _run_identify_photos(job: JobContext, context: ServiceContext) -> dict[str, Any]:
    settings = context.settings
    members = check_zip(job.input_path, settings.max_upload_bytes * 4)
    lens = context.lens
    point = lens.operating_point(job.params.get("fmr"), job.params.get("threshold"))
    top_k = int(job.params.get("top_k", 5))
    results: list[dict[str, Any]] = []

    with zipfile.ZipFile(job.input_path) as archive:
        for index, member in enumerate(members):
            job.progress(index / len(members), f"{index} of {_count(len(members), 'photo')}")
            label = member.filename
            try:
                if member.file_size > settings.max_request_bytes:
                    raise RequestTooLargeError(
                        f"{label}: {member.file_size:,} bytes; a photo may have at most "
                        f"{settings.max_request_bytes:,}"
                    )
                with archive.open(member) as handle:
                    data = handle.read(member.file_size + 1)
                if len(data) > member.file_size:
                    raise ImageDecodeError(f"{label}: larger than the zip declares")
                image = decode_image(data, label, settings.max_pixels)
                faces = context.analysing(partial(lens.pipeline.detect, image))
                matches = lens.gallery_search.match(faces, point, top_k)
                results.append({"photo": label, "faces": [m.to_dict() for m in matches]})
            except Exception as error:  # one bad photo never sinks the batch
                code = getattr(error, "code", "decode_failed")
                results.append({"photo": label, "error": {"code": code, "message": str(error)}})
    out = job.output_dir / "identify.json"
    out.write_text(json.dumps({"threshold": point.threshold, "fmr": point.fmr, "photos": results}))
    identified = sorted(
        {f["identity"] for r in results for f in r.get("faces", []) if f.get("identity")}
    )
    return {
        "file": out.name,
        "media_type": "application/json",
        "summary": {
            "photos": len(results),
            "failed": sum(1 for r in results if "error" in r),
            "faces": sum(len(r.get("faces", [])) for r in results),
            "identified": identified,
        },
    }


register(
    JobKind(
        name="identify_photos",
        description="Identify every face of every photo in a zip; result: one JSON file",
        upload="zip",
        run=_run_identify_photos,
        params={"fmr": float, "threshold": float, "top_k": int},
        limits={**OPERATING_POINT_LIMITS, "top_k": {"minimum": 1, "maximum": 50}},
        exclusive=(("fmr", "threshold"),),
    )
)


def without_server_paths(data: Any, job: JobContext) -> Any:
    """``data`` with the server's file paths replaced by the upload's name and output file names."""
    if isinstance(data, dict):
        return {key: without_server_paths(value, job) for key, value in data.items()}
    if isinstance(data, list):
        return [without_server_paths(value, job) for value in data]
    if isinstance(data, str):
        data = data.replace(str(job.input_path), job.job.input_name)
        return data.replace(str(job.output_dir) + "/", "")
    return data


# --- video_identify ----------------------------------------------------------------------------


def _run_video_identify(job: JobContext, context: ServiceContext) -> dict[str, Any]:
    from facelens.apps.video.identify import identify_video

    params = job.params
    lens = context.lens
    point = lens.operating_point(params.get("fmr"), params.get("threshold"))
    every = max(1, int(params.get("every", 1)))
    info = check_video(
        job.input_path, context.settings.max_video_seconds, context.settings.max_pixels
    )
    analysed = max(1.0, info["seconds"] * info["fps"] / every)
    if params.get("fps"):
        analysed = max(1.0, min(analysed, info["seconds"] * float(params["fps"])))
    drawing = info["seconds"] * info["fps"] if params.get("draw") else 0.0  # every frame
    report = _share_reporter(job)
    done = 0

    def advance(frames: int) -> None:  # frames analysed, then frames drawn (with draw)
        nonlocal done
        done += frames
        if done <= analysed or not drawing:
            message = f"{_count(done, 'frame')} analysed"
        else:
            message = f"{_count(done - round(analysed), 'frame')} drawn"
        report(done / (analysed + drawing), message)

    drawn = job.output_dir / "annotated.mp4" if params.get("draw") else None
    result = context.analysing(
        lambda: identify_video(
            job.input_path,
            lens.pipeline,
            lens.gallery.template_matrix(),
            point,
            lens.calibration,
            every=every,
            fps=params.get("fps"),
            end=context.settings.max_video_seconds,  # whatever the container claimed
            aggregation=lens.aggregation,
            draw_to=drawn,
            progress=advance,
        )
    )
    report = without_server_paths(result.to_dict(), job)
    timeline = job.output_dir / "timeline.json"
    timeline.write_text(json.dumps(report, indent=2))
    (job.output_dir / "timeline.csv").write_text(result.to_csv())
    files = [timeline.name, "timeline.csv"] + ([drawn.name] if drawn else [])
    return {
        "file": drawn.name if drawn else timeline.name,
        "media_type": "video/mp4" if drawn else "application/json",
        "files": files,
        "summary": {
            "people": result.people,
            "tracks": len(result.tracks),
            "frames_processed": result.frames_processed,
            "complete": result.complete,
            "problems": report.get("problems", []),  # why it is not complete, in words
        },
    }


register(
    JobKind(
        name="video_identify",
        description="Who appears in a video and when (one decision per face track); "
        "draw=true also makes an annotated copy",
        upload="video",
        run=_run_video_identify,
        params={"fmr": float, "threshold": float, "every": int, "fps": float, "draw": bool},
        module="facelens.apps.video.identify",
        limits={
            **OPERATING_POINT_LIMITS,
            "every": {"minimum": 1},
            "fps": {"exclusiveMinimum": 0, "maximum": 1000},
        },
        exclusive=(("fmr", "threshold"),),
    )
)


# --- anonymize ---------------------------------------------------------------------------------

_METHODS = ("blur", "pixelate", "box", "ellipse")


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _run_anonymize(job: JobContext, context: ServiceContext) -> dict[str, Any]:
    from facelens.apps.anonymize import Anonymizer
    from facelens.match.calibration import operating_point
    from facelens.privacy.policy import POSSIBLE_MATCH_FMR, Policy
    from facelens.privacy.report import write_reports

    params = job.params
    method = str(params.get("method", "blur"))
    if method not in _METHODS:
        raise InvalidRequestError(f"method must be one of {', '.join(_METHODS)}")
    lens = context.lens
    calibration = lens.calibration
    possible = operating_point(calibration, fmr=POSSIBLE_MATCH_FMR).threshold
    try:
        policy = Policy.make(_names(params.get("keep")), _names(params.get("only")), possible)
        anonymizer = Anonymizer(
            lens.pipeline,
            lens.operating_point(params.get("fmr"), params.get("threshold")),
            calibration,
            method=method,  # type: ignore[arg-type]
            policy=policy,
            gallery=lens.gallery.template_matrix(),
            check=bool(params.get("check", True)),
        )
    except ValueError as error:
        raise InvalidRequestError(str(error)) from error
    media, image_suffix = sniff_media(job.input_path)  # the bytes decide, not the name
    is_video = media == "video"
    webm = job.input_path.suffix.lower() == ".webm"
    output = job.output_dir / (
        "anonymized" + ((".webm" if webm else ".mp4") if is_video else image_suffix)
    )
    job.progress(0.0, "anonymizing")
    moved = _share_reporter(job)
    if is_video:
        from facelens.apps.video.anonymize import anonymize_video

        report = context.analysing(
            lambda: anonymize_video(anonymizer, job.input_path, output, progress=moved)
        )
    else:
        report = context.analysing(
            lambda: anonymizer.anonymize_image(job.input_path, output, progress=moved)
        )
    if report.error is not None:
        raise report.error
    record = without_server_paths(report.to_dict(), job)
    written = write_reports(
        record, report.preview, job.output_dir / "report", report.thumbnails.pictures
    )
    media_type = (
        "video/mp4"
        if output.suffix == ".mp4"
        else (
            "video/webm"
            if output.suffix == ".webm"
            else f"image/{output.suffix.lstrip('.').replace('jpg', 'jpeg')}"
        )
    )
    return {
        "file": output.name,
        "media_type": media_type,
        "files": [output.name, *(p.name for p in written)],
        "check_failed": report.check_failed,  # the job ends as "failed_check", result kept
        "summary": {
            "faces_anonymized": record.get("faces_anonymized"),
            "frames_touched": record.get("frames_touched"),
            "check": _check_facts(record.get("check")),
            "failures": record.get("failures", []),
            "partial": bool(record.get("partial")),  # the output holds only part of the input
            "problems": record.get("problems", []),
        },
    }


def _check_facts(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """The privacy check in a few numbers (the whole of it is in ``report.json``)."""
    if check is None:
        return None
    return {
        "passed": check["passed"],
        "frames_checked": check["frames_checked"],
        "faces_reidentified": check["recognizer"]["faces_reidentified"],
        "faces_in_hidden_regions": check["independent_detector"]["faces_in_anonymized_regions"],
        "faces_not_hidden": check["independent_detector"]["faces_outside_anonymized_regions"],
    }


register(
    JobKind(
        name="anonymize",
        description="Hide the faces of an image or a video (method blur|pixelate|box|ellipse; "
        "keep or only: comma-separated enrolled names); result: the file plus JSON/HTML reports",
        upload="media",
        run=_run_anonymize,
        params={
            "method": str,
            "keep": str,
            "only": str,
            "check": bool,
            "fmr": float,
            "threshold": float,
        },
        module="facelens.apps.anonymize",
        limits={
            **OPERATING_POINT_LIMITS,
            "method": {"enum": list(_METHODS)},
            "keep": {"maxLength": 2000},
            "only": {"maxLength": 2000},
        },
        exclusive=(("fmr", "threshold"), ("keep", "only")),
    )
)
