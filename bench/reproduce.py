"""The reproduction suite (issue 18): the family's claims at the papers' budgets, in one command that fits
in ten minutes of one H100/H200, every part a concurrent process with its own time limit.

    bash bench/gpu.sh setup reproduce    # on the GPU machine: $OUT/reproduce.json (parts/ and logs/ beside it)
    python bench/reproduce.py --evaluate bench/results/gpu/reproduce.json   # later, where RDKit is: MOSES
    python bench/reproduce.py --quick --out /tmp/reproduce  # the same plumbing, scaled down, on a CPU

Parts (each row says how much of its paper's budget it trained, as measured, not as planned):

1. Disentanglement on the full dSprites grid (737,280 images, vaekit's procedural source), 3 seeds, MIG and
   the FactorVAE score as disentanglement_lib computes them (10,000 points for MIG; 10,000 / 5,000 votes
   of 64 for FactorVAE, on fresh simulator draws encoded by the posterior mean):
   - ``chen2018``, the budget of Chen et al. 2018 (rtqichen/beta-tcvae ``vae_quant.py`` defaults): MLP
     4096-1200-1200-10 (their decoder has three tanh layers of 1200; ours mirrors the ReLU encoder),
     Bernoulli, Adam 1e-3, batch 2048, 50 epochs = 18,000 steps; vae, beta-vae (beta 4), beta-tcvae
     (beta 6, minibatch-weighted sampling) and factor-vae (gamma 35) all at that budget.
   - ``kim2018``, the budget of Kim & Mnih 2018 as disentanglement_lib runs it (unsupervised_study_v1
     shared.gin): conv encoder 32-32-64-64 (ours 3x3 stride 2, theirs 4x4), FC 256, 10 latents, Adam 1e-4,
     batch 64, 300,000 steps; factor-vae (gamma 35, discriminator 6 x 1000 leaky ReLU, Adam 1e-4; theirs
     has betas 0.5/0.9, ours the default 0.9/0.999) and vae as its baseline.
2. MOSES: SMILES- and SELFIES-VAE (preset seq-vae) on all 1.58 M training molecules with the published
   MOSES VAE's objective (moses/vae/config.py): KL weight raised linearly from 0 to 0.05 (there over 100
   epochs, here over the epochs planned), batch 512, Adam 3e-4, gradients clipped at 50, no word dropout
   and no free bits. 10,000 samples are written; validity, uniqueness and novelty are measured as MOSES
   does by ``--evaluate`` on a machine with RDKit (the GPU machine has none).
3. vae vs hvae test NLL (IS, k = 1000, all 10,000 Fashion-MNIST test images) at equal parameters
   (vae widths [716, 358]: 1.673 M vs 1.676 M), at hundreds of epochs (bench/family_nll.py).

Estimates for one H200 (from BENCHMARKS.md: the captured step runs the 784-400-20 MLP at 411 k samples/s
and the 28x28 conv VAE at 112 k at batch 128, i.e. 0.31 and 1.15 ms a step of GPU time; the MOSES GRU at
25,000 molecules/s eager on an H100). Processes without MPS share the GPU by time slicing, so GPU time
adds up across parts; these are GPU-seconds if each part ran alone:
- chen2018, 18,000 steps at batch 2048 (156 GFLOP a step in bf16): ~0.8 ms a step for vae/beta-vae,
  ~1.5 ms for beta-tcvae (its (2048, 2048, 10) pair tensor) -> 15-30 s a run, ~4 min for the 12 runs:
  planned at 100% of the paper's budget.
- kim2018, 300,000 steps at batch 64: ~2 ms a step for factor-vae (conv + discriminator + two
  optimizers), ~1.3 ms for vae -> 10 and 6.5 min a run, ~50 min for six runs: it cannot fit. Planned:
  2 epochs of the grid (23,040 steps, 7.7% of the budget), ~4 min of GPU for the six runs.
- MOSES, 100 epochs of 1.43 M molecules at ~25,000/s = 95 min a model: planned 4 epochs (4%) in a
  6.3-minute window, after ~30 s (SMILES) or ~90 s (SELFIES, translated on 16 cores) of set-up.
- family, 200 epochs of 54,000 images: ~0.13 s an epoch for the vae, ~0.35 s for the hvae (more
  kernels) -> 0.5 and 1.2 min alone, then ~10 s of k = 1000 evaluation each.
- dSprites set-up and scoring run on the CPU beside the GPU work: rendering the grid ~25 s a lane, the
  FactorVAE score renders 960,000 images, ~30 s a run.
The sum (~12 GPU-minutes if alone) exceeds the window, so every run has a wall-clock limit
(train.max_minutes) inside its process's ``timeout``: the suite cannot overrun, and a run the limit cut
reports the fraction it reached. Only a GPU run tells which parts the time slicing cut.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Protocol:
    """One paper's training budget on dSprites."""

    name: str
    paper: str
    paper_steps: int
    batch_size: int
    lr: float
    network: list[str]
    models: tuple[str, ...]
    planned_epochs: int  # of the full grid; the fraction of paper_steps they make is what is planned


