"""Load on the latent explorer's JSON API: a bounded number of concurrent clients on loopback.

Starts ``vaekit explore RUN --api-only`` as its own process (OMP_NUM_THREADS and MKL_NUM_THREADS
unset, so torch uses the machine's threads), waits until ``/api/info`` answers, sends a short
sequential warm-up, then lets ``--clients`` threads loose at once, each on one persistent HTTP/1.1
connection, sending ``--requests`` requests back to back: POST /api/decode (``--rows`` random codes
per request, uniform in [-3, 3], from a seeded generator), POST /api/sample (``--rows`` samples, a
random seed each) or GET /api/item/{i} (a random held-out input). Each request's latency is timed
with ``time.perf_counter`` from sending it to having read the whole response; a request is an error
if it fails to connect or send, answers other than 200, or answers JSON without its items. Reported:
requests, errors, wall time (all clients, first request to last response), throughput (requests/s),
latency p50/p95/p99/max (ms), the machine and the server's torch threads. Without ``--run`` a small
digits model is trained first (configs/digits.yaml) into a temporary folder. The clients share the
machine's cores with the server, so on a small machine they take part of what the server could use.
Exits 1 if any request failed.

    python bench/explore_load.py --run runs/demo --clients 50 --requests 20 --out bench/results/explore_load.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIGITS_CONFIG = ROOT / "configs" / "digits.yaml"
ENDPOINTS = ("decode", "sample", "item")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # left out of the server's environment


class ServerError(RuntimeError):
    pass


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def torch_probe(env: dict[str, str]) -> dict:
    """torch's version and default threads in a fresh interpreter with the server's environment
    (``vaekit explore`` sets no threads of its own)."""
    code = "import json, torch; print(json.dumps([torch.__version__, torch.get_num_threads(), " \
           "torch.get_num_interop_threads()]))"
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        version, threads, interop = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return {"torch": None, "server_torch_threads": None, "server_interop_threads": None}
    return {"torch": version, "server_torch_threads": threads, "server_interop_threads": interop}


def train_digits(folder: Path, epochs: int | None) -> tuple[Path, float, list[str]]:
    """A small digits run (configs/digits.yaml) in ``folder``; returns it, the seconds taken and the command."""
    out = folder / "digits"
    command = [sys.executable, "-m", "vaekit", "train", "--config", str(DIGITS_CONFIG), "--quiet", "--out", str(out)]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    print(f"no --run: training a digits model into {out} ...", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise ServerError(f"training failed (exit {done.returncode}): {' '.join(command)}")
    return out, time.perf_counter() - started, command


def get_json(host: str, port: int, path: str, timeout: float) -> tuple[int, dict | None]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, None
    finally:
        connection.close()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_ready(server: subprocess.Popen, host: str, port: int, timeout: float, stderr_path: Path) -> dict:
    """Poll /api/info until it answers 200; fail clearly if the server exits or the time runs out."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerError(f"the server exited with code {server.returncode} before answering /api/info; "
                              f"its stderr:\n{tail(stderr_path)}")
        try:
            status, info = get_json(host, port, "/api/info", timeout=10)
            if status == 200 and info:
                return info
            last = f"HTTP {status}"
        except OSError as error:
            last = f"{type(error).__name__}: {error}"
        time.sleep(0.2)
    raise ServerError(f"the server did not answer /api/info within {timeout:.0f} s (last: {last}); "
                      f"its stderr:\n{tail(stderr_path)}")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def make_requests(endpoint: str, count: tuple[int, int], rows: int, info: dict, seed: int) -> list[list[tuple]]:
    """(method, path, body, expected item count) for each of ``count`` = (clients, requests), from one
    seeded generator, made before the clock starts."""
    clients, per_client = count
    rng = np.random.default_rng(seed)
    if endpoint == "decode":
        codes = rng.uniform(-3.0, 3.0, size=(clients, per_client, rows, int(info["latent_dim"])))
        return [[("POST", "/api/decode", json.dumps({"z": codes[c, i].tolist()}).encode(), rows)
                 for i in range(per_client)] for c in range(clients)]
    if endpoint == "sample":
        seeds = rng.integers(0, 2**31 - 1, size=(clients, per_client))
        return [[("POST", "/api/sample", json.dumps({"n": rows, "temperature": 1.0, "seed": int(seeds[c, i])})
                  .encode(), rows) for i in range(per_client)] for c in range(clients)]
    indices = rng.integers(0, int(info["inputs"]), size=(clients, per_client))
    return [[("GET", f"/api/item/{int(indices[c, i])}", None, 1) for i in range(per_client)] for c in range(clients)]


