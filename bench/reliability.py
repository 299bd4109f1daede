"""Trials of the reliability contract (issue 17) with real processes: kills, concurrent runs, full disks.

- kill: ``vaekit train`` is SIGKILLed at a random moment (seeded), then ``--resume``d (or trained
  again when no checkpoint was written yet); survived when the resumed run ends with exit 0, a
  history of every epoch once, and a loadable model; records how many epochs the kill cost.
- concurrent: two ``vaekit train`` start on one ``--out`` at once (different seeds); survived when
  exactly one trains (exit 0) and the other is refused in one line (exit 2, "in use by pid"), and
  the folder's config is the winner's.
- disk-full: the file-size limit (RLIMIT_FSIZE) is set below what some write needs, at several
  sizes; survived when the run either finishes or fails in one line (exit 2, no traceback), and
  leaves either no folder or one that ``--resume`` finishes once the limit is lifted.

    python bench/reliability.py --kills 20 --concurrent 10 --out bench/results/reliability.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["--data", "digits", "--set", "model.hidden=[32]", "--set", "model.latent_dim=4", "--set", "eval.k=10",
        "--quiet"]  # --width replaces the 32: a wider model makes training a larger share of a run's time


def vaekit(*args: str | Path, limit: int | None = None, wait: bool = True):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    command = [sys.executable, "-m", "vaekit", *map(str, args)]

    def limited() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, preexec_fn=limited)


def epochs_in(folder: Path) -> list[int]:
    history = folder / "history.csv"
    if not history.is_file():
        return []
    with history.open(newline="") as handle:
        return [int(float(row["epoch"])) for row in csv.DictReader(handle)]


def clean_failure(result: subprocess.CompletedProcess[str]) -> bool:
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    return result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr


def finished(folder: Path, epochs: int) -> bool:
    import vaekit as library

    try:
        library.load(folder)
    except Exception:
        return False
    return epochs_in(folder) == list(range(1, epochs + 1))


def calibrate(epochs: int) -> float:
    """Seconds an uninterrupted run takes here (start-up included): kills fall within it."""
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        vaekit("train", *TINY, "--epochs", epochs, "--out", Path(work) / "run")
        return time.perf_counter() - started


def kill_trial(work: Path, rng: random.Random, epochs: int, whole: float) -> dict:
    out = work / "run"
    process = vaekit("train", *TINY, "--epochs", epochs, "--out", out, wait=False)
    delay = rng.uniform(0.3, 0.98) * whole  # the first ~30% is Python's start-up and the data
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    process.stdout.close()
    process.stderr.close()
    done_before = epochs_in(out)
    checkpoint = (out / "checkpoint" / "last.safetensors").is_file()
    args = ["train", "--resume", "--out", out] if checkpoint else ["train", *TINY, "--epochs", epochs, "--out", out]
    result = vaekit(*args)
    return {"delay_s": round(delay, 2), "finished_before_kill": process.returncode == 0,
            "epochs_done_at_kill": len(done_before), "resumed": checkpoint, "exit": result.returncode,
            "survived": result.returncode == 0 and finished(out, epochs),
            "stderr_tail": result.stderr[-300:] if result.returncode else ""}


def concurrent_trial(work: Path) -> dict:
    out = work / "run"
    a = vaekit("train", *TINY, "--epochs", 2, "--set", "train.seed=1", "--out", out, wait=False)
    b = vaekit("train", *TINY, "--epochs", 2, "--set", "train.seed=2", "--out", out, wait=False)
    results = []
    for process in (a, b):
        stdout, stderr = process.communicate(timeout=600)
        results.append((process.returncode, stderr))
    codes = sorted(code for code, _ in results)
    refused = [stderr for code, stderr in results if code == 2]
    winner_seed = next((seed for (code, _), seed in zip(results, (1, 2), strict=True) if code == 0), None)
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() else {}
    return {"exits": codes, "refusal": refused[0].strip() if refused else "",
            "survived": codes == [0, 2] and "in use by pid" in refused[0] and len(refused[0].splitlines()) == 1
            and config.get("train", {}).get("seed") == winner_seed and finished(out, 2)}


def disk_full_trial(work: Path, limit: int) -> dict:
    out = work / "run"
    result = vaekit("train", *TINY, "--epochs", 2, "--out", out, limit=limit)
    record = {"limit_bytes": limit, "exit": result.returncode, "line": result.stderr.strip().splitlines()[-1:]}
    if result.returncode == 0:
        record["survived"] = finished(out, 2)
        return record
    if not clean_failure(result):
        record["survived"] = False
        return record
    if not out.exists():
        record.update(folder="none left", survived=True)
        return record
    resumed = vaekit("train", "--resume", "--out", out)
    record.update(folder="kept", resumed_exit=resumed.returncode, survived=resumed.returncode == 0 and finished(out, 2))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--limits", default="2048,16384,65536,262144",
                        help="RLIMIT_FSIZE values (bytes) to try, comma-separated; empty: none")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of each killed run")
    parser.add_argument("--width", type=int, default=32, help="hidden width of the killed runs' model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/reliability.json"))
    args = parser.parse_args()
    TINY[TINY.index("model.hidden=[32]")] = f"model.hidden=[{args.width}]"
    rng = random.Random(args.seed)
    report: dict = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "command": " ".join(sys.argv), "kill": [], "concurrent": [], "disk_full": []}
    started = time.time()
    report["uninterrupted_run_s"] = whole = round(calibrate(args.epochs), 2)
    for kind, count, trial in (("kill", args.kills, lambda w: kill_trial(w, rng, args.epochs, whole)),
                               ("concurrent", args.concurrent, concurrent_trial),
                               ("disk_full", None, None)):
        cases = ([lambda w, limit=int(v): disk_full_trial(w, limit) for v in args.limits.split(",") if v]
                 if kind == "disk_full" else [trial] * count)
        for case in cases:
            work = Path(tempfile.mkdtemp(prefix=f"vaekit-{kind}-"))
            try:
                record = case(work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            report[kind].append(record)
            print(kind, json.dumps(record), flush=True)
    report["summary"] = {kind: {"trials": len(report[kind]), "survived": sum(r["survived"] for r in report[kind])}
                         for kind in ("kill", "concurrent", "disk_full")}
    report["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["summary"]))


if __name__ == "__main__":
    main()