DISC = "model.disc_hidden=[1000, 1000, 1000, 1000, 1000, 1000]"  # Kim & Mnih's discriminator
MODELS = {  # name -> (preset, overrides)
    "vae": ("vae", []),
    "beta-vae": ("beta-vae", ["model.beta=4"]),
    "beta-tcvae": ("beta-tcvae", ["model.tc_weight=6"]),
    "factor-vae": ("factor-vae", ["model.tc_weight=35", DISC]),
}
PROTOCOLS = {
    "chen2018": Protocol("chen2018", "Chen et al. 2018: 50 epochs at batch 2048", 50 * 737_280 // 2048, 2048, 1e-3,
                         ["model.network=mlp", "model.hidden=[1200, 1200]"],
                         ("vae", "beta-vae", "beta-tcvae", "factor-vae"), planned_epochs=50),
    "kim2018": Protocol("kim2018", "Kim & Mnih 2018: 300,000 steps at batch 64", 300_000, 64, 1e-4,
                        ["model.network=conv", "model.hidden=[256]", "model.conv_channels=[32, 32, 64, 64]"],
                        ("vae", "factor-vae"), planned_epochs=2),
}
MOSES = {"paper_epochs": 100, "kl_weight": 0.05, "batch_size": 512, "lr": 3e-4, "grad_clip": 50}


@dataclass
class Budget:
    """What one invocation trains: the GPU suite, or ``--quick`` on a CPU."""

    minutes: float  # the whole suite's wall clock, from the driver's start
    device: str
    seeds: list[int]
    dsprites_images: int | None  # None: the full grid
    epochs: dict[str, int]  # dSprites epochs per protocol
    batch_size: dict[str, int]  # per protocol (the paper's on the GPU)
    metric_points: dict[str, int]  # MIG points, FactorVAE train / eval votes and variance points
    moses_molecules: int  # 0: all
    moses_epochs: int
    moses_samples: int
    family_data: str
    family_epochs: int
    family_k: int
    lanes: str  # "model": one dSprites process per (protocol, model); "one": a single process
    extra: list[str] = field(default_factory=list)  # overrides for every dSprites run


def gpu_budget(minutes: float) -> Budget:
    return Budget(minutes=minutes, device="cuda", seeds=[0, 1, 2], dsprites_images=None,
                  epochs={p.name: p.planned_epochs for p in PROTOCOLS.values()},
                  batch_size={p.name: p.batch_size for p in PROTOCOLS.values()},
                  metric_points={"mig": 10_000, "fv_train": 10_000, "fv_eval": 5_000, "fv_variance": 10_000},
                  moses_molecules=0, moses_epochs=4, moses_samples=10_000,
                  family_data="fashion-mnist", family_epochs=200, family_k=1000, lanes="model")


