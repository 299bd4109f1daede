"""Training throughput: vaekit's trainer against the classic PyTorch VAE loop, interleaved.

Each contender runs in its own process (CPU thread settings such as flush-to-zero are per process)
and trains one epoch at a time when the driver says so; the order alternates each round (A B, B A)
so both see the same machine conditions. Ratios are taken per round, then the median.

Contenders, on Fashion-MNIST (60,000 train / 10,000 test, pixels scaled to [0, 1]):
  reference  the classic example's loop: DataLoader over a TensorDataset, batch 128, sigmoid +
             BCE summed, Adam (default), ``loss.item()`` per batch;
  vaekit     ``vaekit.training.Trainer`` on the same architecture (configs/classic.yaml);
  ablations  vaekit without one of its defaults, and a minimal eager loop (``--ablations``);
  capture    vaekit-eager (train.capture=off) and vaekit-captured (train.capture=on: CUDA graphs on a
             GPU, the device-side epoch on the CPU); plain "vaekit" is the default, auto;
  manual     (``--limit``, MLP) the classic MLP with a hand-written backward, no autograd, every
             intermediate preallocated: what an eager loop could reach;
  gemm-only  (``--limit``, MLP) only the matrix products of each step: the machine's ceiling.
Models: the classic MLP (784-400-20) and a conv VAE (vaekit's default conv network on 28x28, the
reference loop driving the very same modules). After the last epoch every contender's test -ELBO is
measured with one estimator (5 draws per image, fixed noise).

    python bench/train_throughput.py --epochs 10 --out bench/results/train_throughput.json
    python bench/train_throughput.py --device cuda --ablations --out bench/results/train_throughput_gpu.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CLASSIC = Path(__file__).resolve().parents[1] / "configs" / "classic.yaml"


# ---------------------------------------------------------------------------- the reference loop
class ClassicVAE(nn.Module):
    """The model of the classic PyTorch example (pytorch/examples vae/main.py), written out."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        return self.fc21(h), self.fc22(h)

    def decode_logits(self, z):
        return self.fc4(F.relu(self.fc3(z)))


