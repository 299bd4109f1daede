"""Sentence VAEs (Bowman et al. 2016) on a real corpus: the sentences of Debian's ``fortunes`` package
(/usr/share/games/fortunes, strfile format: entries between lines holding a single ``%``), split on
. ! ? followed by white space, kept at 4-30 words of printable ASCII (and at most ``--max-len`` word
tokens, so none is cut), deduplicated and shuffled with a seed. The ``seq-vae`` preset (bidirectional
GRU encoder, GRU decoder fed z at every step) is trained on them with word tokens twice, otherwise
identically: with its remedies against posterior collapse (word dropout 0.25, free bits 0.25 nats a
dimension, linear KL warm-up) and without them (``model.word_dropout=0``, ``model.free_bits=0``,
``train.kl_warmup=none``). For each: the held-out importance-sampled NLL (``--eval-k`` samples), the NLL
per token and perplexity, KL, active units, I(x;z), training time and vocabulary size; greedy and
sampled sentences from the prior, a linear interpolation between the posterior means of two held-out
sentences (greedy decoding, as ``vaekit interpolate`` does it), and the share of held-out sentences
whose greedy reconstruction is exact (token for token, ``<unk>`` included).

    python bench/text.py --max-sentences 16000 --epochs 4 --max-minutes 11 --out bench/results/text.json

Measured so (2-core AMD EPYC shared with other work, one thread, 25 minutes in all; 11,520 training
sentences, vocabulary 7,541, test figures on 400 held-out sentences): without the remedies the posterior
collapses (KL 0.03 nats, no active units; all 1,000 held-out sentences checked decode to one and the same
string) at an NLL of 70.6 nats (perplexity 119); with them KL 7.4 nats (about the free-bits floor, 32 x
0.25), 32 active units, I(x;z) 4.4 nats, NLL 72.2 (perplexity 132). Exact greedy reconstructions: 1 in
1,000 and none.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from train_throughput import cpu_name  # bench/ is the script's folder, so on the path

import vaekit
from vaekit.applications.explore import interpolate
from vaekit.applications.generate import sample_sequences
from vaekit.config import resolve_config
from vaekit.data.loaders import prepare_data
from vaekit.data.tokens import BOS, EOS, PAD, UNK, WORD_PATTERN

FORTUNES = Path("/usr/share/games/fortunes")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # . ! or ? followed by a space or a newline
PRINTABLE = re.compile(r"[ -~]+")  # ordinary printable ASCII, space to tilde
SETTINGS = {
    "remedies": [],  # the preset: word dropout 0.25, free bits 0.25, linear KL warm-up
    "none": ["model.word_dropout=0", "model.free_bits=0", "train.kl_warmup=none"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fortunes", type=Path, default=FORTUNES, help="folder of strfile fortune files")
    parser.add_argument("--max-sentences", type=int, default=16_000, help="corpus size after shuffling (0: all)")
    parser.add_argument("--max-len", type=int, default=30, help="word tokens a sentence may have (data.max_len)")
    parser.add_argument("--min-freq", type=int, default=2, help="data.min_freq: rarer words become <unk>")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-minutes", type=float, default=11.0, help="training time budget per model (0: none)")
    parser.add_argument("--kl-warmup-epochs", type=int, default=None,
                        help="with the remedies: epochs of linear KL warm-up (default: half of --epochs)")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--embed", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256, help="GRU width (model.rnn_hidden)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    parser.add_argument("--eval-k", type=int, default=50, help="importance samples of the test NLL")
    parser.add_argument("--eval-max", type=int, default=400, help="held-out sentences the metrics use (0: all)")
    parser.add_argument("--eval-batch", type=int, default=32,
                        help="eval.batch_size: the importance sampler takes all k draws of a batch at once, and "
                             "its logits are batch x k x length x vocabulary (256 x 50 x 31 x 5,400: 8.6 GB)")
    parser.add_argument("--recon-n", type=int, default=1000, help="held-out sentences for the reconstruction check")
    parser.add_argument("--settings", default="remedies,none", help="comma-separated: remedies, none")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (train.threads; 0: torch's default). On our shared 2-core machine one "
                             "thread ran a step 2.7 times faster than two")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="bench/results/text", help="folder for the corpus and the run folders")
    parser.add_argument("--out", default="bench/results/text.json")
    args = parser.parse_args()
    unknown = [s for s in args.settings.split(",") if s not in SETTINGS]
    if unknown:
        parser.error(f"--settings: unknown {', '.join(unknown)}; expected {', '.join(SETTINGS)}")
    warmup = args.kl_warmup_epochs or max(1, (args.epochs + 1) // 2)
    started = time.time()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)

    origin = build_corpus(args.fortunes, args.max_len, args.seed)
    found = len(origin)
    sentences = list(origin)[: args.max_sentences or None]
    per_file = dict(Counter(origin[s] for s in sentences).most_common())
    corpus = work / "fortunes_sentences.txt"
    corpus.write_text("".join(f"{s}\n" for s in sentences))
    lengths = [len(s.split()) for s in sentences]
    print(f"corpus: {len(sentences):,} sentences ({found:,} distinct found) from {len(per_file)} fortune files, "
          f"{np.mean(lengths):.1f} words on average -> {corpus}", flush=True)

    results = {}
    for name in args.settings.split(","):
        folder = work / f"run_{name}"
        if folder.exists():
            shutil.rmtree(folder)
        overrides = [
            f"data.source={corpus}", "data.tokens=word", f"data.min_freq={args.min_freq}",
            f"data.max_len={args.max_len}",
            f"data.split_seed={args.seed}", f"model.latent_dim={args.latent}", f"model.embed_dim={args.embed}",
            f"model.rnn_hidden={args.hidden}", f"train.epochs={args.epochs}", f"train.seed={args.seed}",
            f"train.kl_warmup_epochs={warmup}", "train.progress=false", f"train.device={args.device}",
            f"eval.k={args.eval_k}", f"eval.batch_size={args.eval_batch}", *SETTINGS[name]]
        if args.eval_max:
            overrides.append(f"eval.max_samples={args.eval_max}")
        if args.max_minutes:
            overrides.append(f"train.max_minutes={args.max_minutes}")
        if args.threads:
            overrides.append(f"train.threads={args.threads}")
        if args.batch_size:
            overrides.append(f"train.batch_size={args.batch_size}")
        config = resolve_config(preset="seq-vae", overrides=overrides)
        print(f"{name}: training ({', '.join(SETTINGS[name]) or 'the preset'})", flush=True)
        begin = time.time()
        run = vaekit.train(config, out=folder)
        seconds = time.time() - begin
        if not results:  # the splits and held-out sentences, the same for every setting (seeded)
            data = prepare_data(config.data)
            splits = {"train": len(data.train), "val": len(data.val) if data.val is not None else 0,
                      "test": len(data.test)}
            held = data.test.x
            print(f"splits: {splits}", flush=True)
        results[name] = measure(run, folder, held, args, seconds, overrides)
        row = results[name]
        print(f"{name}: NLL {row['test_nll']:.2f}, KL {row['test_kl']:.2f}, active units {row['active_units']}, "
              f"exact reconstructions {row['exact_reconstruction']:.3f}, training {row['train_seconds']:.0f} s "
              f"({row['train_call_seconds']:.0f} s with the evaluation)", flush=True)

    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "settings": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                     "kl_warmup_epochs_used": warmup,
                     "overrides": {name: SETTINGS[name] for name in results}},
        "corpus": {"file": str(corpus), "sentences": len(sentences), "distinct_found": found,
                   "mean_words": round(float(np.mean(lengths)), 2), "splits": splits, "files": per_file},
        "results": results,
    }
    record["total_seconds"] = round(time.time() - started, 1)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}\n")
    table(results)


def build_corpus(folder: Path, max_len: int, seed: int) -> dict[str, str]:
    """The distinct sentences of every fortune file (not the .dat/.u8 indexes, not ``off/``) in a seeded
    shuffled order, each with the file it was first found in."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in (".dat", ".u8"))
    origin: dict[str, str] = {}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for entry in re.split(r"^%[ \t]*$", text, flags=re.MULTILINE):
            for piece in SENTENCE_END.split(entry.strip()):
                sentence = " ".join(piece.split())
                if (PRINTABLE.fullmatch(sentence) and 4 <= len(sentence.split()) <= 30
                        and len(WORD_PATTERN.findall(sentence.lower())) <= max_len):
                    origin.setdefault(sentence, path.name)
    order = list(origin)
    random.Random(seed).shuffle(order)
    return {s: origin[s] for s in order}