def quick_budget(minutes: float) -> Budget:
    return Budget(minutes=minutes, device="cpu", seeds=[0], dsprites_images=2000,
                  epochs={"chen2018": 1, "kim2018": 1}, batch_size={"chen2018": 256, "kim2018": 64},
                  metric_points={"mig": 1000, "fv_train": 40, "fv_eval": 20, "fv_variance": 500},
                  moses_molecules=1000, moses_epochs=1, moses_samples=100,
                  family_data="digits", family_epochs=1, family_k=10, lanes="one",
                  extra=["train.threads=1", "train.log_every=2"])


# ---------------------------------------------------------------- the driver: plan, launch, collect


def plan_jobs(budget: Budget, out: Path) -> list[dict]:
    """Every process of the suite: name, argv and time limit (seconds from the driver's start)."""
    parts, python = out / "parts", sys.executable
    limit = budget.minutes * 60 - 15  # each process ends (timeout) before the driver's deadline
    runs = [f"{p.name}:{m}" for p in PROTOCOLS.values() for m in p.models]
    lanes = [[r] for r in runs] if budget.lanes == "model" else [runs]
    jobs = []
    for index, lane in enumerate(lanes):
        name = "dsprites_" + ("all" if len(lane) > 1 else lane[0].replace(":", "_"))
        # Each lane's first load holds ~15 GB of host memory for seconds (uint8 -> float32 -> the GPU):
        # started 6 s apart, at most about three overlap.
        jobs.append({"name": name, "limit": limit, "argv": [
            python, str(BENCH / "reproduce.py"), "--lane", ",".join(lane), "--budget", json.dumps(asdict(budget)),
            "--deadline", str(limit - 20), "--stagger", str(6 * index if budget.device != "cpu" else 0),
            "--out", str(parts / f"{name}.json")]})
    # MOSES: set-up (read, tokenise; SELFIES translated on every core) and sampling around the training window
    moses_train = max(0.1, (limit - 120 - 40) / 60) if budget.device != "cpu" else 1.0
    for tokens in ("smiles", "selfies"):
        jobs.append({"name": f"moses_{tokens}", "limit": limit, "argv": [
            python, str(BENCH / "molecules.py"), "--tokens", tokens, "--train", str(budget.moses_molecules),
            "--epochs", str(budget.moses_epochs), "--kl-warmup-epochs", str(budget.moses_epochs),
            "--max-minutes", f"{moses_train:.2f}", "--batch-size", str(MOSES["batch_size"]), "--lr", str(MOSES["lr"]),
            "--samples", str(budget.moses_samples), "--device", budget.device, "--no-measure",
            "--set", f"model.beta={MOSES['kl_weight']}", "--set", "model.word_dropout=0", "--set", "model.free_bits=0",
            "--set", f"train.grad_clip={MOSES['grad_clip']}",
            *(["--set", "train.threads=1"] if budget.device == "cpu" else []),
            "--runs", str(Path(tempfile.gettempdir()) / "reproduce_moses_runs" / tokens),
            "--out", str(parts / f"moses_{tokens}.json")]})
    family_train = max(0.1, (limit - 90) / 60) if budget.device != "cpu" else 1.0
    for name, preset, sets in (("vae", "vae", ["model.hidden=[716, 358]"]), ("hvae", "hvae", [])):
        sets = [*sets, f"train.max_minutes={family_train:.2f}", f"train.device={budget.device}",
                *(["train.threads=1"] if budget.device == "cpu" else [])]
        jobs.append({"name": f"family_{name}", "limit": limit, "argv": [
            python, str(BENCH / "family_nll.py"), "--data", budget.family_data, "--epochs", str(budget.family_epochs),
            "--k", str(budget.family_k), "--presets", preset, *[a for s in sets for a in ("--set", s)],
            "--out", str(parts / f"family_{name}.json")]})
    return jobs