class WrappedVAE(nn.Module):
    """vaekit's conv networks behind the classic interface, for the reference loop."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def encode(self, x):
        q = self.model.encode(x)
        return q.loc, q.logvar

    def decode_logits(self, z):
        return self.model.decoder(z)[:, 0]


def reference_epoch(model, optimizer, loader, sink, device, log_every: int = 10) -> int:
    model.train()
    seen = 0
    for batch_idx, (x, _) in enumerate(loader):
        x = x.to(device)  # the example's `data.to(device)`: the data set stays in host memory
        optimizer.zero_grad()
        mu, logvar = model.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = torch.sigmoid(model.decode_logits(z)).view_as(x)
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = bce + kld
        loss.backward()
        train_loss = loss.item()
        optimizer.step()
        if batch_idx % log_every == 0:
            print(f"batch {batch_idx} loss {train_loss / len(x):.4f}", file=sink)
        seen += len(x)
    return seen


@torch.no_grad()
def test_neg_elbo(encode, decode_logits, x_test, draws: int = 5, batch: int = 1000) -> float:
    """-ELBO in nats per image: BCE summed + analytic KL, averaged over ``draws`` fixed draws."""
    generator = torch.Generator().manual_seed(1234)
    total = 0.0
    for start in range(0, len(x_test), batch):
        x = x_test[start : start + batch]
        mu, logvar = encode(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
        for _ in range(draws):
            z = mu + torch.randn(mu.shape, generator=generator).to(mu.device) * torch.exp(0.5 * logvar)
            logits = decode_logits(z).reshape(len(x), -1)
            bce = F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), -1), reduction="none").sum(1)
            total += float((bce + kl).sum()) / draws
    return total / len(x_test)


def minimal_epoch(model, optimizer, train, generator, batch: int = 128) -> int:
    """The least an eager PyTorch loop can do for this model: index batches of an in-memory
    tensor, logits-based BCE, fused Adam, no metrics, no host sync."""
    model.train()
    order = torch.randperm(len(train), generator=generator).to(train.device)
    for start in range(0, len(train) - batch + 1, batch):
        x = train[order[start : start + batch]]
        mu, logvar = model.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = model.decode_logits(z).reshape(len(x), -1)
        loss = F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), -1), reduction="sum")
        loss = loss + 0.5 * torch.sum(mu.square() + logvar.exp() - 1 - logvar)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return len(train) // batch * batch


class ManualStep:
    """The classic MLP trained with a hand-written backward pass: no autograd, every intermediate
    preallocated, fused Adam. Shows what is left for an eager loop once autograd and allocation are
    gone. ``check`` compares its gradients with autograd's before the benchmark starts."""

    def __init__(self, model: ClassicVAE, train: Tensor, generator: torch.Generator, batch: int = 128) -> None:
        self.model, self.train, self.generator, self.batch = model, train, generator, batch
        m = model
        self.w1, self.b1, self.w3, self.b3, self.w4, self.b4 = (
            m.fc1.weight, m.fc1.bias, m.fc3.weight, m.fc3.bias, m.fc4.weight, m.fc4.bias)
        with torch.no_grad():  # the two heads as one 40 x 400 layer (views keep the modules in sync)
            self.w2 = torch.cat([m.fc21.weight, m.fc22.weight])
            self.b2 = torch.cat([m.fc21.bias, m.fc22.bias])
            m.fc21.weight.data, m.fc22.weight.data = self.w2[:20], self.w2[20:]
            m.fc21.bias.data, m.fc22.bias.data = self.b2[:20], self.b2[20:]
        self.params = [self.w1, self.b1, self.w2, self.b2, self.w3, self.b3, self.w4, self.b4]
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.step = torch.zeros(())  # Adam's step count, shared by all parameters
        e = lambda *shape: torch.empty(*shape)  # noqa: E731
        b = batch
        self.h, self.o, self.std, self.eps, self.z = e(b, 400), e(b, 40), e(b, 20), e(b, 20), e(b, 20)
        self.h3, self.logits, self.d_logits, self.d_h3 = e(b, 400), e(b, 784), e(b, 784), e(b, 400)
        self.d_z, self.d_o, self.d_h = e(b, 20), e(b, 40), e(b, 400)

    @torch.no_grad()
    def backward(self, x: Tensor) -> None:
        """Forward and backward of sum BCE(logits, x) + KL for one batch; gradients into self.grads."""
        w1, b1, w2, b2, w3, b3, w4, b4 = self.params
        g_w1, g_b1, g_w2, g_b2, g_w3, g_b3, g_w4, g_b4 = self.grads
        h, o, std, eps, z, h3, logits = self.h, self.o, self.std, self.eps, self.z, self.h3, self.logits
        torch.addmm(b1, x, w1.t(), out=h).clamp_(min=0)
        torch.addmm(b2, h, w2.t(), out=o)
        mu, logvar = o[:, :20], o[:, 20:]
        torch.mul(logvar, 0.5, out=std).exp_()
        eps.normal_(generator=self.generator)
        torch.addcmul(mu, eps, std, out=z)
        torch.addmm(b3, z, w3.t(), out=h3).clamp_(min=0)
        torch.addmm(b4, h3, w4.t(), out=logits)
        d_logits = torch.sigmoid(logits, out=self.d_logits).sub_(x)  # d BCE / d logits
        torch.mm(d_logits.t(), h3, out=g_w4)
        torch.sum(d_logits, 0, out=g_b4)
        d_h3 = torch.mm(d_logits, w4, out=self.d_h3).mul_(h3 > 0)
        torch.mm(d_h3.t(), z, out=g_w3)
        torch.sum(d_h3, 0, out=g_b3)
        d_z = torch.mm(d_h3, w3, out=self.d_z)
        torch.add(d_z, mu, out=self.d_o[:, :20])  # d/d mu of the KL is mu
        d_logvar = torch.mul(d_z, eps, out=self.d_o[:, 20:]).mul_(std)  # 0.5 (dz eps std + std^2 - 1)
        d_logvar.addcmul_(std, std).sub_(1).mul_(0.5)
        torch.mm(self.d_o.t(), h, out=g_w2)
        torch.sum(self.d_o, 0, out=g_b2)
        d_h = torch.mm(self.d_o, w2, out=self.d_h).mul_(h > 0)
        torch.mm(d_h.t(), x, out=g_w1)
        torch.sum(d_h, 0, out=g_b1)

    @torch.no_grad()
    def epoch(self) -> int:
        order = torch.randperm(len(self.train), generator=self.generator)
        for start in range(0, len(self.train) - self.batch + 1, self.batch):
            self.backward(self.train[order[start : start + self.batch]])
            self.step.add_(1)
            torch._fused_adam_(self.params, self.grads, self.exp_avg, self.exp_avg_sq, [], [self.step] * 8,
                               lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                               amsgrad=False, maximize=False)
        return len(self.train) // self.batch * self.batch

    def check(self) -> float:
        """Largest gap between these gradients and autograd's on one batch, relative to their scale."""
        x = self.train[: self.batch]
        state = self.generator.get_state()
        self.backward(x)
        self.generator.set_state(state)
        eps = torch.empty(self.batch, 20).normal_(generator=self.generator)
        params = [p.detach().clone().requires_grad_() for p in self.params]
        w1, b1, w2, b2, w3, b3, w4, b4 = params
        o = F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)
        mu, logvar = o[:, :20], o[:, 20:]
        logits = F.linear(F.relu(F.linear(mu + eps * torch.exp(0.5 * logvar), w3, b3)), w4, b4)
        loss = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        (loss + 0.5 * torch.sum(mu.square() + logvar.exp() - 1 - logvar)).backward()
        pairs = zip(params, self.grads, strict=True)
        return max(float((p.grad - g).abs().max() / p.grad.abs().max()) for p, g in pairs)


