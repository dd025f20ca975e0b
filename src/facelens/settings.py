"""Every ``FACELENS_*`` environment variable, read in this one module.

Each variable is a :class:`Setting` (name, meaning, default, unit) listed in
:data:`SETTINGS`; docs/settings.md shows the same table (a test keeps the two
equal). Other modules never read the environment themselves: they call the
typed readers below, which read the variable at the moment they are called,
so a changed environment (a test, a worker process) is seen. An explicit
argument (``--gallery``, ``FaceLens(threads=...)``...) always wins over the
variable; the readers only say what the environment holds.

This module sits on floor 0 (docs/architecture.md): it imports nothing of
facelens, so every package may ask it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from facelens.errors import SettingError


@dataclass(frozen=True)
class Setting:
    """One environment variable: its ``name``, what it means, its default, in words, and unit."""

    name: str
    meaning: str
    default: str
    unit: str

    def raw(self) -> str | None:
        """The variable's text as set now, or None when it is not set."""
        return os.environ.get(self.name)


GALLERY = Setting(
    "FACELENS_GALLERY",
    "The gallery: a file path (SQLite) or a `postgresql://` URL.",
    "`gallery.db` in the user data folder",
    "path or URL",
)
GALLERY_KEY_FILE = Setting(
    "FACELENS_GALLERY_KEY_FILE",
    "The file holding an encrypted gallery's template key (beats `FACELENS_GALLERY_KEY`).",
    "none",
    "path",
)
GALLERY_KEY = Setting(
    "FACELENS_GALLERY_KEY",
    "An encrypted gallery's template key itself (for containers and services).",
    "none",
    "32 bytes, base64",
)
LIBRARY = Setting(
    "FACELENS_LIBRARY",
    "The library file (ingest, cluster, search), when not beside the gallery.",
    "`<gallery stem>.library.db` beside the gallery; `library.db` in the user data "
    "folder for a PostgreSQL gallery",
    "path",
)
MODELS_FILE = Setting(
    "FACELENS_MODELS_FILE",
    "The registry of the user's own models (`facelens models add`).",
    "`models.json` in the user data folder",
    "path",
)
THREADS = Setting(
    "FACELENS_THREADS",
    "Inference threads per model session (values below 1 count as 1).",
    "every core",
    "threads",
)
PROVIDERS = Setting(
    "FACELENS_PROVIDERS",
    "onnxruntime execution providers, in order of preference, e.g. "
    "`CUDAExecutionProvider,CPUExecutionProvider`; each must be one onnxruntime reports "
    "available.",
    "`CPUExecutionProvider`",
    "comma-separated names",
)
CPU_ENGINE = Setting(
    "FACELENS_CPU_ENGINE",
    "The engine that runs the face embedders (SFace, dlib's ResNet) and the expression "
    "model when only the CPU provider is in force: `openvino` (bfloat16 on CPUs with AMX or "
    "AVX-512 BF16, float32 elsewhere) or `onnxruntime` (float32; the expression model's "
    "default is then its int8 form).",
    "`openvino` on a CPU with bfloat16 (AMX or AVX-512 BF16), else `onnxruntime` (float32 "
    "OpenVINO was slower and larger than onnxruntime on an AVX2-only CPU)",
    "`openvino` or `onnxruntime`",
)
MODEL_CACHE = Setting(
    "FACELENS_MODEL_CACHE",
    "Most loaded models kept per process; beyond it the least recently used is dropped "
    "(a fusion and each of its parts count one each).",
    "16",
    "models",
)
MAX_PIXELS = Setting(
    "FACELENS_MAX_PIXELS",
    "Largest image (or video frame) decoded; read when an image is loaded without a limit of its own, or a pipeline or video reader is made.",
    "64000000",
    "pixels (width x height)",
)
POSTGRES_SCRUB = Setting(
    "FACELENS_POSTGRES_SCRUB",
    "What follows an erasure in a PostgreSQL gallery: `full` (rewrite the tables) or `vacuum`.",
    "`full`",
    "`full` or `vacuum`",
)
POSTGRES_SEARCH = Setting(
    "FACELENS_POSTGRES_SEARCH",
    "How a PostgreSQL gallery in the clear is searched: `hnsw` (the server's index) or "
    "`codes` (this process's code index).",
    "`hnsw`",
    "`hnsw` or `codes`",
)
SERVICE_DIR = Setting(
    "FACELENS_SERVICE_DIR",
    "The service's state folder (API keys, audit log, jobs).",
    "`<gallery file>.service` beside the gallery",
    "path",
)
SERVICE_SETTINGS = Setting(
    "FACELENS_SERVICE_SETTINGS",
    "The service's settings, which `facelens serve` hands to its worker processes "
    "(set by facelens, not by users).",
    "the defaults of `ServiceSettings`",
    "JSON",
)
GRAPH_CACHE = Setting(
    "FACELENS_GRAPH_CACHE",
    "Folder where the graphs facelens builds from shipped model files (SFace folded, dlib's "
    "ResNet) are kept, so that later processes read them instead of building them again; "
    "`off`: build them every time.",
    "`$XDG_CACHE_HOME/facelens/graphs`, else `~/.cache/facelens/graphs`",
    "path or `off`",
)
DATA = Setting(
    "FACELENS_DATA",
    "The shared data folder of the demo, the benchmarks and the real-photo tests.",
    "`../shared/data` from the current folder",
    "path",
)

