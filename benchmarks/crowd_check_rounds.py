"""The crowd clip's verdicts, round after round: this tree against another, alternating.

Which frames the privacy check reads and the blur's grain (one unseeded field per
process) decide whether a crowd's check passes, so one run says little. This makes
``crowd_clip.py``'s two clips (the crowd and its dark copy; in a temporary folder,
deleted afterwards) and runs ``facelens anonymize CLIP -o OUT --json`` (the check on)
``--rounds`` times per clip, from this tree and, alternating with it, from
``--baseline-src`` (a ``src`` folder, e.g. from ``git archive REV src``), each a separate
process pinned to the same 2 cores: exit status (3: check failed), what failed, wall and
CPU seconds, peak memory, escalated and unverified tracks, and the attacks' CPU seconds.
``--no-check`` times the hiding alone (``facelens anonymize ... --no-check``), for an A/B
of its speed.

    mkdir -p /tmp/before && git archive REV src | tar -x -C /tmp/before
    .venv/bin/python benchmarks/crowd_check_rounds.py --baseline-src /tmp/before/src \\
        [--rounds 3] [--no-check] [--json benchmarks/results/crowd_check_rounds.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
from crowd_clip import DATA, PHOTO, make_clips, run_facelens  # noqa: E402


def row(run: dict[str, Any]) -> dict[str, Any]:
    """What a round's table shows of a run."""
    verify = run.get("verify") or {}
    return {
        "exit_status": run["exit_status"],
        "failures": [f["what"] for f in run.get("failures") or []],
        "wall_s": run["wall_s"],
        "cpu_s": run["cpu_s"],
        "peak_rss_mb": run["peak_rss_mb"],
        "escalated": verify.get("escalated"),
        "unverified": verify.get("unverified"),
        "attack_cpu_s": verify.get("cpu_seconds"),
    }


def _joined(runs: list[dict[str, Any]], key: str) -> str:
    return ", ".join(str(r[key]) for r in runs)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Crowd check rounds ({result['when']}), {result['seconds']:g} s clips, the check "
        f"{'on' if result.get('check', True) else 'off'}; baseline {result['baseline']}.",
        "",
        "| clip | code | exit statuses (3 = check failed) | wall s | CPU s | peak MB "
        "| escalated / unverified tracks | attack CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for clip, codes in result["clips"].items():
        for code, runs in codes.items():
            tracks = ", ".join(f"{r['escalated']} / {r['unverified']}" for r in runs)
            lines.append(
                f"| {clip} | {code} | {_joined(runs, 'exit_status')} | {_joined(runs, 'wall_s')} "
                f"| {_joined(runs, 'cpu_s')} | {_joined(runs, 'peak_rss_mb')} | {tracks} "
                f"| {_joined(runs, 'attack_cpu_s')} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--dark-gain", type=float, default=0.2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-check", action="store_true", help="time the hiding alone")
    args = parser.parse_args()
    if not (DATA / PHOTO).is_file():
        sys.exit(f"{DATA / PHOTO} not found; set FACELENS_DATA")
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": args.seconds,
        "baseline": str(args.baseline_src),
        "check": not args.no_check,
        "clips": {},
    }
    with tempfile.TemporaryDirectory(prefix="facelens-crowd-rounds-") as temporary:
        folder = Path(temporary)
        for clip in make_clips(folder, args.seconds, args.dark_gain):
            codes: dict[str, list[dict[str, Any]]] = {"this tree": [], "baseline": []}
            for round_index in range(args.rounds):
                for code, source in (("baseline", args.baseline_src), ("this tree", None)):
                    out = folder / f"{clip.path.stem}-{code.replace(' ', '-')}-{round_index}"
                    run = row(run_facelens(clip, out, check=not args.no_check, source=source))
                    codes[code].append(run)
                    print(clip.path.stem, code, round_index + 1, json.dumps(run), flush=True)
            result["clips"][clip.path.stem] = codes
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        args.json.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