def launch(jobs: list[dict], out: Path, started: float) -> dict[str, dict]:
    """Run every job at once, each under ``timeout``; return each one's exit status and seconds."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running = {}
    for job in jobs:
        seconds = max(1, int(job["limit"] - (time.monotonic() - started)))
        argv = ["timeout", "--kill-after=10", str(seconds), *job["argv"]]
        log = (logs / f"{job['name']}.log").open("w")
        running[job["name"]] = (subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), log, time.monotonic())
    status = {}
    for name, (process, log, begun) in running.items():
        code = process.wait()
        log.close()
        status[name] = {"exit": code, "timed_out": code in (124, 137), "seconds": round(time.monotonic() - begun, 1)}
        print(f"  {name}: exit {code} after {status[name]['seconds']:.0f} s", flush=True)
    return status


def collect(budget: dict, out: Path, status: dict, seconds: float) -> dict:
    """One report from the parts' JSON files (a part that failed keeps its log's tail)."""
    parts = out / "parts"
    dsprites_rows, moses, family = [], {}, {}
    for name, state in status.items():
        path = parts / f"{name}.json"
        record = json.loads(path.read_text()) if path.exists() else None
        if record is None:
            log = out / "logs" / f"{name}.log"
            state["log_tail"] = log.read_text()[-1500:] if log.exists() else ""
        elif name.startswith("dsprites"):
            dsprites_rows += record["runs"]
        elif name.startswith("moses"):
            moses[name.removeprefix("moses_")] = record
        else:
            family[name.removeprefix("family_")] = record
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(), "budget": budget, "wall_seconds": round(seconds, 1), "jobs": status,
        "protocols": {p.name: {**asdict(p), "planned_fraction": planned_fraction(p, budget)}
                      for p in PROTOCOLS.values()},
        "dsprites": {"runs": dsprites_rows, "summary": summarise(dsprites_rows)},
        "moses": {tokens: moses_row(record, budget) for tokens, record in moses.items()},
        "family": {name: record.get("rows", []) for name, record in family.items()},
    }


def planned_fraction(protocol: Protocol, budget: dict) -> float:
    images = budget["dsprites_images"] or 737_280
    steps = budget["epochs"][protocol.name] * (images // budget["batch_size"][protocol.name])
    return steps / protocol.paper_steps


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and spread over seeds of each (protocol, model)."""
    table = []
    for key in dict.fromkeys((r["protocol"], r["model"]) for r in rows):
        mine = [r for r in rows if (r["protocol"], r["model"]) == key]
        entry = {"protocol": key[0], "model": key[1], "seeds": len(mine),
                 "budget_fraction": round(statistics.mean(r["budget_fraction"] for r in mine), 4)}
        for metric in ("mig", "factor_vae"):
            values = [r[metric] for r in mine if r.get(metric) is not None]
            if values:
                entry[metric] = {"mean": round(statistics.mean(values), 4),
                                 "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}
        table.append(entry)
    return table


def moses_row(record: dict, budget: dict) -> dict:
    result = next(iter(record["results"].values()))
    epochs = result["epochs_run"]  # a row per epoch begun; the last may be cut short by the time limit
    row = {"epochs_run": epochs, "budget_fraction": round(epochs / MOSES["paper_epochs"], 4),
           "kl_weight_at_end_at_most": round(MOSES["kl_weight"] * min(1.0, epochs / budget["moses_epochs"]), 4),
           "training_molecules": result["training_molecules"], "train_seconds": result["train_seconds"],
           "test_nll": result["test_nll"], "samples_file": result["samples_file"]}
    row |= {k: result[k] for k in ("validity", "unique_at_1k", "unique_at_10k", "novelty") if k in result}
    return row


def machine() -> dict:
    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def percent(fraction: float) -> str:
    return f"{100 * fraction:.3g}%"


def cell(entry: dict, metric: str) -> str:
    return f"{entry[metric]['mean']:.3f} ± {entry[metric]['std']:.3f}" if metric in entry else "-"


def print_table(report: dict) -> None:
    print(f"\nDisentanglement, dSprites ({report['budget']['dsprites_images'] or 'all 737,280'} images)")
    print(f"{'protocol':<9} {'model':<11} {'seeds':>5} {'budget':>22} {'MIG':>15} {'FactorVAE':>15}")
    for entry in report["dsprites"]["summary"]:
        fraction = f"{percent(entry['budget_fraction'])} of the paper's"
        print(f"{entry['protocol']:<9} {entry['model']:<11} {entry['seeds']:>5} {fraction:>22} "
              f"{cell(entry, 'mig'):>15} {cell(entry, 'factor_vae'):>15}")
    print("\nMOSES (validity, unique@10k, novelty: `python bench/reproduce.py --evaluate` where RDKit is)")
    print(f"{'model':<8} {'epochs':>7} {'budget':>22} {'KL weight':>9} {'test NLL':>9} {'valid':>6} {'uniq@10k':>8} "
          f"{'novelty':>7}")
    for tokens, row in report["moses"].items():
        fraction = f"{percent(row['budget_fraction'])} of the paper's"
        measured = [f"{row[k]:.3f}" if k in row else "-" for k in ("validity", "unique_at_10k", "novelty")]
        print(f"{tokens:<8} {row['epochs_run']:>7} {fraction:>22} {row['kl_weight_at_end_at_most']:>9.3f} "
              f"{row['test_nll']:>9.2f} {measured[0]:>6} {measured[1]:>8} {measured[2]:>7}")
    print("\nvae vs hvae at equal parameters, test NLL (importance sampled)")
    print(f"{'model':<6} {'parameters':>10} {'epochs':>7} {'test NLL':>9} {'-ELBO':>9} {'active':>6}")
    for name, rows in report["family"].items():
        for r in rows:
            print(f"{name:<6} {r['parameters']:>10,} {r['epochs_trained']:>7} {r['test_nll']:>9.2f} "
                  f"{r['test_neg_elbo']:>9.2f} {r['active_units']:>6}")
    failed = {n: s for n, s in report["jobs"].items() if s["exit"] != 0}
    for name, state in failed.items():
        print(f"\n{name} FAILED (exit {state['exit']}{', timed out' if state['timed_out'] else ''}):"
              f"\n{state.get('log_tail', '')[-600:]}")
    print(f"\nwall {report['wall_seconds']:.0f} s")


def evaluate(path: Path) -> None:
    """Measure the MOSES samples of an earlier suite (needs RDKit) and print its table again."""
    report = json.loads(path.read_text())
    parts = path.parent / "parts"
    for tokens in report["moses"]:
        part = parts / f"moses_{tokens}.json"
        subprocess.run([sys.executable, str(BENCH / "molecules.py"), "--evaluate", str(part)], check=True)
        report["moses"][tokens] = moses_row(json.loads(part.read_text()), report["budget"])
    path.write_text(json.dumps(report, indent=1) + "\n")
    print_table(report)


# ---------------------------------------------------------------- a dSprites lane (one process)


def run_lane(runs: list[str], budget: dict, deadline: float, stagger: float, out: Path) -> None:
    """Train and score ``protocol:model`` runs for every seed, one after another, on the grid drawn once;
    each run's time limit shares what is left before ``deadline`` (seconds from this process's start)."""
    import numpy as np

    import vaekit
    from vaekit.config import DataConfig
    from vaekit.data.sources.dsprites import DSprites, load_dsprites

    started = time.monotonic()
    # All of the grid is trained on, held on the device (12 GB as float32: in_memory=yes past the 4 GB default)
    data = {"source": "dsprites", "split_seed": 0, "val_fraction": 0.0, "test_fraction": 0.0, "scale": "none",
            "in_memory": "yes"}
    if budget["dsprites_images"]:
        data["max_samples"] = budget["dsprites_images"]
    raw = load_dsprites(DataConfig(**data)).train  # (N, 1, 64, 64) uint8, every image is trained on
    print(f"dSprites: {len(raw.x):,} images drawn in {time.monotonic() - started:.0f} s", flush=True)
    time.sleep(stagger)
    queue = [(run, seed) for seed in budget["seeds"] for run in runs]
    score_seconds = 40.0 if budget["device"] != "cpu" else 5.0  # the FactorVAE score's 960,000 renders
    rows = []
    for index, (run, seed) in enumerate(queue):
        protocol, model = PROTOCOLS[run.split(":")[0]], run.split(":")[1]
        left = len(queue) - index
        minutes = max(0.05, (deadline - (time.monotonic() - started) - left * score_seconds) / left / 60)
        preset, extra = MODELS[model]
        config = vaekit.resolve_config(preset=preset, overrides=[
            *[f"data.{k}={json.dumps(v)}" for k, v in data.items()],  # quoted: a bare yes is YAML's true
            "model.latent_dim=10", *protocol.network,
            "model.likelihood=bernoulli", "model.reduction=sum", f"train.epochs={budget['epochs'][protocol.name]}",
            f"train.batch_size={budget['batch_size'][protocol.name]}", f"train.lr={protocol.lr}",
            f"train.seed={seed}", f"train.max_minutes={minutes:.3f}", "train.progress=false",
            f"train.device={budget['device']}", "eval.enabled=false", *extra, *budget["extra"]])
        begun = time.monotonic()
        trained = vaekit.train(config, data=raw)
        train_seconds = time.monotonic() - begun
        samples = sum(row["train_seconds"] * row["samples_per_s"] for row in trained.history)
        steps = round(samples / config.train.batch_size)
        begun = time.monotonic()
        scores = score(trained, DSprites(), np.random.default_rng(1000 + seed), budget["metric_points"])
        row = {"protocol": protocol.name, "model": model, "seed": seed, "steps": steps,
               "budget_fraction": round(steps / protocol.paper_steps, 4), "time_limit_minutes": round(minutes, 2),
               "train_seconds": round(train_seconds, 1), "score_seconds": round(time.monotonic() - begun, 1),
               "final_train_elbo": trained.history[-1].get("elbo"), **scores}
        rows.append(row)
        print(json.dumps(row), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"runs": rows}, indent=1) + "\n")  # after every run: a cut lane keeps its rows


