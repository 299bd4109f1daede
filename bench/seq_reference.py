"""Sequence VAE throughput: vaekit's seq-vae against a plain PyTorch GRU VAE loop, interleaved.

Contenders, on the same token ids (vaekit's own tokenisation of the data, held in memory):
  reference     a sentence VAE written the classic way (Bowman et al. 2016, as tutorial and paper
                repositories write it): a DataLoader over a TensorDataset of padded ids, batch 128,
                shuffled; embedding 128, a bidirectional GRU of width 256 over the padded batch, its
                two final states -> mu, logvar (latent 32); reparameterise; z -> a context of 256,
                tanh(Linear(context)) the decoder's first state, and [token embedding, context] the
                decoder GRU's input at every step (teacher forcing, word dropout 0.25); a linear map to
                the vocabulary, cross-entropy summed with ``ignore_index=<pad>``, the analytic KL with a
                linear warm-up; Adam (default); ``loss.item()`` each batch. vaekit's seq-vae preset
                with the same sizes (its encoder packs instead; its KL has free bits, B x 32 values);
  vaekit        ``vaekit.training.Trainer`` on the seq-vae preset (the CPU path: GRUs run by length);
  vaekit-nngru  the same model through ``nn.GRU`` (packed encoder, padded decoder): what vaekit ran on
                the CPU before the by-length path, and still runs on CUDA.
Each round trains every contender for ``--samples`` samples, the order alternating, and the ratio to
the reference is taken per round; the median is reported. Thread count: ``--threads`` for all.

    python bench/seq_reference.py --data moses --threads 1 --out bench/results/seq_reference_moses.json
    python bench/seq_reference.py --data fortunes --threads 1 --out bench/results/seq_reference_text.json

``--profile`` prints torch.profiler's table of a few vaekit steps instead (``--contenders`` picks which).
``--data fortunes`` builds the sentence corpus as bench/text.py does (``--fortunes`` folder).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from train_throughput import cpu_name  # bench/ is the script's folder, so on the path

from vaekit.build import training_callbacks
from vaekit.config import resolve_config
from vaekit.data.loaders import make_batches, prepare_data
from vaekit.data.tokens import BOS, PAD, UNK
from vaekit.models import build_model, build_objective
from vaekit.networks import recurrent
from vaekit.training.trainer import Trainer, make_optimizer

CONTENDERS = ("reference", "vaekit", "vaekit-nngru")


# ---------------------------------------------------------------------------- the reference loop
class SentenceVAE(nn.Module):
    """A GRU VAE for padded token ids (B, T), written out (Bowman et al. 2016)."""

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden: int = 256, latent: int = 32,
                 word_dropout: float = 0.25) -> None:
        super().__init__()
        self.word_dropout = word_dropout
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.encoder = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.hidden2mean = nn.Linear(2 * hidden, latent)
        self.hidden2logv = nn.Linear(2 * hidden, latent)
        self.latent2context = nn.Linear(latent, hidden)
        self.context2hidden = nn.Linear(hidden, hidden)
        self.decoder = nn.GRU(embed_dim + hidden, hidden, batch_first=True)
        self.outputs2vocab = nn.Linear(hidden, vocab_size)

    def forward(self, x):
        _, hidden = self.encoder(self.embedding(x))  # (2, B, H)
        hidden = torch.cat([hidden[0], hidden[1]], -1)
        mean, logv = self.hidden2mean(hidden), self.hidden2logv(hidden)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logv)
        context = self.latent2context(z)
        inputs = x[:, :-1]
        if self.training and self.word_dropout > 0:
            drop = torch.rand(inputs.shape) < self.word_dropout
            inputs = inputs.masked_fill(drop & (inputs != BOS) & (inputs != PAD), UNK)
        steps = torch.cat([self.embedding(inputs), context.unsqueeze(1).expand(-1, inputs.shape[1], -1)], -1)
        outputs, _ = self.decoder(steps, torch.tanh(self.context2hidden(context)).unsqueeze(0))
        return self.outputs2vocab(outputs), mean, logv


def reference_epoch(model, optimizer, loader, step: int, warmup_steps: int) -> tuple[int, int]:
    model.train()
    seen = 0
    for (x,) in loader:
        optimizer.zero_grad()
        logits, mean, logv = model(x)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), ignore_index=PAD,
                              reduction="sum")
        kl = -0.5 * torch.sum(1 + logv - mean.pow(2) - logv.exp())
        kl_weight = min(1.0, step / warmup_steps)
        loss = (nll + kl_weight * kl) / len(x)
        loss.backward()
        optimizer.step()
        train_loss = loss.item()  # noqa: F841 (the classic loop logs it)
        step += 1
        seen += len(x)
    return seen, step


# ---------------------------------------------------------------------------- data
def data_overrides(args) -> list[str]:
    if args.data == "moses":
        return ["data.source=moses"]
    from text import build_corpus  # bench/text.py

    corpus = Path(tempfile.gettempdir()) / "vaekit_seq_reference_fortunes.txt"
    if not corpus.exists():
        sentences = list(build_corpus(args.fortunes, 30, 0))[:16_000]
        corpus.write_text("".join(f"{s}\n" for s in sentences))
    return [f"data.source={corpus}", "data.tokens=word", "data.min_freq=2", "data.max_len=30"]


# ---------------------------------------------------------------------------- vaekit
class VaekitRun:
    def __init__(self, config, data, by_length: bool) -> None:
        self.by_length = by_length
        torch.manual_seed(0)
        self.model = build_model(data.spec, config.model)
        objective = build_objective(config.model, data.spec, len(data.train))
        self.batches = make_batches(data.train, data.spec, config.data, config.train.batch_size, "cpu",
                                    shuffle=True, seed=0)
        optimizer = make_optimizer(self.model.parameters(), "adam", config.train.lr)
        self.trainer = Trainer(self.model, objective, optimizer, log_every=config.train.log_every,
                               callbacks=training_callbacks(config, None, objective, len(self.batches), None, None))

    def epoch(self) -> int:
        recurrent.DEVICES = ("cpu",) if self.by_length else ()
        self.trainer.fit(self.batches, None, self.trainer.state.epoch + 1)
        return self.batches.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["moses", "fortunes"], default="moses")
    parser.add_argument("--fortunes", type=Path, default=Path("/usr/share/games/fortunes"))
    parser.add_argument("--samples", type=int, default=2048, help="training samples per contender and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every contender")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--profile", action="store_true", help="profile vaekit's step instead (torch.profiler)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.contenders.split(",")
    config = resolve_config(preset="seq-vae", overrides=[*data_overrides(args), f"data.max_samples={args.samples}",
                                                         "train.progress=false"])
    data = prepare_data(config.data)
    vocabulary = data.spec.vocabulary
    print(f"{args.data}: {len(data.train)} training sequences, vocabulary {len(vocabulary)}, length "
          f"{vocabulary.length}; threads {args.threads}", flush=True)
    runs = {}
    for name in names:
        if name == "reference":
            torch.manual_seed(0)
            model = SentenceVAE(len(vocabulary), config.model.embed_dim, config.model.rnn_hidden,
                                config.model.latent_dim, config.model.word_dropout)
            ids = data.spec.transform(data.train.x).long()
            loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ids), batch_size=128, shuffle=True)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
            warmup = config.train.kl_warmup_epochs * len(loader)
            state = {"step": 0}

            def reference(model=model, optimizer=optimizer, loader=loader, state=state, warmup=warmup) -> int:
                seen, state["step"] = reference_epoch(model, optimizer, loader, state["step"], warmup)
                return seen

            runs[name] = reference
        else:
            runs[name] = VaekitRun(config, data, by_length=name == "vaekit").epoch
    if args.profile:
        profile(runs, names)
        return
    speeds: dict[str, list[float]] = {name: [] for name in names}
    for index in range(args.rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            seen = runs[name]()
            speeds[name].append(seen / (time.perf_counter() - started))
        print("round", index + 1, {name: round(values[-1], 1) for name, values in speeds.items()}, flush=True)
    record = {
        "data": args.data, "threads": args.threads, "samples_per_round": len(data.train),
        "vocabulary": len(vocabulary), "length": vocabulary.length,
        "samples_per_s": {name: round(statistics.median(values), 1) for name, values in speeds.items()},
        "per_round": {name: [round(v, 1) for v in values] for name, values in speeds.items()},
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__},
    }
    if "reference" in names:
        record["ratio_to_reference"] = {
            name: round(statistics.median(a / b for a, b in zip(speeds[name], speeds["reference"], strict=True)), 2)
            for name in names if name != "reference"}
    print(json.dumps({k: record[k] for k in ("samples_per_s", "ratio_to_reference") if k in record}), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2))


def profile(runs, names) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    for name in names:
        runs[name]()  # warm up
        with profiler(activities=[ProfilerActivity.CPU]) as result:
            runs[name]()
        print(f"--- {name}")
        print(result.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
