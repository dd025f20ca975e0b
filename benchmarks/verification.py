"""1:1 verification on ORL and Yale (non-celebrity sets), per embedder, via `facelens eval verify`.

All genuine pairs and every impostor pair (seed 0) of each set; AUC, EER,
TAR at FAR, 10-fold accuracy, and how the thresholds shipped with each model
(measured on LFW) hold on these people: the false-match rate observed at
each shipped threshold. Writes ``benchmarks/results/verification.json`` and
prints Markdown.

    .venv/bin/python benchmarks/verification.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATASETS = {"ORL": "orl_att_faces/att_faces", "Yale": "yalefaces/yalefaces"}
EMBEDDERS = ("sface-2021dec-int8bq", "dlib-resnet-v1", "fusion-sface-dlib")


def eval_verify(embedder: str, tree: Path) -> dict[str, Any]:
    command = [
        str(REPO / ".venv/bin/facelens"),
        "--embedder",
        embedder,
        "eval",
        "verify",
        str(tree),
        "--json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    args = parser.parse_args()
    rows = []
    for name, relative in DATASETS.items():
        for embedder in EMBEDDERS:
            data = eval_verify(embedder, args.data / relative)
            tar = {f"{r['far']:g}": r["tar"] for r in data["tar_at_far"]}
            shipped = {
                f"{t['fmr']:g}": t["far_observed"]
                for t in data["shipped_calibration"]["thresholds"]
            }
            rows.append(
                {
                    "dataset": name,
                    "embedder": embedder,
                    "genuine": data["genuine_pairs"],
                    "impostor": data["impostor_pairs"],
                    "auc": data["auc"],
                    "eer": data["eer"],
                    "accuracy": data["accuracy_mean"],
                    "tar_at_far": tar,
                    "shipped_fmr_observed": shipped,
                }
            )
            print(f"{name} {embedder}: EER {data['eer']:.4f}", file=sys.stderr)
    (REPO / "benchmarks/results/verification.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(
        "| dataset | embedder | pairs (genuine / impostor) | AUC | EER | accuracy | TAR at FAR 1e-3 | TAR at FAR 1e-4 | FMR observed at the shipped 1e-3 / 1e-4 thresholds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tar3, tar4 = r["tar_at_far"].get("0.001"), r["tar_at_far"].get("0.0001")
        observed = " / ".join(
            f"{r['shipped_fmr_observed'].get(k, float('nan')):.1e}" for k in ("0.001", "0.0001")
        )
        print(
            f"| {r['dataset']} | {r['embedder']} | {r['genuine']:,} / {r['impostor']:,} | {r['auc']:.5f} | {r['eer']:.4f} | "
            f"{r['accuracy']:.4f} | {tar3 if tar3 is None else f'{tar3:.4f}'} | {tar4 if tar4 is None else f'{tar4:.4f}'} | {observed} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
