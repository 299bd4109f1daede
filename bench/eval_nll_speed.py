"""How fast the importance-sampled NLL runs: ``vaekit evaluate --k 1000`` on the classic MLP.

The evaluation (``vaekit.evaluation.report.evaluate``: -ELBO, the k-sample NLL and the latent
statistics) is timed on the first ``--items`` test images at ``--k`` importance samples, several
rounds, interleaved with:
  before        the evaluation as it ran before issue 18: the Bernoulli log-likelihood of the k
                draws from the per-value BCE-with-logits kernel (``--before``); the draws and chunks
                are the same, so is the estimate;
  decoder-only  the decoder alone on as many latent codes, in the same chunks: the matrix products
                and activations every estimate must pay (``--floor``).
Rounds alternate the order; the report gives each variant's best round, the per-round ratios to
"after" (the default) and their median, and the projection to all 10,000 test images. It also
checks the end-of-training budget's planner: the timing pilot's seconds per pass
(``pilot_seconds_per_pass``, 8 items) projected to the measured evaluation, against what it took.

The model is the classic 784-400-20 MLP (configs/classic.yaml) trained ``--epochs`` on Fashion-MNIST,
or a run folder (``--run``). ``--quick`` times an untrained model of the same shape on a few digits
images (the test suite runs it).

    python bench/eval_nll_speed.py --items 1000 --before --floor --out bench/results/eval_nll_speed.json
    python bench/eval_nll_speed.py --run runs/fm --items 10000 --rounds 1 --out bench/results/eval_nll_full.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

import vaekit
from vaekit.config import resolve_config
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.distributions import likelihoods
from vaekit.evaluation import likelihood
from vaekit.evaluation.report import PILOT_ITEMS, evaluate, pilot_seconds_per_pass
from vaekit.models import build_model
from vaekit.models.vae import VAE

CLASSIC = Path(__file__).resolve().parents[1] / "configs" / "classic.yaml"
TEST_ITEMS = 10_000  # Fashion-MNIST's test split: what the projection is to


@contextlib.contextmanager
def as_before() -> Iterator[None]:
    """The Bernoulli log-likelihood as it was computed without gradients: per value, by BCE-with-logits."""
    log_prob = likelihoods.Bernoulli.log_prob
    likelihoods.Bernoulli.log_prob = likelihoods.EventDistribution.log_prob
    try:
        yield
    finally:
        likelihoods.Bernoulli.log_prob = log_prob


def timed_evaluation(model: VAE, x: torch.Tensor, k: int, seed: int) -> tuple[float, dict]:
    started = time.perf_counter()
    metrics = evaluate(model, x, k=k, seed=seed)
    return time.perf_counter() - started, metrics


@torch.no_grad()
def decoder_only(model: VAE, x: torch.Tensor, k: int, batch_size: int = 256) -> float:
    """Seconds for the decoder alone on len(x) * (k + 1) codes, chunked as the evaluation chunks them."""
    started = time.perf_counter()
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        per_draw = batch[0].numel() * len(batch) * model.likelihood.n_params
        chunk = max(1, min(k, likelihood.CHUNK_ELEMENTS // per_draw))
        model.decoder(torch.randn(len(batch), model.latent_dim))  # the ELBO's pass
        for done in range(0, k, chunk):
            model.decoder(torch.randn(min(chunk, k - done) * len(batch), model.latent_dim))
    return time.perf_counter() - started


def load_model(args: argparse.Namespace) -> tuple[VAE, torch.Tensor, str]:
    """The model, its test images (N, 1, 28, 28) and a description."""
    if args.quick:
        config = resolve_config(config_file=CLASSIC, overrides=["data.source=digits"])
        data = prepare_data(config.data)
        torch.manual_seed(0)
        return build_model(data.spec, config.model), to_tensors(data.test, data.spec)["x"], "untrained classic MLP"
    if args.run is not None:
        run = vaekit.load(args.run, device="cpu")
        data = prepare_data(run.config.data)
        return run.model, to_tensors(data.test, data.spec)["x"], f"run {args.run}"
    config = resolve_config(config_file=CLASSIC, overrides=[
        f"data.source={args.data}", f"train.epochs={args.epochs}", "train.progress=false", "eval.enabled=false",
        "train.device=cpu"])
    run = vaekit.train(config)
    data = prepare_data(config.data)
    return run.model, to_tensors(data.test, data.spec)["x"], f"classic MLP, {args.epochs} epochs on {args.data}"


def significant(seconds: float) -> float:
    """Four significant figures: a fast variant's time never rounds to 0."""
    return float(f"{seconds:.4g}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the classic MLP (without --run)")
    parser.add_argument("--run", type=Path, help="a run folder to evaluate instead of training one")
    parser.add_argument("--items", type=int, default=1000, help="test items timed (the projection is to 10,000)")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--before", action="store_true", help="also time the evaluation as it ran before")
    parser.add_argument("--floor", action="store_true", help="also time the decoder alone on as many codes")
    parser.add_argument("--quick", action="store_true", help="an untrained model on 16 digits images, k = 20")
    parser.add_argument("--out", type=Path, default=Path("bench/results/eval_nll_speed.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.k, args.rounds = 16, 20, 1
    torch.set_num_threads(args.threads)
    model, x, description = load_model(args)
    model.eval()
    x = x[: args.items]
    variants: dict[str, Callable[[], float]] = {}
    metrics: dict[str, dict] = {}

    def evaluation(name: str, context: Callable[[], contextlib.AbstractContextManager]) -> Callable[[], float]:
        def run() -> float:
            with context():
                seconds, metrics[name] = timed_evaluation(model, x, args.k, args.seed)
            return seconds
        return run

    variants["after"] = evaluation("after", contextlib.nullcontext)
    if args.before:
        variants["before"] = evaluation("before", as_before)
    if args.floor:
        variants["decoder-only"] = lambda: decoder_only(model, x, args.k)
    evaluate(model, x[:PILOT_ITEMS], k=min(args.k, 50))  # warm up allocations and kernels
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        names = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in names:
            seconds[name].append(variants[name]())
        print(f"round {round_ + 1}: " + "  ".join(f"{name} {seconds[name][-1]:.2f} s" for name in variants),
              flush=True)
    pilot = pilot_seconds_per_pass(model, x[:PILOT_ITEMS], args.k, args.seed)
    samples = len(x) * (args.k + 1)
    report: dict = {
        "command": " ".join([Path(sys.executable).name, *(sys.argv if argv is None else ["eval_nll_speed.py", *argv])]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": args.threads,
                    "torch": torch.__version__, "python": platform.python_version()},
        "model": description,
        "items": len(x),
        "k": args.k,
        "rounds": args.rounds,
        "note": "seconds of evaluate() (bounds, NLL, latent statistics) on the first `items` test images; "
                "projected_seconds scales the best round to 10,000 images; ratios to 'after' per round, then median",
        "variants": {},
    }
    for name, times in seconds.items():
        best = min(times)
        ratios = [t / a for t, a in zip(times, seconds["after"], strict=True)]
        entry = {"seconds": [significant(t) for t in times], "best_seconds": significant(best),
                 "seconds_per_100_items": significant(best / len(x) * 100),
                 "projected_seconds": significant(best / len(x) * TEST_ITEMS),
                 "decoder_rows_per_second": round(samples / best),
                 "ratio_to_after": round(statistics.median(ratios), 3)}
        if name in metrics:
            entry["nll"] = round(metrics[name]["nll"], 4)
            entry["neg_elbo"] = round(metrics[name]["neg_elbo"], 4)
        report["variants"][name] = entry
    after = min(seconds["after"])
    report["plan"] = {"pilot_seconds_per_pass": pilot, "pilot_projected_seconds": significant(pilot * samples),
                      "measured_seconds": significant(after),
                      "projected_over_measured": round(pilot * samples / after, 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({name: {key: v[key] for key in ("best_seconds", "projected_seconds", "ratio_to_after")}
                      for name, v in report["variants"].items()} | {"plan": report["plan"]}, indent=2))
    return report


if __name__ == "__main__":
    main()