def check(endpoint: str, status: int, body: bytes, expected: int) -> str | None:
    """None if the answer is a good one, else what was wrong with it."""
    if status != 200:
        return f"HTTP {status}: {body[:200].decode(errors='replace')}"
    try:
        answer = json.loads(body)
    except ValueError:
        return "HTTP 200 with a body that is not JSON"
    if endpoint == "item":
        return None if isinstance(answer, dict) and "item" in answer else "JSON without 'item'"
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        return "JSON without 'items'"
    return None if len(items) == expected else f"expected {expected} items, got {len(items)}"


def client(host: str, port: int, timeout: float, endpoint: str, requests: list[tuple], start: threading.Barrier,
           records: list) -> None:
    """Send ``requests`` back to back on one persistent connection (a new one after a failure)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        start.wait()
        for method, path, body, expected in requests:
            status, error = 0, None
            began = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers if body is not None else {})
                response = connection.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as failure:
                error = f"{type(failure).__name__}: {failure}"
            latency = time.perf_counter() - began
            if error is None:
                error = check(endpoint, status, data, expected)
            else:
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=timeout)
            records.append((began, latency, status, error))
    finally:
        connection.close()


def percentiles_ms(latencies: np.ndarray) -> dict:
    if len(latencies) == 0:
        return {}
    ms = latencies * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2),
            "max": round(float(ms.max()), 2), "mean": round(float(ms.mean()), 2), "min": round(float(ms.min()), 2)}


def run_load(args: argparse.Namespace, host: str, port: int, info: dict) -> dict:
    plans = make_requests(args.endpoint, (args.clients, args.requests), args.rows, info, args.seed)
    # warm-up: codes of its own, sequential on one connection, not counted
    warm_records: list = []
    if args.warmup:
        warm_plan = make_requests(args.endpoint, (1, args.warmup), args.rows, info, args.seed + 1)[0]
        client(host, port, args.timeout, args.endpoint, warm_plan, threading.Barrier(1), warm_records)
        failed = [r[3] for r in warm_records if r[3] is not None]
        if failed:
            raise ServerError(f"{len(failed)} of {len(warm_records)} warm-up requests failed, first: {failed[0]}")
    records: list[list] = [[] for _ in range(args.clients)]
    barrier = threading.Barrier(args.clients + 1)
    threads = [threading.Thread(target=client, daemon=True, name=f"client-{c}",
                                args=(host, port, args.timeout, args.endpoint, plans[c], barrier, records[c]))
               for c in range(args.clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    flat = [r for per_client in records for r in per_client]
    latencies = np.array([r[1] for r in flat])
    ok = np.array([r[3] is None for r in flat], dtype=bool)
    statuses = Counter(str(r[2]) if r[2] else "no answer" for r in flat)
    errors = [r[3] for r in flat if r[3] is not None]
    return {
        "requests": len(flat), "expected_requests": args.clients * args.requests, "errors": len(errors),
        "statuses": dict(statuses), "error_kinds": dict(Counter(errors).most_common(10)),
        "wall_seconds": round(wall, 3),
        "throughput_rps": round(len(flat) / wall, 2) if wall > 0 else None,
        "items_per_second": round(int(ok.sum()) * (1 if args.endpoint == "item" else args.rows) / wall, 2)
        if wall > 0 else None,
        "latency_ms": percentiles_ms(latencies),
        "latency_ok_ms": percentiles_ms(latencies[ok]) if not ok.all() else None,
        "warmup": {"requests": len(warm_records), "latency_ms": percentiles_ms(np.array([r[1] for r in warm_records]))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None,
                        help="run folder to serve; default: train configs/digits.yaml into a temporary folder")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (threads, one connection each)")
    parser.add_argument("--requests", type=int, default=20, help="requests per client, back to back")
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="decode")
    parser.add_argument("--rows", type=int, default=1, help="codes per decode request / samples per sample request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--device", default=None, help="the server's --device (auto, cpu, cuda, mps); "
                        "default the server's own (auto)")
    parser.add_argument("--warmup", type=int, default=10, help="sequential requests before the clock starts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a client waits on one request")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for /api/info")
    parser.add_argument("--train-epochs", type=int, default=None,
                        help="without --run: epochs for the digits model (default the config's)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/explore_load.json"))
    args = parser.parse_args()
    for name in ("clients", "requests", "rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected a positive number")
    if args.endpoint != "item" and args.rows > 64:
        parser.error("--rows: the explorer takes at most 64 rows per request")
    args.warmup = max(args.warmup, 0)

    def on_term(_signum, _frame):
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)
    env = server_env()
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0))
               if hasattr(os, "sched_getaffinity") else os.cpu_count(), "python": platform.python_version(),
               **torch_probe(env)}
    server = None
    with tempfile.TemporaryDirectory(prefix="vaekit-explore-load-") as scratch:
        scratch = Path(scratch)
        training = None
        try:
            if args.run is None:
                run_dir, seconds, command = train_digits(scratch, args.train_epochs)
                training = {"seconds": round(seconds, 1), "command": " ".join([Path(command[0]).name, *command[1:]])}
            else:
                run_dir = args.run
                if not run_dir.is_dir():
                    parser.error(f"--run {run_dir}: no such folder")
            port = args.port or free_port(args.host)
            server_command = [sys.executable, "-m", "vaekit", "explore", str(run_dir), "--api-only",
                              "--host", args.host, "--port", str(port)]
            if args.device:
                server_command += ["--device", args.device]
            stdout_path, stderr_path = scratch / "server.out", scratch / "server.err"
            with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                started = time.perf_counter()
                server = subprocess.Popen(server_command, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            info = wait_ready(server, args.host, port, args.startup_timeout, stderr_path)
            startup = time.perf_counter() - started
            print(f"server ready on http://{args.host}:{port} in {startup:.1f} s (latent_dim {info['latent_dim']}, "
                  f"{info['inputs']} held-out inputs); {args.clients} clients x {args.requests} {args.endpoint} "
                  f"requests ...", flush=True)
            result = run_load(args, args.host, port, info)
            if server.poll() is not None:
                result["errors"] = max(result["errors"], 1)
                result["server_exit"] = server.returncode
                result["error_kinds"][f"the server exited with code {server.returncode} during the run"] = 1
        except ServerError as error:
            print(f"explore_load: {error}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("explore_load: interrupted", file=sys.stderr)
            sys.exit(130)
        finally:
            if server is not None:
                stop(server)
        server_log = tail(stderr_path, 60)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "run": str(run_dir) if args.run is not None else "(digits, trained for this bench)",
        "training": training,
        "server": {"command": " ".join(["python", *server_command[1:]]), "startup_seconds": round(startup, 2),
                   "latent_dim": info["latent_dim"], "kind": info.get("kind"), "stderr_tail": server_log or None},
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    lat = result["latency_ms"]
    rows = "" if args.endpoint == "item" else f", {args.rows} row{'s' if args.rows != 1 else ''}"
    print(f"{result['requests']} requests ({args.clients} clients x {args.requests}, {args.endpoint}{rows}) "
          f"in {result['wall_seconds']:.2f} s: "
          f"{result['throughput_rps']:.1f} requests/s, {result['errors']} errors")
    print(f"latency ms: p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}")
    print(f"machine: {machine['cpu']}, {machine['usable_cores']} cores, torch {machine['torch']} "
          f"({machine['server_torch_threads']} threads in the server); wrote {args.out}")
    if result["errors"]:
        for kind, count in result["error_kinds"].items():
            print(f"  {count} x {kind}", file=sys.stderr)
        if server_log:
            print(f"server stderr (last lines):\n{server_log}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
