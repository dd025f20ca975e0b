"""Load on the REST service: concurrent clients identifying real photos against N worker processes.

Starts ``facelens serve --workers 2`` on loopback (a temporary gallery), enrolls
the k-NN example people (``face_recognition_knn/.../train``, one folder per
person) through the API, then runs ``--clients`` threads that each post the
test photos (``.../test``) to ``/api/identify`` in a loop for ``--seconds``.
Reports requests, failed requests (anything but 200, or a connection error),
throughput and latency percentiles, which worker processes answered, and the
machine's load average before and after (the numbers are only as quiet as the
machine), and the CPU seconds the server's processes and the client threads spent
per answered request during the timed window (robust on a shared machine, unlike
the latencies). ``--server-pythonpath DIR`` runs the server from another source
tree (e.g. ``git archive main src`` unpacked in /tmp) for a side-by-side
comparison. The server is always stopped at the end.

    .venv/bin/python benchmarks/service_load.py --clients 16 --seconds 60 --workers 2 \
        --json benchmarks/results/service_load.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

from facelens.service.keys import KeyStore
from facelens.service.launcher import ServerProcess
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data"))
KNN = DATA / "face_recognition_knn" / "examples" / "knn_examples"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants so far."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run(
    clients: int,
    seconds: float,
    workers: int,
    threads: int | None,
    server_pythonpath: str | None = None,
    analysis_slots: int | None = None,
) -> dict[str, Any]:
    if not KNN.is_dir():
        sys.exit(f"real photos not found at {KNN}; set FACELENS_DATA to the shared data folder")
    photos = [(p.name, p.read_bytes()) for p in sorted((KNN / "test").iterdir()) if p.is_file()]
    with tempfile.TemporaryDirectory(prefix="facelens-load-") as folder:
        gallery = Path(folder) / "people.db"
        state = StateDB(ServiceSettings(gallery=str(gallery)).state_db)
        key = KeyStore(state).create("load benchmark", "admin")[1]
        state.close()
        extra = ["--threads", str(threads)] if threads else []
        extra += ["--analysis-slots", str(analysis_slots)] if analysis_slots else []
        load_before = os.getloadavg()
        env = {"PYTHONPATH": server_pythonpath} if server_pythonpath else None
        with ServerProcess(gallery, workers=workers, extra_args=extra, env=env) as server:
            assert server.process is not None
            headers = {"X-API-Key": key}
            with httpx.Client(base_url=server.url, headers=headers, timeout=300) as http:
                for person in sorted(p for p in (KNN / "train").iterdir() if p.is_dir()):
                    files = [
                        ("photos", (f.name, f.read_bytes(), "image/jpeg"))
                        for f in sorted(person.iterdir())
                    ]
                    http.post(
                        "/api/people", data={"name": person.name}, files=files
                    ).raise_for_status()
                for name, data in photos:  # warm every worker's models once
                    for _ in range(workers):
                        http.post("/api/identify", files={"image": (name, data, "image/jpeg")})
            latencies: list[float] = []
            failures: Counter[str] = Counter()
            answered_by: Counter[str] = Counter()
            lock = threading.Lock()
            server_cpu_before = server_cpu_seconds(server.process.pid)
            client_cpu_before = time.process_time()
            start = time.perf_counter()
            stop_at = start + seconds

            def client(index: int) -> None:
                with httpx.Client(base_url=server.url, headers=headers, timeout=300) as http:
                    turn = index
                    while time.perf_counter() < stop_at:
                        name, data = photos[turn % len(photos)]
                        turn += 1
                        sent = time.perf_counter()
                        try:
                            response = http.post(
                                "/api/identify", files={"image": (name, data, "image/jpeg")}
                            )
                            outcome = str(response.status_code)
                            worker = response.headers.get("x-facelens-worker", "?")
                        except httpx.HTTPError as error:
                            outcome, worker = type(error).__name__, "?"
                        elapsed = time.perf_counter() - sent
                        with lock:
                            if outcome == "200":
                                latencies.append(elapsed)
                                answered_by[worker] += 1
                            else:
                                failures[outcome] += 1

            pool = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            wall = time.perf_counter() - start
            client_cpu = time.process_time() - client_cpu_before
            server_cpu = server_cpu_seconds(server.process.pid) - server_cpu_before
        load_after = os.getloadavg()
    answered = max(1, len(latencies))
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "workers": workers,
        "threads_per_worker": threads or "default",
        "analysis_slots": analysis_slots or "default",
        "photos": [name for name, _ in photos],
        "requests_ok": len(latencies),
        "requests_failed": sum(failures.values()),
        "failures": dict(failures),
        "throughput_per_s": round(len(latencies) / wall, 2),
        "latency_ms": {
            "p50": round(1000 * percentile(latencies, 0.50), 1),
            "p90": round(1000 * percentile(latencies, 0.90), 1),
            "p99": round(1000 * percentile(latencies, 0.99), 1),
            "max": round(1000 * max(latencies), 1),
            "mean": round(1000 * statistics.fmean(latencies), 1),
        },
        "cpu_ms_per_request": {
            "server": round(1000 * server_cpu / answered, 1),
            "clients": round(1000 * client_cpu / answered, 1),
        },
        "answered_by_worker_pid": dict(answered_by),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="inference threads per worker")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--server-pythonpath",
        default=None,
        help="run the server from this source tree (PYTHONPATH), e.g. a baseline's src",
    )
    parser.add_argument(
        "--analysis-slots", type=int, default=None, help="analyses at once per worker"
    )
    args = parser.parse_args()
    report = run(
        args.clients,
        args.seconds,
        args.workers,
        args.threads,
        args.server_pythonpath,
        args.analysis_slots,
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
