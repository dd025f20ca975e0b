"""One exception hierarchy for facelens.

Every message says what went wrong and what the user can do about it. Batch
operations catch :class:`FaceLensError` per item, report it, and go on.
"""

from __future__ import annotations

__all__ = [
    "CalibrationDataError",
    "CalibrationError",
    "CalibrationMismatchError",
    "ClusterError",
    "ClusterFaceNotFoundError",
    "ClusterModelMismatchError",
    "CorrectionError",
    "FaceLensError",
    "FaceSelectionError",
    "GalleryError",
    "GalleryKeyError",
    "GalleryKeyMismatchError",
    "GalleryKeyRequiredError",
    "GalleryModelMismatchError",
    "GalleryNotEncryptedError",
    "GroupMatchesOtherPersonError",
    "GroupNotFoundError",
    "ImageDecodeError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "InputError",
    "InputNotReadableError",
    "InvalidNameError",
    "LibraryItemNotFoundError",
    "LowQualityFaceError",
    "ModelError",
    "ModelIntegrityError",
    "MultipleFacesError",
    "NoFaceError",
    "NotCalibratedError",
    "PersonExistsError",
    "PersonNotFoundError",
    "ProviderUnavailableError",
    "RayUnavailableError",
    "SettingError",
    "TemplateNotFoundError",
    "UnknownModelError",
    "UnsupportedInputError",
    "VideoDecodeError",
    "VideoError",
    "VideoOpenError",
    "VideoWriteError",
]


class FaceLensError(Exception):
    """Base class of every error facelens raises on purpose."""

    code: str = "facelens_error"


class SettingError(FaceLensError, ValueError):
    """An environment setting (``FACELENS_*``) holds a value facelens cannot use; still a
    ``ValueError`` for callers that catch that."""

    code = "bad_setting"


class InputError(FaceLensError):
    """The input could not be used (missing, not an image, too large, ...)."""

    code = "bad_input"


class ImageNotFoundError(InputError):
    code = "not_found"


class ImageDecodeError(InputError):
    code = "decode_failed"


class ImageTooLargeError(InputError):
    code = "image_too_large"


class UnsupportedInputError(InputError):
    code = "unsupported_input"


class InputNotReadableError(InputError):
    """The file or folder exists but cannot be read (no read permission, a folder that
    cannot be listed): one bad item of a batch, reported and skipped."""

    code = "not_readable"


class FaceSelectionError(FaceLensError):
    """A photo did not hold exactly one usable face where one was required."""

    code = "face_selection"


class NoFaceError(FaceSelectionError):
    code = "no_face"


class MultipleFacesError(FaceSelectionError):
    code = "multiple_faces"


class LowQualityFaceError(FaceSelectionError):
    code = "low_quality"


class ModelError(FaceLensError):
    code = "model_error"


class ModelIntegrityError(ModelError):
    """A model file's sha256 does not match the registry: refuse to run it."""

    code = "model_integrity"


class UnknownModelError(ModelError):
    code = "unknown_model"


class ProviderUnavailableError(ModelError):
    """An onnxruntime execution provider asked for is not available in this installation."""

    code = "provider_unavailable"


class CalibrationError(FaceLensError):
    """An operating point was asked for that the calibration cannot support."""

    code = "calibration"


class NotCalibratedError(CalibrationError):
    """The embedder has no calibration (a user model before ``facelens calibrate``)."""

    code = "not_calibrated"


class CalibrationMismatchError(CalibrationError):
    """A calibration fitted for one embedder was about to be applied to another."""

    code = "calibration_mismatch"


class CalibrationDataError(CalibrationError):
    """The calibration set has too few people or pairs for what was asked."""

    code = "calibration_data"


class GalleryError(FaceLensError):
    code = "gallery_error"


class GalleryModelMismatchError(GalleryError):
    """The gallery holds templates of another embedder; mixing them is meaningless."""

    code = "model_mismatch"


class PersonNotFoundError(GalleryError):
    code = "person_not_found"


class PersonExistsError(GalleryError):
    code = "person_exists"


class InvalidNameError(GalleryError):
    """A person's name that the name rule refuses (see ``facelens.gallery.store.clean_name``)."""

    code = "invalid_name"


class TemplateNotFoundError(GalleryError):
    code = "template_not_found"


class VideoError(InputError):
    """A video, image sequence, camera or stream could not be used."""

    code = "video_error"


class VideoOpenError(VideoError):
    """The video source could not be opened (missing, not a video, unreachable stream)."""

    code = "video_open_failed"


class VideoDecodeError(VideoError):
    """Decoding stopped part way (truncated file, corrupt data, a stream that broke off)."""

    code = "video_decode_failed"


class VideoWriteError(VideoError):
    """An output video could not be written (unsupported container or codec, disk full)."""

    code = "video_write_failed"


class GalleryKeyError(GalleryError):
    """The gallery's template key is missing, unreadable, or does not open this gallery."""

    code = "gallery_key"


class GalleryKeyRequiredError(GalleryKeyError):
    """The gallery is encrypted and no key was given."""

    code = "gallery_key_required"


class GalleryKeyMismatchError(GalleryKeyError):
    """The key given is not the one the gallery was encrypted with (or a row was tampered)."""

    code = "gallery_key_wrong"


class GalleryNotEncryptedError(GalleryKeyError):
    """A key was given for a gallery whose templates are stored unencrypted."""

    code = "gallery_not_encrypted"


class ClusterError(FaceLensError):
    """A request to the face-cluster index that cannot be carried out."""

    code = "cluster_error"


class ClusterModelMismatchError(ClusterError):
    """The cluster index holds templates of another embedder."""

    code = "cluster_model_mismatch"


class GroupNotFoundError(ClusterError):
    code = "group_not_found"


class ClusterFaceNotFoundError(ClusterError):
    code = "cluster_face_not_found"


class LibraryItemNotFoundError(ClusterFaceNotFoundError):
    """No photo or video of that id in the library."""

    code = "item_not_found"


class CorrectionError(ClusterError):
    """A correction that contradicts itself (e.g. splitting a group into nothing)."""

    code = "bad_correction"


class GroupMatchesOtherPersonError(CorrectionError):
    """A group named after one person while its faces are identified as another enrolled
    person (naming it would enroll that person's faces under the new name)."""

    code = "matches_other_person"


class RayUnavailableError(FaceLensError):
    """``facelens ingest --ray``: Ray is not installed, or its cluster cannot be reached."""

    code = "ray_unavailable"