SETTINGS: tuple[Setting, ...] = (
    GALLERY,
    GALLERY_KEY_FILE,
    GALLERY_KEY,
    LIBRARY,
    MODELS_FILE,
    THREADS,
    PROVIDERS,
    CPU_ENGINE,
    MODEL_CACHE,
    MAX_PIXELS,
    POSTGRES_SCRUB,
    POSTGRES_SEARCH,
    SERVICE_DIR,
    SERVICE_SETTINGS,
    GRAPH_CACHE,
    DATA,
)
"""Every setting, in the order docs/settings.md lists them."""

DEFAULT_MAX_PIXELS = 64_000_000
"""Largest image without ``FACELENS_MAX_PIXELS``, in pixels."""
DEFAULT_MODEL_CACHE = 16
"""Loaded models kept per process without ``FACELENS_MODEL_CACHE``."""
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
"""onnxruntime execution providers without ``FACELENS_PROVIDERS``."""
CPU_ENGINES = ("openvino", "onnxruntime")
"""Values ``FACELENS_CPU_ENGINE`` takes (the default: :func:`default_cpu_engine`)."""
BFLOAT16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
"""CPU flags (as Linux's ``/proc/cpuinfo`` names them) with which OpenVINO computes in
bfloat16."""


def _text(setting: Setting) -> str | None:
    """The variable's text, None when unset or empty."""
    return setting.raw() or None