class GemmOnlyStep:
    """The machine's limit for the classic MLP: only the 11 matrix products of a batch-128 training
    step (4 forward, 7 backward; x needs no gradient), on preallocated tensors, nothing else."""

    def __init__(self, n_samples: int, batch: int = 128) -> None:
        self.steps = n_samples // batch
        self.n = self.steps * batch
        r = lambda *shape: torch.randn(*shape)  # noqa: E731
        x, h1, z, h3 = r(batch, 784), r(batch, 400), r(batch, 20), r(batch, 400)
        w1, wh, w3, w4 = r(400, 784), r(40, 400), r(400, 20), r(784, 400)
        g4, g3, gh = r(batch, 784), r(batch, 400), r(batch, 40)
        self.products = [  # (out, a, b): out = a @ b
            (r(batch, 400), x, w1.t()), (r(batch, 40), h1, wh.t()), (r(batch, 400), z, w3.t()),
            (r(batch, 784), h3, w4.t()),
            (r(784, 400), g4.t(), h3), (r(batch, 400), g4, w4), (r(400, 20), g3.t(), z),
            (r(batch, 20), g3, w3), (r(40, 400), gh.t(), h1), (r(batch, 400), gh, wh), (r(400, 784), g3.t(), x),
        ]

    def epoch(self) -> int:
        for _ in range(self.steps):
            for out, a, b in self.products:
                torch.mm(a, b, out=out)
        return self.n


