"""Hostile clients against the latent explorer: stalled sockets (slowloris) and oversized bodies.

Starts ``vaekit explore RUN --api-only`` as its own process (with ``--timeout`` and
``--max-connections`` when given here, else the server's defaults), as bench/explore_load.py does,
then:

1. opens ``--stalled`` connections that each send part of a request (``--stall header``: a header
   without its blank line; ``body``: a whole header and 10 of 100 declared body bytes; ``silent``:
   nothing) and then nothing more;
2. while they are open, ``--clients`` well-behaved threads send POST /api/decode requests (one code
   each) back to back, a fresh connection after any failure or 503, for ``--window`` seconds or until
   every stalled socket is closed; each answer is counted by status (a failure to connect, send or
   read is "no answer"), and the time of the first 200 is kept;
3. records, for each stalled socket, when the server closed it and what it said first (an HTTP status,
   "nothing" or "reset"); those still open after ``--window`` seconds are counted as open;
4. sends the same clients ``--requests`` requests each again (all should be 200);
5. posts a 5 MB body with an honest Content-Length from three clients (http.client keeping the
   connection, http.client with ``Connection: close``, urllib) and records what each read.

Reported (JSON to ``--out``): the stalled sockets opened, closed (seconds after opening: p50 and max)
and still open; the answers during the stall and after it; the oversized-body answers; the machine.
Without ``--run`` a small digits model is trained first (configs/digits.yaml). Exits 1 if a stalled
socket outlived the window, a request after the stall failed, or an oversized body was not a 413.

    python bench/explore_hostile.py --run runs/demo --stalled 250 --clients 10 --out bench/results/explore_hostile.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
from explore_load import ServerError, cpu_model, free_port, server_env, stop, tail, train_digits, wait_ready

STALLS = {
    "header": b"POST /api/decode HTTP/1.1\r\nHost: explorer\r\nContent-Type: application/json\r\n",
    "body": b"POST /api/decode HTTP/1.1\r\nHost: explorer\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"z\": [[0,",
    "silent": b"",
}
OVERSIZED = 5 * 1024 * 1024


def open_stalled(host: str, port: int, count: int, sent: bytes) -> tuple[list[socket.socket], list[str]]:
    """``count`` connections that send ``sent`` and stop; those that could not be opened, as errors."""
    sockets, failures = [], []
    for _ in range(count):
        try:
            connection = socket.create_connection((host, port), timeout=10)
            if sent:
                connection.sendall(sent)
            connection.setblocking(False)
            sockets.append(connection)
        except OSError as error:
            failures.append(f"{type(error).__name__}: {error}")
    return sockets, failures


def watch_stalled(sockets: list[socket.socket], opened: float, until: float) -> list[dict]:
    """Wait until the server closes each socket (or ``until``); when, and what it said first."""
    records = {id(s): {"closed_after": None, "answer": None} for s in sockets}
    first = {id(s): b"" for s in sockets}
    pending = list(sockets)
    while pending and time.perf_counter() < until:
        readable, _, _ = select.select(pending, [], [], min(0.5, max(0.0, until - time.perf_counter())))
        for connection in readable:
            record = records[id(connection)]
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                chunk, record["answer"] = b"", record["answer"] or "reset"
            except BlockingIOError:
                continue
            first[id(connection)] += chunk
            if not chunk:
                record["closed_after"] = round(time.perf_counter() - opened, 3)
                head = first[id(connection)].split(b"\r\n", 1)[0].split()
                record["answer"] = record["answer"] or (f"HTTP {head[1].decode()}" if len(head) > 1 else "nothing")
                pending.remove(connection)
    for connection in sockets:
        connection.close()
    return list(records.values())


def decode_body(latent_dim: int, rng: np.random.Generator) -> bytes:
    return json.dumps({"z": rng.uniform(-3.0, 3.0, size=(1, latent_dim)).tolist()}).encode()


def polite(host: str, port: int, latent_dim: int, seed: int, stop_when, count: int | None, records: list) -> None:
    """POST /api/decode back to back until ``stop_when()`` (or ``count`` requests); (time, status, latency)."""
    rng = np.random.default_rng(seed)
    connection, sent = None, 0
    while (count is None and not stop_when()) or (count is not None and sent < count):
        if connection is None:
            connection = http.client.HTTPConnection(host, port, timeout=60)
        began = time.perf_counter()
        try:
            connection.request("POST", "/api/decode", body=decode_body(latent_dim, rng),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            status = str(response.status)
            if response.will_close:
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException):
            status = "no answer"
            connection.close()
            connection = None
        records.append((began, status, time.perf_counter() - began))
        sent += 1
        if status != "200" and count is None:
            time.sleep(0.05)  # a refused client waits a little before it tries again
    if connection is not None:
        connection.close()


def run_clients(args, port: int, latent_dim: int, stop_when, count: int | None) -> list:
    records: list[list] = [[] for _ in range(args.clients)]
    threads = [threading.Thread(target=polite, daemon=True, args=(args.host, port, latent_dim, args.seed + c,
                                                                   stop_when, count, records[c]))
               for c in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for per_client in records for r in per_client]


def summary(records: list, since: float) -> dict:
    statuses = Counter(status for _, status, _ in records)
    served = [latency for _, status, latency in records if status == "200"]
    firsts = [began - since for began, status, _ in records if status == "200"]
    return {"requests": len(records), "statuses": dict(statuses),
            "first_200_after_s": round(min(firsts), 3) if firsts else None,
            "latency_200_ms": {"p50": round(float(np.percentile(served, 50)) * 1000, 2),
                               "max": round(max(served) * 1000, 2)} if served else None}


def oversized(host: str, port: int) -> dict:
    """What three clients read back after posting a 5 MB body with an honest Content-Length."""
    body, results = b" " * OVERSIZED, {}
    for name, headers in (("http.client", {}), ("http.client, Connection: close", {"Connection": "close"})):
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            connection.request("POST", "/api/decode", body=body, headers={"Content-Type": "application/json",
                                                                          **headers})
            response = connection.getresponse()
            results[name] = f"HTTP {response.status}: {response.read()[:100].decode(errors='replace')}"
        except (OSError, http.client.HTTPException) as error:
            results[name] = f"{type(error).__name__}: {error}"
        finally:
            connection.close()
    request = urllib.request.Request(f"http://{host}:{port}/api/decode", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            results["urllib"] = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        results["urllib"] = f"HTTP {error.code}: {error.read()[:100].decode(errors='replace')}"
    except OSError as error:
        results["urllib"] = f"{type(error).__name__}: {error}"
    return results


def trial(args, port: int, info: dict) -> dict:
    latent_dim = int(info["latent_dim"])
    opened = time.perf_counter()
    stalled, failures = open_stalled(args.host, port, args.stalled, STALLS[args.stall])
    print(f"{len(stalled)} stalled sockets open ({len(failures)} failed to open); {args.clients} clients "
          f"for up to {args.window:.0f} s ...", flush=True)
    until = opened + args.window
    watched: list[dict] = []
    watcher = threading.Thread(target=lambda: watched.extend(watch_stalled(stalled, opened, until)), daemon=True)
    watcher.start()
    during = run_clients(args, port, latent_dim, lambda: not watcher.is_alive() or time.perf_counter() > until, None)
    watcher.join()
    closed = [r["closed_after"] for r in watched if r["closed_after"] is not None]
    after_start = time.perf_counter()
    after = run_clients(args, port, latent_dim, lambda: True, args.requests)
    return {
        "stalled": {"opened": len(stalled), "failed_to_open": len(failures),
                    "open_errors": dict(Counter(failures).most_common(3)), "closed": len(closed),
                    "still_open_after_window": len(stalled) - len(closed),
                    "closed_after_s": {"p50": round(float(np.percentile(closed, 50)), 3), "max": max(closed)}
                    if closed else None,
                    "first_answers": dict(Counter(r["answer"] or "still open" for r in watched))},
        "during_stall": summary(during, opened),
        "after_stall": summary(after, after_start),
        "oversized_body": oversized(args.host, port),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None,
                        help="run folder to serve; default: train configs/digits.yaml into a temporary folder")
    parser.add_argument("--stalled", type=int, default=250, help="stalled connections to open")
    parser.add_argument("--stall", choices=sorted(STALLS), default="header", help="what each stalled one sends")
    parser.add_argument("--clients", type=int, default=10, help="well-behaved clients (threads)")
    parser.add_argument("--requests", type=int, default=20, help="requests per client after the stall")
    parser.add_argument("--window", type=float, default=60.0,
                        help="seconds to wait for the server to close the stalled sockets")
    parser.add_argument("--timeout", type=float, default=None, help="the server's --timeout (default its own)")
    parser.add_argument("--max-connections", type=int, default=None,
                        help="the server's --max-connections (default its own)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for /api/info")
    parser.add_argument("--out", type=Path, default=Path("bench/results/explore_hostile.json"))
    args = parser.parse_args()
    for name in ("stalled", "clients", "requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected a positive number")
    env = server_env()
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}
    server = None
    with tempfile.TemporaryDirectory(prefix="vaekit-explore-hostile-") as scratch:
        scratch = Path(scratch)
        try:
            run_dir = args.run if args.run is not None else train_digits(scratch, None)[0]
            port = free_port(args.host)
            server_command = [sys.executable, "-m", "vaekit", "explore", str(run_dir), "--api-only",
                              "--host", args.host, "--port", str(port)]
            if args.timeout is not None:
                server_command += ["--timeout", str(args.timeout)]
            if args.max_connections is not None:
                server_command += ["--max-connections", str(args.max_connections)]
            stderr_path = scratch / "server.err"
            with open(scratch / "server.out", "wb") as out, open(stderr_path, "wb") as err:
                server = subprocess.Popen(server_command, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            info = wait_ready(server, args.host, port, args.startup_timeout, stderr_path)
            result = trial(args, port, info)
            result["server_alive"] = server.poll() is None
        except ServerError as error:
            print(f"explore_hostile: {error}", file=sys.stderr)
            sys.exit(2)
        finally:
            if server is not None:
                stop(server)
        server_log = tail(stderr_path, 20)
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine,
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "server": {"command": " ".join(["python", *server_command[1:]]), "stderr_tail": server_log or None},
              **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    stalled, during, after = result["stalled"], result["during_stall"], result["after_stall"]
    print(f"stalled: {stalled['opened']} opened, {stalled['closed']} closed "
          f"(after {stalled['closed_after_s']} s), {stalled['still_open_after_window']} still open after "
          f"{args.window:.0f} s; first answers {stalled['first_answers']}")
    print(f"during the stall: {during['requests']} requests, {during['statuses']}, first 200 after "
          f"{during['first_200_after_s']} s")
    print(f"after it: {after['requests']} requests, {after['statuses']}; latency of 200s {after['latency_200_ms']} ms")
    print(f"5 MB bodies: {result['oversized_body']}; wrote {args.out}")
    failed = (stalled["still_open_after_window"] or set(after["statuses"]) != {"200"}
              or any(not answer.startswith("HTTP 413") for answer in result["oversized_body"].values()))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