def _whole_number(setting: Setting) -> int | None:
    """The variable as a whole number, None when unset or blank.

    Raises :class:`~facelens.errors.SettingError` (a ValueError) naming the variable
    for text that is not one ("abc", "2.5").
    """
    text = (_text(setting) or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise SettingError(f"{setting.name} is {text!r}; use a whole number") from None


def _path(setting: Setting) -> Path | None:
    text = _text(setting)
    return Path(text).expanduser() if text else None


def gallery() -> str | None:
    """``$FACELENS_GALLERY`` as given (a path or a PostgreSQL URL), None when unset."""
    return _text(GALLERY)


def gallery_key_file() -> str | None:
    """``$FACELENS_GALLERY_KEY_FILE``, None when unset."""
    return _text(GALLERY_KEY_FILE)


def gallery_key() -> str | None:
    """``$FACELENS_GALLERY_KEY`` (base64 text, parsed by the gallery), None when unset."""
    return _text(GALLERY_KEY)


def library() -> Path | None:
    """``$FACELENS_LIBRARY``, None when unset."""
    return _path(LIBRARY)


def models_file() -> Path | None:
    """``$FACELENS_MODELS_FILE``, None when unset."""
    return _path(MODELS_FILE)


def threads() -> int | None:
    """``$FACELENS_THREADS`` (below 1 counts as 1), None when unset; :class:`SettingError`
    for text that is not a whole number."""
    number = _whole_number(THREADS)
    return None if number is None else max(1, number)


def providers() -> tuple[str, ...] | None:
    """``$FACELENS_PROVIDERS`` split on commas (blanks dropped), None when unset or blank."""
    text = _text(PROVIDERS)
    names = tuple(name.strip() for name in (text or "").split(",") if name.strip())
    return names or None


def cpu_engine() -> str:
    """``$FACELENS_CPU_ENGINE`` trimmed and lower-cased, else :func:`default_cpu_engine`.

    Raises :class:`~facelens.errors.SettingError` (a ValueError), naming the values
    allowed, for any other value.
    """
    text = (_text(CPU_ENGINE) or "").strip().lower() or default_cpu_engine()
    if text not in CPU_ENGINES:
        raise SettingError(f"{CPU_ENGINE.name} is {text!r}; use one of {', '.join(CPU_ENGINES)}")
    return text


def default_cpu_engine() -> str:
    """``openvino`` where the CPU computes in bfloat16 (:func:`cpu_has_bfloat16`), else
    ``onnxruntime``: without bfloat16 OpenVINO runs float32, which on an AVX2-only CPU was
    slower than onnxruntime and held 75 MB more (``facelens eval lfw`` on one LFW fold,
    docs/benchmarks.md#cpu-engine)."""
    return "openvino" if cpu_has_bfloat16() else "onnxruntime"


@functools.cache
def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has one of :data:`BFLOAT16_FLAGS`, read from ``cpuinfo`` (the text of
    Linux's ``/proc/cpuinfo``; read from there when None). False where it cannot be read
    (another system): onnxruntime is then the default."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return bool(BFLOAT16_FLAGS & set(value.split()))
    return False


def model_cache() -> int:
    """``$FACELENS_MODEL_CACHE``: most loaded models kept per process (below 1 counts as 1),
    else :data:`DEFAULT_MODEL_CACHE`; :class:`SettingError` for text that is not a whole
    number."""
    number = _whole_number(MODEL_CACHE)
    return DEFAULT_MODEL_CACHE if number is None else max(1, number)


def max_pixels() -> int:
    """``$FACELENS_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`; in pixels;
    :class:`SettingError` for anything but a whole number of at least 1."""
    number = _whole_number(MAX_PIXELS)
    if number is None:
        return DEFAULT_MAX_PIXELS
    if number < 1:
        raise SettingError(f"{MAX_PIXELS.name} is {number}; use a whole number of at least 1")
    return number


def postgres_scrub() -> str:
    """``$FACELENS_POSTGRES_SCRUB`` as given, else ``full`` (the gallery checks the value)."""
    return os.environ.get(POSTGRES_SCRUB.name, "full")


def postgres_search() -> str:
    """``$FACELENS_POSTGRES_SEARCH`` trimmed and lower-cased, else ``hnsw`` (checked by the index)."""
    return os.environ.get(POSTGRES_SEARCH.name, "hnsw").strip().lower() or "hnsw"


def service_dir() -> Path | None:
    """``$FACELENS_SERVICE_DIR``, None when unset."""
    return _path(SERVICE_DIR)


def service_settings() -> str | None:
    """``$FACELENS_SERVICE_SETTINGS`` (JSON), None when unset."""
    return _text(SERVICE_SETTINGS)


def graph_cache() -> Path | None:
    """``$FACELENS_GRAPH_CACHE``, else ``$XDG_CACHE_HOME/facelens/graphs``, else
    ``~/.cache/facelens/graphs``; None when the variable is ``off``."""
    text = _text(GRAPH_CACHE)
    if text is not None and text.strip().lower() == "off":
        return None
    if text:
        return Path(text).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "facelens" / "graphs"


def data_root() -> Path:
    """``$FACELENS_DATA``, else ``../shared/data`` from the current folder."""
    return Path(os.environ.get(DATA.name, "../shared/data")).expanduser()


__all__ = [
    "CPU_ENGINES",
    "DATA",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MODEL_CACHE",
    "DEFAULT_PROVIDERS",
    "GALLERY",
    "GALLERY_KEY",
    "GALLERY_KEY_FILE",
    "GRAPH_CACHE",
    "LIBRARY",
    "MODELS_FILE",
    "MODEL_CACHE",
    "POSTGRES_SCRUB",
    "POSTGRES_SEARCH",
    "PROVIDERS",
    "SERVICE_DIR",
    "SERVICE_SETTINGS",
    "SETTINGS",
    "Setting",
    "cpu_engine",
    "cpu_has_bfloat16",
    "data_root",
    "default_cpu_engine",
    "gallery",
    "gallery_key",
    "gallery_key_file",
    "graph_cache",
    "library",
    "max_pixels",
    "model_cache",
    "models_file",
    "postgres_scrub",
    "postgres_search",
    "providers",
    "service_dir",
    "service_settings",
    "threads",
]