def score(trained, sprites, rng, points: dict) -> dict:
    """MIG and the FactorVAE score of the posterior mean, with disentanglement_lib's sample counts."""
    import numpy as np

    from vaekit.evaluation.disentangle import factor_vae_score, mig

    def represent(images: np.ndarray) -> np.ndarray:
        return trained.encode(images).mean.float().cpu().numpy()

    factors = sprites.sample_factors(points["mig"], rng)
    codes = np.concatenate([represent(sprites.render(factors[i:i + 1000])) for i in range(0, len(factors), 1000)])
    factor_vae = factor_vae_score(represent, sprites, rng, n_train=points["fv_train"], n_eval=points["fv_eval"],
                                  n_variance_samples=points["fv_variance"])
    return {"mig": round(mig(codes, factors)["mig"], 4), "factor_vae": round(factor_vae, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets on the CPU: a test of the plumbing")
    parser.add_argument("--minutes", type=float, default=None, help="the suite's wall clock (default 9.5; quick 5)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu"))
    parser.add_argument("--evaluate", type=Path, default=None, help="measure an earlier suite's MOSES samples")
    parser.add_argument("--lane", help=argparse.SUPPRESS)  # internal: one dSprites process
    parser.add_argument("--budget", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--stagger", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evaluate is not None:
        return evaluate(args.evaluate)
    if args.lane:
        return run_lane(args.lane.split(","), json.loads(args.budget), args.deadline, args.stagger, args.out)
    started = time.monotonic()
    budget = quick_budget(args.minutes or 5.0) if args.quick else gpu_budget(args.minutes or 9.5)
    for folder in (args.out / "parts", args.out / "logs"):
        shutil.rmtree(folder, ignore_errors=True)
    jobs = plan_jobs(budget, args.out)
    print(f"reproduce: {len(jobs)} processes, {budget.minutes} minutes, device {budget.device}", flush=True)
    status = launch(jobs, args.out, started)
    report = collect(asdict(budget), args.out, status, time.monotonic() - started)
    (args.out / "reproduce.json").write_text(json.dumps(report, indent=1) + "\n")
    print_table(report)
    print(f"wrote {args.out / 'reproduce.json'}")


if __name__ == "__main__":
    main()