# ---------------------------------------------------------------------------- workers
def worker(name: str, model_kind: str, threads: int, conn, device_name: str = "cpu") -> None:
    """Build one contender, then run one epoch per 'epoch' message; reply with timings. On a GPU
    every contender but the reference holds the data set in device memory."""
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    import vaekit
    from vaekit.data.loaders import make_batches, prepare_data, to_tensors
    from vaekit.models import build_model, build_objective
    from vaekit.training import capture as capturing
    from vaekit.training.trainer import Trainer, make_optimizer

    overrides = ["data.source=fashion-mnist"]
    if model_kind == "conv":
        overrides += ["model.network=conv", "model.hidden=[256]", "model.latent_dim=20"]
    config = vaekit.resolve_config(config_file=CLASSIC, overrides=overrides)
    data = prepare_data(config.data)
    host_train = to_tensors(data.train, data.spec)["x"]
    train = host_train.to(device)
    x_test = to_tensors(data.test, data.spec)["x"].to(device)
    torch.manual_seed(1)
    vae = build_model(data.spec, config.model).to(device)
    if name == "gemm-only":
        limit = GemmOnlyStep(len(train))
        run_epoch = limit.epoch
        encode = decode_logits = None
    elif name == "reference":
        model = (ClassicVAE() if model_kind == "mlp" else WrappedVAE(vae)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        dataset = torch.utils.data.TensorDataset(host_train, torch.zeros(len(train)))
        loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True,
                                             pin_memory=device.type == "cuda")  # as the example on a GPU
        sink = open(os.devnull, "w")  # noqa: SIM115  (the example prints a log line every 10 batches)
        run_epoch = lambda: reference_epoch(model, optimizer, loader, sink, device)  # noqa: E731
        encode, decode_logits = model.encode, model.decode_logits
    elif name == "manual":
        from vaekit.training import cpu

        cpu.tune()
        model = ClassicVAE()
        manual = ManualStep(model, train.reshape(len(train), -1), torch.Generator().manual_seed(1))
        gap = manual.check()
        if gap > 1e-4:
            raise RuntimeError(f"hand-written gradients differ from autograd's by {gap:.2e}")
        run_epoch = manual.epoch
        encode, decode_logits = model.encode, model.decode_logits
    elif name == "minimal":
        from vaekit.training import cpu

        cpu.tune()
        model = (ClassicVAE() if model_kind == "mlp" else WrappedVAE(vae)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        flat = train.reshape(len(train), -1) if model_kind == "mlp" else train
        generator = torch.Generator().manual_seed(1)
        run_epoch = lambda: minimal_epoch(model, optimizer, flat, generator)  # noqa: E731
        encode, decode_logits = model.encode, model.decode_logits
    else:
        tuning = name != "vaekit-no-cpu-tuning"
        optimizer = make_optimizer(vae.parameters(), "adam", 1e-3)
        if name == "vaekit-unfused-adam":
            optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)
        capture = {"vaekit-eager": "off", "vaekit-captured": "on"}.get(name, "auto")
        batches = make_batches(data.train, data.spec, config.data, 128, device, shuffle=True, seed=1)
        trainer = Trainer(vae, build_objective(config.model), optimizer, log_every=50, cpu_tuning=tuning,
                          capture=capture)
        epochs_done = [0]
        whole_batches = capturing.whole_batches(capture, device, False)  # the last batch dropped

        def run_epoch() -> int:
            epochs_done[0] += 1
            trainer.fit(batches, None, epochs_done[0])
            return len(train) // 128 * 128 if whole_batches else len(train)

        def encode(x):
            q = vae.encode(x)
            return q.loc, q.logvar

        decode_logits = lambda z: vae.decoder(z)[:, 0]  # noqa: E731
    conn.send("ready")
    while (message := conn.recv()) != "stop":
        if message == "epoch":
            start = time.perf_counter()
            seen = run_epoch()
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            conn.send({"seconds": seconds, "samples_per_s": seen / seconds})
        elif message == "test":
            vae.eval()
            value = test_neg_elbo(encode, decode_logits, x_test) if encode is not None else float("nan")
            conn.send({"test_neg_elbo": value})
    conn.close()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_model(model_kind: str, contenders: list[str], epochs: int, threads: int, device: str = "cpu") -> dict:
    ctx = mp.get_context("spawn")
    pipes, procs = {}, []
    for name in contenders:  # start one after another so set-ups never overlap
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(name, model_kind, threads, child, device), daemon=True)
        proc.start()
        assert parent.recv() == "ready"
        pipes[name] = parent
        procs.append(proc)
    rounds = []
    for epoch in range(epochs):
        order = contenders if epoch % 2 == 0 else contenders[::-1]
        row = {}
        for name in order:
            pipes[name].send("epoch")
            row[name] = pipes[name].recv()
        rounds.append(row)
        shown = "  ".join(f"{n} {row[n]['samples_per_s']:8.0f}/s" for n in contenders)
        print(f"[{model_kind}] epoch {epoch + 1}: {shown}", flush=True)
    results = {}
    for name in contenders:
        pipes[name].send("test")
        test = pipes[name].recv()
        pipes[name].send("stop")
        measured = rounds[1:] if len(rounds) > 1 else rounds  # round 1 is warm-up
        speeds = [r[name]["samples_per_s"] for r in measured]
        ratios = [r[name]["samples_per_s"] / r["reference"]["samples_per_s"] for r in measured]
        results[name] = {
            "samples_per_s_median": round(statistics.median(speeds), 1),
            "samples_per_s_best": round(max(speeds), 1),
            "s_per_epoch_median": round(statistics.median(r[name]["seconds"] for r in measured), 3),
            "ratio_vs_reference_median": round(statistics.median(ratios), 3),
            "ratios_per_round": [round(x, 3) for x in ratios],
            "test_neg_elbo": round(test["test_neg_elbo"], 3),
            "per_epoch_samples_per_s": [round(r[name]["samples_per_s"], 1) for r in rounds],
        }
    for proc in procs:
        proc.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--models", default="mlp,conv")
    parser.add_argument("--conv-epochs", type=int, default=None, help="epochs for the conv model (default --epochs)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--ablations", action="store_true",
                        help="also vaekit without its CPU tuning / with unfused Adam, and a minimal eager loop")
    parser.add_argument("--limit", action="store_true", help="also the GEMM-only step (MLP): the machine's limit")
    parser.add_argument("--contenders", default=None,
                        help="comma-separated names instead of the above (reference is always included)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the hand-written and GEMM-only steps: cpu)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_throughput.json"))
    args = parser.parse_args()
    contenders = ["reference", "vaekit"]
    if args.ablations:
        contenders += ["vaekit-no-cpu-tuning", "vaekit-unfused-adam", "minimal"]
    if args.limit:
        contenders += ["manual", "gemm-only"]
    if args.contenders:
        contenders = ["reference", *[c for c in args.contenders.split(",") if c != "reference"]]
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": args.threads,
                    "torch": torch.__version__, "python": platform.python_version(), "device": args.device,
                    "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None},
        "batch_size": 128,
        "epochs": args.epochs,
        "note": "samples/s over the training pass only; medians exclude round 1 (warm-up)",
        "models": {},
    }
    for model_kind in args.models.split(","):
        epochs = args.conv_epochs if (model_kind == "conv" and args.conv_epochs) else args.epochs
        cpu_only = model_kind != "mlp" or args.device != "cpu"
        names = [c for c in contenders if not (cpu_only and c in ("manual", "gemm-only"))]
        report["models"][model_kind] = run_model(model_kind, names, epochs, args.threads, args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'model':<6} {'contender':<22} {'samples/s':>10} {'vs ref':>7} {'test -ELBO':>11}")
    for model_kind, results in report["models"].items():
        for name, r in results.items():
            print(f"{model_kind:<6} {name:<22} {r['samples_per_s_median']:>10.0f} "
                  f"{r['ratio_vs_reference_median']:>6.2f}x {r['test_neg_elbo']:>11.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