def tokens_of(row: list[int]) -> list[int]:
    """Ids after <bos> up to the first <eos>."""
    row = row[1:] if row and row[0] == BOS else row
    return row[: row.index(EOS)] if EOS in row else [i for i in row if i != PAD]


def measure(run, folder: Path, held: np.ndarray, args, seconds: float, overrides: list[str]) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())["test"]
    rows = (folder / "history.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    n = min(args.recon_n, len(held))
    begin = time.time()
    target = run.spec.transform(held[:n]).long().tolist()
    recon = torch.cat([run.reconstruct(held[i : min(i + 256, n)]).cpu() for i in range(0, n, 256)])
    recon = np.rint(recon.numpy()).astype(np.int64).tolist()
    exact = [tokens_of(a) == tokens_of(b) for a, b in zip(target, recon, strict=True)]
    words = [i for row in target for i in tokens_of(row)]
    recon_texts = run.spec.to_text(np.array(recon[:5]))
    # two held-out sentences of 6-15 words, the same for every setting (the test split is seeded)
    ends = [s for s in held if 6 <= len(str(s).split()) <= 15][:2]
    path = interpolate(run, np.array([ends[0]], dtype=object), np.array([ends[1]], dtype=object), steps=5,
                       path="linear")
    drawn = {decoding: sample_sequences(run, 5, seed=args.seed, decoding=decoding) for decoding in ("greedy", "sample")}
    extra_seconds = time.time() - begin
    return {
        "overrides": overrides, "epochs_run": len(rows) - 1,
        "train_seconds": round(sum(float(r.split(",")[header.index("train_seconds")]) for r in rows[1:]), 1),
        "train_call_seconds": round(seconds, 1),  # vaekit.train: data, training, validation, test metrics
        "history_header": rows[0], "history_last": rows[-1],
        "vocabulary": len(run.spec.vocabulary),
        "test_sentences_evaluated": metrics["n_samples"], "eval_k": metrics.get("k"),
        "test_nll": metrics["nll"], "test_nll_per_token": metrics["nll_per_token"],
        "test_perplexity": metrics["perplexity"], "test_kl": metrics["kl"], "test_neg_elbo": metrics["neg_elbo"],
        "test_recon": metrics.get("recon"), "tokens_per_sentence": metrics["tokens_per_sample"],
        "active_units": metrics["active_units"], "mutual_information": metrics["mutual_information"],
        "kl_per_dim": metrics["kl_per_dim"],
        "exact_reconstruction": float(np.mean(exact)), "reconstruction_n": n,
        "unk_share": round(float(np.mean(np.array(words) == UNK)), 4),  # of those sentences' tokens
        "reconstruction_examples": [{"input": str(s), "greedy": r} for s, r in zip(held[:5], recon_texts, strict=True)],
        "prior_greedy": drawn["greedy"], "prior_sampled": drawn["sample"],
        "interpolation": {"from": str(ends[0]), "to": str(ends[1]), "path": run.spec.to_text(path)},
        "check_seconds": round(extra_seconds, 1),
    }


def table(results: dict) -> None:
    columns = [("NLL", "test_nll", ".2f"), ("NLL/tok", "test_nll_per_token", ".3f"), ("ppl", "test_perplexity", ".1f"),
               ("KL", "test_kl", ".2f"), ("AU", "active_units", "d"), ("MI", "mutual_information", ".2f"),
               ("exact", "exact_reconstruction", ".3f"), ("epochs", "epochs_run", "d"),
               ("train s", "train_seconds", ".0f"), ("vocab", "vocabulary", "d")]
    print(f"{'setting':<10}" + "".join(f"{title:>10}" for title, _, _ in columns))
    for name, row in results.items():
        print(f"{name:<10}" + "".join(f"{format(row[key], spec):>10}" for _, key, spec in columns))
    for name, row in results.items():
        print(f"\n{name}: greedy from the prior")
        print("\n".join(f"  {s}" for s in row["prior_greedy"]))
        print(f"{name}: interpolation")
        print("\n".join(f"  {s}" for s in row["interpolation"]["path"]))


if __name__ == "__main__":
    main()
