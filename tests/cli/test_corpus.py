"""The bad-input contract, as a corpus (issue 17): every command over a table of bad inputs.

The contract (DESIGN §8): bad input gets ONE line on stderr, "vaekit: error: ...", naming the thing at
fault and what was expected; exit code 2; no traceback; nothing half-written (no new or changed
files, in the case's own folder, the shared bad files or the run folders it reads); no pickle loaded
(the pickled files below would create a canary file if they were). The Python API raises one
ValueError subclass of :class:`~vaekit.errors.VaekitError` with a one-line message instead.

The cases are data: :data:`CASES` (the command line) and :data:`API_CASES` (the Python API), one test
function each. A case's arguments name their files with placeholders, replaced when it runs:

- RUN: the session's tiny digits run; CVAE: the session's conditional run; TABLE: a 1-epoch run on a
  CSV with text and holes; TEXT: a 1-epoch seq-vae on sentences (read-only, all of them);
- BAD/NAME: a bad input built once for the module (see :func:`make_bad_files`);
- BROKEN/NAME: a damaged copy of RUN (see :func:`make_broken_runs`);
- TMP/NAME: the case's own empty folder (its working directory too);
- PORT: a port some other socket is listening on.

Commands run in-process (a subprocess costs seconds of torch import each), through
:func:`vaekit.cli.common.run_app` as ``python -m vaekit`` runs them, with its log format.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
import signal
import socket
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_support import TINY, folder_digest, run_in_process
from test_bad_input import write_fake_mnist
from test_sequence_cli import SMALL
from test_table_cli import write_table_csv

import vaekit
from vaekit.data.sources.idx import IMAGES_MAGIC
from vaekit.errors import VaekitError


@dataclass(frozen=True)
class Case:
    """One bad input: ``args`` to ``vaekit``; ``expect`` "refuse" (exit 2, one error line), "accept"
    (exit 0, on purpose: ``why`` says why) or "warn" (exit 0 and a warning line); ``named``: what the
    line must contain (the option, file or field at fault); ``xfail``: a known bug, left open."""

    name: str
    args: list[str]
    expect: str
    named: str
    why: str = ""
    xfail: str = ""


OUT_PNG = ["--out", "TMP/out.png"]
TRAIN = ["train", "--data", "digits", "--epochs", "1", *TINY]  # + "--out TMP/run" by the case
TRAIN_OUT = ["--out", "TMP/run"]

CASES: list[Case] = [
    # ---------------------------------------------------------------------------------- train: options
    Case("train-epochs-zero", [*TRAIN, "--epochs", "0", *TRAIN_OUT], "refuse", "epochs"),
    Case("train-epochs-negative", [*TRAIN, "--epochs", "-3", *TRAIN_OUT], "refuse", "epochs"),
    Case("train-epochs-text", [*TRAIN, "--epochs", "many", *TRAIN_OUT], "refuse", "--epochs"),
    Case("train-epochs-huge", [*TRAIN, "--epochs", "100000000000", *TRAIN_OUT], "refuse", "epochs"),
    Case("train-lr-zero", [*TRAIN, "--lr", "0", *TRAIN_OUT], "refuse", "lr"),
    Case("train-lr-negative", [*TRAIN, "--lr", "-0.1", *TRAIN_OUT], "refuse", "lr"),
    Case("train-lr-inf", [*TRAIN, "--lr", "inf", *TRAIN_OUT], "refuse", "lr"),
    Case("train-lr-nan", [*TRAIN, "--lr", "nan", *TRAIN_OUT], "refuse", "lr"),
    Case("train-lr-text", [*TRAIN, "--lr", "fast", *TRAIN_OUT], "refuse", "--lr"),
    Case("train-batch-size-zero", [*TRAIN, "--batch-size", "0", *TRAIN_OUT], "refuse", "batch"),
    Case("train-batch-size-negative", [*TRAIN, "--batch-size", "-8", *TRAIN_OUT], "refuse", "batch"),
    Case("train-batch-size-huge", [*TRAIN, "--batch-size", "10000000000000", *TRAIN_OUT], "accept", "",
         why="a batch larger than the data is the whole training split in one step: no memory is asked for"),
    Case("train-seed-text", [*TRAIN, "--seed", "abc", *TRAIN_OUT], "refuse", "--seed"),
    Case("train-device-gpu", [*TRAIN, "--device", "gpu", *TRAIN_OUT], "refuse", "gpu"),
    Case("train-preset-unknown", [*TRAIN, "--preset", "nope", *TRAIN_OUT], "refuse", "nope"),
    Case("train-preset-through-set", [*TRAIN, "--set", "preset=beta-vae", *TRAIN_OUT], "refuse", "--preset"),
    Case("train-set-unknown-key", [*TRAIN, "--set", "model.nope=1", *TRAIN_OUT], "refuse", "model.nope"),
    Case("train-set-unknown-section", [*TRAIN, "--set", "nope.lr=1", *TRAIN_OUT], "refuse", "nope"),
    Case("train-set-no-equals", [*TRAIN, "--set", "train.lr", *TRAIN_OUT], "refuse", "train.lr"),
    Case("train-set-wrong-type", ["train", "--data", "digits", "--set", "train.epochs=abc", *TINY, *TRAIN_OUT],
         "refuse", "train.epochs"),
    Case("train-latent-dim-zero", [*TRAIN, "--set", "model.latent_dim=0", *TRAIN_OUT], "refuse", "model.latent_dim"),
    Case("train-latent-dim-negative", [*TRAIN, "--set", "model.latent_dim=-4", *TRAIN_OUT], "refuse",
         "model.latent_dim"),
    Case("train-latent-dim-huge", [*TRAIN, "--set", "model.latent_dim=1000000000", *TRAIN_OUT], "refuse",
         "model.latent_dim"),
    Case("train-latent-dim-float", [*TRAIN, "--set", "model.latent_dim=1e9", *TRAIN_OUT], "refuse",
         "model.latent_dim"),
    Case("train-hidden-huge", [*TRAIN, "--set", "model.hidden=[10000000,10000000]", *TRAIN_OUT], "refuse",
         "model.hidden"),
    Case("train-hidden-zero", [*TRAIN, "--set", "model.hidden=[0]", *TRAIN_OUT], "refuse", "model.hidden"),
    Case("train-hidden-negative", [*TRAIN, "--set", "model.hidden=[-5]", *TRAIN_OUT], "refuse", "model.hidden"),
    Case("train-hidden-text", [*TRAIN, "--set", "model.hidden=wide", *TRAIN_OUT], "refuse", "model.hidden"),
    Case("train-threads-huge", [*TRAIN, "--set", "train.threads=100000", *TRAIN_OUT], "refuse", "train.threads"),
    Case("train-threads-zero", [*TRAIN, "--set", "train.threads=0", *TRAIN_OUT], "refuse", "train.threads"),
    Case("train-likelihood-unknown", [*TRAIN, "--set", "model.likelihood=nope", *TRAIN_OUT], "refuse", "nope"),
    Case("train-prior-unknown", [*TRAIN, "--set", "model.prior=nope", *TRAIN_OUT], "refuse", "nope"),
    Case("train-objective-unknown", [*TRAIN, "--set", "model.objective=nope", *TRAIN_OUT], "refuse", "nope"),
    Case("train-posterior-unknown", [*TRAIN, "--set", "model.posterior=nope", *TRAIN_OUT], "refuse", "nope"),
    Case("train-activation-unknown", [*TRAIN, "--set", "model.activation=nope", *TRAIN_OUT], "refuse",
         "model.activation"),
    Case("train-beta-negative", [*TRAIN, "--set", "model.beta=-1", *TRAIN_OUT], "refuse", "model.beta"),
    Case("train-beta-nan", [*TRAIN, "--set", "model.beta=nan", *TRAIN_OUT], "refuse", "model.beta"),
    Case("train-k-zero", [*TRAIN, "--set", "model.k=0", *TRAIN_OUT], "refuse", "model.k"),
    Case("train-val-fraction-one", [*TRAIN, "--set", "data.val_fraction=1.5", *TRAIN_OUT], "refuse",
         "data.val_fraction"),
    Case("train-test-fraction-negative", [*TRAIN, "--set", "data.test_fraction=-0.1", *TRAIN_OUT], "refuse",
         "data.test_fraction"),
    Case("train-max-samples-zero", [*TRAIN, "--set", "data.max_samples=0", *TRAIN_OUT], "refuse",
         "data.max_samples"),
    Case("train-prior-components-zero", [*TRAIN, "--set", "model.prior=mixture", "--set", "model.prior_components=0",
                                         *TRAIN_OUT], "refuse", "model.prior_components"),
    Case("train-grad-clip-negative", [*TRAIN, "--set", "train.grad_clip=-1", *TRAIN_OUT], "refuse",
         "train.grad_clip"),
    Case("train-max-minutes-zero", [*TRAIN, "--set", "train.max_minutes=0", *TRAIN_OUT], "refuse",
         "train.max_minutes"),
    Case("train-corruption-unknown", [*TRAIN, "--set", "model.corruption=blur:3", *TRAIN_OUT], "refuse",
         "model.corruption"),
    Case("train-classes-missing", [*TRAIN, "--set", "data.classes=[99]", *TRAIN_OUT], "refuse", "99"),
    Case("train-cvae-on-unlabelled", [*TRAIN, "--preset", "cvae", "--data", "BAD/digits.npy", *TRAIN_OUT],
         "refuse", "model.condition"),
    # ---------------------------------------------------------------------------------- train: config files
    Case("train-config-missing", [*TRAIN, "--config", "BAD/nope.yaml", *TRAIN_OUT], "refuse", "nope.yaml"),
    Case("train-config-broken-yaml", [*TRAIN, "--config", "BAD/broken.yaml", *TRAIN_OUT], "refuse", "broken.yaml"),
    Case("train-config-unknown-key", [*TRAIN, "--config", "BAD/unknown-key.yaml", *TRAIN_OUT], "refuse",
         "train.learning_rate"),
    Case("train-config-wrong-type", ["train", "--data", "digits", *TINY, "--config", "BAD/wrong-type.yaml",
                                     *TRAIN_OUT], "refuse", "train.epochs"),
    Case("train-config-a-list", [*TRAIN, "--config", "BAD/list.yaml", *TRAIN_OUT], "refuse", "list.yaml"),
    Case("train-config-binary", [*TRAIN, "--config", "BAD/garbage.npy", *TRAIN_OUT], "refuse", "garbage.npy"),
    Case("train-config-a-folder", [*TRAIN, "--config", "BAD/a-folder", *TRAIN_OUT], "refuse", "a-folder"),
    Case("train-config-huge-hidden", ["train", "--data", "digits", "--quiet", "--config", "BAD/huge-hidden.yaml",
                                      *TRAIN_OUT], "refuse", "model.hidden"),
    Case("train-config-bad-json", [*TRAIN, "--config", "BAD/broken.json", *TRAIN_OUT], "refuse", "broken.json"),
    # ---------------------------------------------------------------------------------- train: data
    Case("train-data-missing", [*TRAIN, "--data", "BAD/nope.npz", *TRAIN_OUT], "refuse", "nope.npz"),
    Case("train-data-unknown-name", [*TRAIN, "--data", "no-such-dataset", *TRAIN_OUT], "refuse", "no-such-dataset"),
    Case("train-data-unknown-suffix", [*TRAIN, "--data", "BAD/notes.txt.bak", *TRAIN_OUT], "refuse",
         "notes.txt.bak"),
    Case("train-npy-empty-file", [*TRAIN, "--data", "BAD/empty.npy", *TRAIN_OUT], "refuse", "empty.npy"),
    Case("train-npy-garbage", [*TRAIN, "--data", "BAD/garbage.npy", *TRAIN_OUT], "refuse", "garbage.npy"),
    Case("train-npy-truncated", [*TRAIN, "--data", "BAD/truncated.npy", *TRAIN_OUT], "refuse", "truncated.npy"),
    Case("train-npy-pickle", [*TRAIN, "--data", "BAD/object.npy", *TRAIN_OUT], "refuse", "object.npy"),
    Case("train-npy-huge-header", [*TRAIN, "--data", "BAD/huge-header.npy", *TRAIN_OUT], "refuse",
         "huge-header.npy"),
    Case("train-npy-nan", [*TRAIN, "--data", "BAD/nan.npy", *TRAIN_OUT], "refuse", "nan.npy"),
    Case("train-npy-inf", [*TRAIN, "--data", "BAD/inf.npy", *TRAIN_OUT], "refuse", "inf.npy"),
    Case("train-npy-strings", [*TRAIN, "--data", "BAD/strings.npy", *TRAIN_OUT], "refuse", "strings.npy"),
    Case("train-npy-scalar", [*TRAIN, "--data", "BAD/scalar.npy", *TRAIN_OUT], "refuse", "scalar.npy"),
    Case("train-npy-no-rows", [*TRAIN, "--data", "BAD/no-rows.npy", *TRAIN_OUT], "refuse", "no-rows.npy"),
    Case("train-npy-one-row", [*TRAIN, "--data", "BAD/one-row.npy", *TRAIN_OUT], "refuse", "one-row.npy"),
    Case("train-npy-1e300", [*TRAIN, "--data", "BAD/1e300.npy", *TRAIN_OUT], "refuse", "1e300.npy"),
    Case("train-npy-a-folder-named-npy", [*TRAIN, "--data", "BAD/folder.npy", *TRAIN_OUT], "refuse", "folder.npy"),
    Case("train-npz-empty-file", [*TRAIN, "--data", "BAD/empty.npz", *TRAIN_OUT], "refuse", "empty.npz"),
    Case("train-npz-garbage", [*TRAIN, "--data", "BAD/garbage.npz", *TRAIN_OUT], "refuse", "garbage.npz"),
    Case("train-npz-truncated", [*TRAIN, "--data", "BAD/truncated.npz", *TRAIN_OUT], "refuse", "truncated.npz"),
    Case("train-npz-pickle", [*TRAIN, "--data", "BAD/object.npz", *TRAIN_OUT], "refuse", "object.npz"),
    Case("train-npz-no-x", [*TRAIN, "--data", "BAD/no-x.npz", *TRAIN_OUT], "refuse", "no-x.npz"),
    Case("train-npz-labels-mismatch", [*TRAIN, "--data", "BAD/labels-mismatch.npz", *TRAIN_OUT], "refuse",
         "labels-mismatch.npz"),
    Case("train-npz-negative-labels", [*TRAIN, "--data", "BAD/negative-labels.npz", *TRAIN_OUT], "refuse",
         "negative-labels.npz"),
    Case("train-csv-empty-file", [*TRAIN, "--data", "BAD/empty.csv", *TRAIN_OUT], "refuse", "empty.csv"),
    Case("train-csv-binary", [*TRAIN, "--data", "BAD/garbage.csv", *TRAIN_OUT], "refuse", "garbage.csv"),
    Case("train-csv-ragged", [*TRAIN, "--data", "BAD/ragged.csv", *TRAIN_OUT], "refuse", "ragged.csv"),
    Case("train-csv-semicolons", [*TRAIN, "--data", "BAD/semicolon.csv", *TRAIN_OUT], "accept", "",
         why="the delimiter is detected and said in a line (issue 17: detect it or refuse)"),
    Case("train-csv-header-only", [*TRAIN, "--data", "BAD/header-only.csv", *TRAIN_OUT], "refuse",
         "header-only.csv"),
    Case("train-csv-one-row", [*TRAIN, "--data", "BAD/one-row.csv", *TRAIN_OUT], "refuse", "one-row.csv"),
    Case("train-csv-inf", [*TRAIN, "--data", "BAD/inf.csv", *TRAIN_OUT], "refuse", "inf.csv"),
    Case("train-csv-1e300", [*TRAIN, "--data", "BAD/1e300.csv", *TRAIN_OUT], "refuse", "1e300.csv"),
    Case("train-csv-label-column-missing", [*TRAIN, "--data", "BAD/people.csv", "--set", "data.label_column=nope",
                                            *TRAIN_OUT], "refuse", "nope"),
    Case("train-csv-column-type-unknown", [*TRAIN, "--data", "BAD/people.csv", "--set",
                                           "data.column_types={nope: count}", *TRAIN_OUT], "refuse", "nope"),
    Case("train-csv-count-of-text", [*TRAIN, "--data", "BAD/people.csv", "--set",
                                     "data.column_types={colour: count}", *TRAIN_OUT], "refuse", "colour"),
    Case("train-text-empty", [*TRAIN, "--preset", "seq-vae", "--data", "BAD/empty.txt", *TRAIN_OUT], "refuse",
         "empty.txt"),
    Case("train-png-corrupt", [*TRAIN, "--data", "BAD/corrupt.png", *TRAIN_OUT], "refuse", "corrupt.png"),
    Case("train-png-folder-mixed-sizes", [*TRAIN, "--data", "BAD/mixed-sizes", *TRAIN_OUT], "refuse",
         "mixed-sizes"),
    Case("train-png-folder-with-a-corrupt-one", [*TRAIN, "--data", "BAD/one-corrupt", *TRAIN_OUT], "refuse",
         "bad.png"),
    Case("train-png-folder-with-a-zero-byte-one", [*TRAIN, "--data", "BAD/one-empty", *TRAIN_OUT], "refuse",
         "zero.png"),
    Case("train-png-folder-empty", [*TRAIN, "--data", "BAD/a-folder", *TRAIN_OUT], "refuse", "a-folder"),
    Case("train-png-folder-of-text", [*TRAIN, "--data", "BAD/not-images", *TRAIN_OUT], "refuse", "not-images"),
    Case("train-idx-truncated-gzip", [*TRAIN, "--data", "mnist", "--set", "data.root=BAD/idx-truncated", "--set",
                                      "data.download=false", *TRAIN_OUT], "refuse", "train-labels-idx1-ubyte.gz"),
    Case("train-idx-not-gzip", [*TRAIN, "--data", "mnist", "--set", "data.root=BAD/idx-not-gzip", "--set",
                                "data.download=false", *TRAIN_OUT], "refuse", "t10k-images-idx3-ubyte.gz"),
    Case("train-idx-header-overflows", [*TRAIN, "--data", "mnist", "--set", "data.root=BAD/idx-overflow", "--set",
                                        "data.download=false", *TRAIN_OUT], "refuse", "train-images-idx3-ubyte.gz"),
    Case("train-idx-missing-offline", [*TRAIN, "--data", "mnist", "--set", "data.root=BAD/a-folder", "--set",
                                       "data.download=false", *TRAIN_OUT], "refuse", "mnist"),
    # ---------------------------------------------------------------------------------- train: outputs
    Case("train-out-existing-run", [*TRAIN, "--out", "BAD/existing-run"], "refuse", "existing-run"),
    Case("train-out-a-file", [*TRAIN, "--out", "BAD/notes.txt"], "refuse", "notes.txt"),
    Case("train-out-below-a-file", [*TRAIN, "--out", "BAD/notes.txt/run"], "refuse", "notes.txt"),
    Case("train-out-a-non-empty-folder", [*TRAIN, "--out", "BAD/not-images"], "refuse", "not-images"),
    Case("train-resume-missing", ["train", "--out", "TMP/missing", "--resume"], "refuse", "missing"),
    Case("train-resume-no-checkpoint", ["train", "--out", "BROKEN/header-only", "--resume"], "refuse", "checkpoint"),
    Case("train-resume-changing-lr", ["train", "--out", "BAD/existing-run", "--resume", "--lr", "0.1"], "refuse",
         "--lr"),
    Case("train-resume-epochs-negative", ["train", "--out", "BAD/existing-run", "--resume", "--epochs", "-1"],
         "refuse", "--epochs"),
    Case("train-resume-with-data", ["train", "--out", "BAD/existing-run", "--resume", "--data", "digits"], "refuse",
         "--data"),
    Case("train-resume-corrupt-config", ["train", "--out", "BROKEN/corrupt-config", "--resume"], "refuse",
         "config.json"),
    # ---------------------------------------------------------------------------------- sample
    Case("sample-n-zero", ["sample", "RUN", "--n", "0", *OUT_PNG], "refuse", "--n"),
    Case("sample-n-negative", ["sample", "RUN", "--n", "-1", *OUT_PNG], "refuse", "--n"),
    Case("sample-n-huge", ["sample", "RUN", "--n", "1000000000", *OUT_PNG], "refuse", "--n"),
    Case("sample-n-float", ["sample", "RUN", "--n", "2.5", *OUT_PNG], "refuse", "--n"),
    Case("sample-temperature-negative", ["sample", "RUN", "--temperature", "-1", *OUT_PNG], "refuse",
         "--temperature"),
    Case("sample-temperature-inf", ["sample", "RUN", "--temperature", "inf", *OUT_PNG], "refuse", "--temperature"),
    Case("sample-temperature-nan", ["sample", "RUN", "--temperature", "nan", *OUT_PNG], "refuse", "--temperature"),
    Case("sample-temperature-huge", ["sample", "RUN", "--temperature", "1e9", *OUT_PNG], "refuse", "--temperature"),
    Case("sample-seed-text", ["sample", "RUN", "--seed", "x", *OUT_PNG], "refuse", "--seed"),
    Case("sample-seed-negative", ["sample", "RUN", "--seed", "-1", "--out", "TMP/s.npy"], "accept", "",
         why="any integer seeds torch's generator; -1 is a seed like another"),
    Case("sample-sampler-unknown", ["sample", "RUN", "--sampler", "nope", *OUT_PNG], "refuse", "nope"),
    Case("sample-components-zero", ["sample", "RUN", "--sampler", "gmm", "--components", "0", *OUT_PNG], "refuse",
         "--components"),
    Case("sample-components-huge", ["sample", "RUN", "--sampler", "gmm", "--components", "1001", *OUT_PNG],
         "refuse", "--components"),
    Case("sample-decode-unknown", ["sample", "TEXT", "--decode", "nope"], "refuse", "nope"),
    Case("sample-top-k-zero", ["sample", "TEXT", "--decode", "top-k", "--top-k", "0"], "refuse", "--top-k"),
    Case("sample-beam-zero", ["sample", "TEXT", "--decode", "beam", "--beam", "0"], "refuse", "--beam"),
    Case("sample-beam-huge", ["sample", "TEXT", "--decode", "beam", "--beam", "1000"], "refuse", "--beam"),
    Case("sample-token-temperature-zero", ["sample", "TEXT", "--decode", "sample", "--token-temperature", "0"],
         "refuse", "--token-temperature"),
    Case("sample-token-temperature-nan", ["sample", "TEXT", "--decode", "sample", "--token-temperature", "nan"],
         "refuse", "--token-temperature"),
    Case("sample-text-to-png", ["sample", "TEXT", "--n", "2", *OUT_PNG], "refuse", "out.png"),
    Case("sample-label-on-unconditional", ["sample", "RUN", "--label", "3", *OUT_PNG], "refuse", "--label"),
    Case("sample-condition-on-unconditional", ["sample", "RUN", "--condition", "1,0", *OUT_PNG], "refuse",
         "--condition"),
    Case("sample-label-99", ["sample", "CVAE", "--label", "99", *OUT_PNG], "refuse", "99"),
    Case("sample-label-negative", ["sample", "CVAE", "--label", "-1", *OUT_PNG], "refuse", "-1"),
    Case("sample-label-unknown-name", ["sample", "CVAE", "--label", "cat", *OUT_PNG], "refuse", "cat"),
    Case("sample-condition-wrong-length", ["sample", "CVAE", "--condition", "1,0", *OUT_PNG], "refuse",
         "--condition"),
    Case("sample-condition-text", ["sample", "CVAE", "--condition", "a,b,c,d,e,f,g,h,i,j", *OUT_PNG], "refuse",
         "--condition"),
    Case("sample-condition-nan", ["sample", "CVAE", "--condition", "nan,0,0,0,0,0,0,0,0,0", *OUT_PNG], "refuse",
         "--condition"),
    Case("sample-label-and-condition", ["sample", "CVAE", "--label", "1", "--condition", "1,0,0,0,0,0,0,0,0,0",
                                        *OUT_PNG], "refuse", "--label"),
    Case("sample-out-unsupported-suffix", ["sample", "RUN", "--out", "TMP/s.txt"], "refuse", "s.txt"),
    Case("sample-out-no-suffix", ["sample", "RUN", "--out", "TMP/samples"], "refuse", "samples"),
    Case("sample-out-a-folder", ["sample", "RUN", "--out", "BAD/folder.png"], "refuse", "folder.png"),
    Case("sample-out-below-a-file", ["sample", "RUN", "--out", "BAD/notes.txt/s.png"], "refuse", "notes.txt"),
    # ---------------------------------------------------------------------------------- run folders (sample, info)
    Case("sample-run-missing", ["sample", "TMP/no-such-run", *OUT_PNG], "refuse", "no-such-run"),
    Case("sample-run-empty-folder", ["sample", "BROKEN/empty", *OUT_PNG], "refuse", "empty"),
    Case("sample-run-a-file", ["sample", "BAD/notes.txt", *OUT_PNG], "refuse", "notes.txt"),
    Case("sample-run-no-config", ["sample", "BROKEN/no-config", *OUT_PNG], "refuse", "config.json"),
    Case("sample-run-corrupt-config", ["sample", "BROKEN/corrupt-config", *OUT_PNG], "refuse", "config.json"),
    Case("sample-run-config-a-list", ["sample", "BROKEN/config-list", *OUT_PNG], "refuse", "config.json"),
    Case("sample-run-config-unknown-key", ["sample", "BROKEN/config-unknown-key", *OUT_PNG], "refuse",
         "config.json"),
    Case("sample-run-config-huge-latent", ["sample", "BROKEN/config-huge-latent", *OUT_PNG], "refuse",
         "config.json"),
    Case("sample-run-no-spec", ["sample", "BROKEN/no-spec", *OUT_PNG], "refuse", "data_spec.json"),
    Case("sample-run-corrupt-spec", ["sample", "BROKEN/corrupt-spec", *OUT_PNG], "refuse", "data_spec.json"),
    Case("sample-run-no-weights", ["sample", "BROKEN/no-weights", *OUT_PNG], "refuse", "model.safetensors"),
    Case("sample-run-corrupt-weights", ["sample", "BROKEN/corrupt-weights", *OUT_PNG], "refuse",
         "model.safetensors"),
    Case("sample-run-truncated-weights", ["sample", "BROKEN/truncated-weights", *OUT_PNG], "refuse",
         "model.safetensors"),
    Case("sample-run-empty-weights", ["sample", "BROKEN/empty-weights", *OUT_PNG], "refuse", "model.safetensors"),
    Case("sample-run-wrong-shape-weights", ["sample", "BROKEN/wrong-shape", *OUT_PNG], "refuse",
         "model.safetensors"),
    Case("sample-run-nan-weights", ["sample", "BROKEN/nan-weights", *OUT_PNG], "refuse", "model.safetensors"),
    Case("sample-run-damaged-history", ["sample", "BROKEN/damaged-history", "--out", "TMP/s.npy"], "warn",
         "history.csv", why="the history is a record, not the model: the run still samples (issue 17)"),
    Case("info-run-missing", ["info", "TMP/no-such-run"], "refuse", "no-such-run"),
    Case("info-run-empty-folder", ["info", "BROKEN/empty"], "refuse", "empty"),
    Case("info-run-a-file", ["info", "BAD/notes.txt"], "refuse", "notes.txt"),
    Case("info-run-corrupt-config", ["info", "BROKEN/corrupt-config"], "refuse", "config.json"),
    Case("info-run-corrupt-spec", ["info", "BROKEN/corrupt-spec"], "refuse", "data_spec.json"),
    Case("info-run-corrupt-weights", ["info", "BROKEN/corrupt-weights"], "refuse", "model.safetensors"),
    Case("info-run-corrupt-metrics", ["info", "BROKEN/corrupt-metrics"], "warn", "metrics.json",
         why="metrics are a record of evaluations, not the model: info shows the rest and says what it skipped"),
    Case("info-extra-argument", ["info", "RUN", "extra"], "refuse", "extra"),
    # ---------------------------------------------------------------------------------- encode
    Case("encode-data-missing", ["encode", "RUN", "--data", "BAD/nope.npy", "--out", "TMP/z.npy"], "refuse",
         "nope.npy"),
    Case("encode-data-empty-file", ["encode", "RUN", "--data", "BAD/empty.npy", "--out", "TMP/z.npy"], "refuse",
         "empty.npy"),
    Case("encode-data-a-folder", ["encode", "RUN", "--data", "BAD/folder.npy", "--out", "TMP/z.npy"], "refuse",
         "folder.npy"),
    Case("encode-data-garbage", ["encode", "RUN", "--data", "BAD/garbage.npy", "--out", "TMP/z.npy"], "refuse",
         "garbage.npy"),
    Case("encode-data-truncated", ["encode", "RUN", "--data", "BAD/truncated.npy", "--out", "TMP/z.npy"], "refuse",
         "truncated.npy"),
    Case("encode-data-pickle", ["encode", "RUN", "--data", "BAD/object.npy", "--out", "TMP/z.npy"], "refuse",
         "object.npy"),
    Case("encode-data-huge-header", ["encode", "RUN", "--data", "BAD/huge-header.npy", "--out", "TMP/z.npy"],
         "refuse", "huge-header.npy"),
    Case("encode-data-nan", ["encode", "RUN", "--data", "BAD/nan.npy", "--out", "TMP/z.npy"], "refuse", "nan.npy"),
    Case("encode-data-inf", ["encode", "RUN", "--data", "BAD/inf.npy", "--out", "TMP/z.npy"], "refuse", "inf.npy"),
    Case("encode-data-wrong-shape", ["encode", "RUN", "--data", "BAD/7x7.npy", "--out", "TMP/z.npy"], "refuse",
         "7x7.npy"),
    Case("encode-data-strings", ["encode", "RUN", "--data", "BAD/strings.npy", "--out", "TMP/z.npy"], "refuse",
         "strings.npy"),
    Case("encode-data-pixels-16000", ["encode", "RUN", "--data", "BAD/pixels-16000.npy", "--out", "TMP/z.npy"],
         "refuse", "pixels-16000.npy"),
    Case("encode-data-negative-pixels", ["encode", "RUN", "--data", "BAD/negative.npy", "--out", "TMP/z.npy"],
         "refuse", "negative.npy"),
    Case("encode-data-1e300", ["encode", "RUN", "--data", "BAD/1e300.npy", "--out", "TMP/z.npy"], "refuse",
         "1e300.npy"),
    Case("encode-data-a-table", ["encode", "RUN", "--data", "BAD/people.csv", "--out", "TMP/z.npy"], "refuse",
         "people.csv"),
    Case("encode-data-png-folder-mixed", ["encode", "RUN", "--data", "BAD/mixed-sizes", "--out", "TMP/z.npy"],
         "refuse", "mixed-sizes"),
    Case("encode-data-png-zero-byte", ["encode", "RUN", "--data", "BAD/zero.png", "--out", "TMP/z.npy"], "refuse",
         "zero.png"),
    Case("encode-data-unknown-name", ["encode", "RUN", "--data", "no-such-dataset", "--out", "TMP/z.npy"],
         "refuse", "no-such-dataset"),
    Case("encode-one-input", ["encode", "RUN", "--data", "BAD/one-row.npy", "--out", "TMP/z.npy"], "accept", "",
         why="encoding one input is a sensible request; only training needs several"),
    Case("encode-split-unknown", ["encode", "RUN", "--split", "nope", "--out", "TMP/z.npy"], "refuse", "nope"),
    Case("encode-batch-size-zero", ["encode", "RUN", "--batch-size", "0", "--out", "TMP/z.npy"], "refuse",
         "--batch-size"),
    Case("encode-batch-size-negative", ["encode", "RUN", "--batch-size", "-5", "--out", "TMP/z.npy"], "refuse",
         "--batch-size"),
    Case("encode-out-missing", ["encode", "RUN"], "refuse", "--out"),
    Case("encode-out-png", ["encode", "RUN", "--out", "TMP/z.png"], "refuse", "z.png"),
    Case("encode-out-a-folder", ["encode", "RUN", "--out", "BAD/a-folder"], "refuse", "a-folder"),
    Case("encode-out-below-a-file", ["encode", "RUN", "--out", "BAD/notes.txt/z.npy"], "refuse", "notes.txt"),
    Case("encode-out-over-the-input", ["encode", "RUN", "--data", "BAD/overwrite-me.npy", "--out",
                                       "BAD/overwrite-me.npy"], "refuse", "overwrite-me.npy"),
    Case("decode-out-over-the-latents", ["decode", "RUN", "--latents", "BAD/z-ok.npy", "--out", "BAD/z-ok.npy"],
         "refuse", "z-ok.npy"),
    Case("encode-cvae-unlabelled", ["encode", "CVAE", "--data", "BAD/digits.npy", "--out", "TMP/z.npy"], "refuse",
         "digits.npy"),
    # ---------------------------------------------------------------------------------- decode
    Case("decode-latents-missing", ["decode", "RUN", "--latents", "BAD/nope.npy", "--out", "TMP/d.npy"], "refuse",
         "nope.npy"),
    Case("decode-latents-empty-file", ["decode", "RUN", "--latents", "BAD/empty.npy", "--out", "TMP/d.npy"],
         "refuse", "empty.npy"),
    Case("decode-latents-garbage", ["decode", "RUN", "--latents", "BAD/garbage.npy", "--out", "TMP/d.npy"],
         "refuse", "garbage.npy"),
    Case("decode-latents-pickle", ["decode", "RUN", "--latents", "BAD/object.npy", "--out", "TMP/d.npy"], "refuse",
         "object.npy"),
    Case("decode-latents-huge-header", ["decode", "RUN", "--latents", "BAD/huge-header.npy", "--out", "TMP/d.npy"],
         "refuse", "huge-header.npy"),
    Case("decode-latents-wrong-width", ["decode", "RUN", "--latents", "BAD/z-width3.npy", "--out", "TMP/d.npy"],
         "refuse", "z-width3.npy"),
    Case("decode-latents-1-d", ["decode", "RUN", "--latents", "BAD/z-1d.npy", "--out", "TMP/d.npy"], "refuse",
         "z-1d.npy"),
    Case("decode-latents-wrong-3-d", ["decode", "RUN", "--latents", "BAD/z-3d.npy", "--out", "TMP/d.npy"], "refuse",
         "z-3d.npy"),
    Case("decode-latents-nan", ["decode", "RUN", "--latents", "BAD/z-nan.npy", "--out", "TMP/d.npy"], "refuse",
         "z-nan.npy"),
    Case("decode-latents-1e30", ["decode", "RUN", "--latents", "BAD/z-1e30.npy", "--out", "TMP/d.npy"], "refuse",
         "z-1e30.npy"),
    Case("decode-latents-strings", ["decode", "RUN", "--latents", "BAD/z-strings.npy", "--out", "TMP/d.npy"],
         "refuse", "z-strings.npy"),
    Case("decode-latents-no-rows", ["decode", "RUN", "--latents", "BAD/z-no-rows.npy", "--out", "TMP/d.npy"],
         "refuse", "z-no-rows.npy"),
    Case("decode-latents-a-csv", ["decode", "RUN", "--latents", "BAD/people.csv", "--out", "TMP/d.npy"], "refuse",
         "people.csv"),
    Case("decode-latents-a-folder", ["decode", "RUN", "--latents", "BAD/a-folder", "--out", "TMP/d.npy"], "refuse",
         "a-folder"),
    Case("decode-latents-far-out", ["decode", "RUN", "--latents", "BAD/z-far.npy", "--out", "TMP/d.npy"], "accept",
         "", why="codes at |z| = 12 are far in the prior's tail, but within the +-100 decoded on purpose: a user "
         "exploring the tails may mean them"),
    Case("decode-out-unsupported", ["decode", "RUN", "--latents", "BAD/z-ok.npy", "--out", "TMP/d.txt"], "refuse",
         "d.txt"),
    Case("decode-out-missing", ["decode", "RUN", "--latents", "BAD/z-ok.npy"], "refuse", "--out"),
    Case("decode-label-on-unconditional", ["decode", "RUN", "--latents", "BAD/z-ok.npy", "--label", "1", "--out",
                                           "TMP/d.npy"], "refuse", "--label"),
    Case("decode-label-99", ["decode", "CVAE", "--latents", "BAD/z-ok.npy", "--label", "99", "--out", "TMP/d.npy"],
         "refuse", "99"),
    Case("decode-condition-wrong-length", ["decode", "CVAE", "--latents", "BAD/z-ok.npy", "--condition", "1",
                                           "--out", "TMP/d.npy"], "refuse", "--condition"),
    # ---------------------------------------------------------------------------------- reconstruct
    Case("reconstruct-n-zero", ["reconstruct", "RUN", "--n", "0", *OUT_PNG], "refuse", "--n"),
    Case("reconstruct-n-huge", ["reconstruct", "RUN", "--n", "100000", *OUT_PNG], "refuse", "--n"),
    Case("reconstruct-indices-out-of-range", ["reconstruct", "RUN", "--indices", "99999", *OUT_PNG], "refuse",
         "--indices"),
    Case("reconstruct-indices-negative", ["reconstruct", "RUN", "--indices", "-1", *OUT_PNG], "refuse",
         "--indices"),
    Case("reconstruct-indices-text", ["reconstruct", "RUN", "--indices", "a,b", *OUT_PNG], "refuse", "--indices"),
    Case("reconstruct-indices-empty", ["reconstruct", "RUN", "--indices", ",", *OUT_PNG], "refuse", "--indices"),
    Case("reconstruct-n-and-indices", ["reconstruct", "RUN", "--n", "2", "--indices", "1,2", *OUT_PNG], "refuse",
         "--indices"),
    Case("reconstruct-data-wrong-shape", ["reconstruct", "RUN", "--data", "BAD/7x7.npy", *OUT_PNG], "refuse",
         "7x7.npy"),
    Case("reconstruct-data-nan", ["reconstruct", "RUN", "--data", "BAD/nan.npy", *OUT_PNG], "refuse", "nan.npy"),
    Case("reconstruct-data-pixels-16000", ["reconstruct", "RUN", "--data", "BAD/pixels-16000.npy", *OUT_PNG],
         "refuse", "pixels-16000.npy"),
    Case("reconstruct-data-corrupt-png", ["reconstruct", "RUN", "--data", "BAD/corrupt.png", *OUT_PNG], "refuse",
         "corrupt.png"),
    Case("reconstruct-out-unsupported", ["reconstruct", "RUN", "--out", "TMP/r.jpg"], "refuse", "r.jpg"),
    Case("reconstruct-out-a-folder", ["reconstruct", "RUN", "--out", "BAD/folder.png"], "refuse", "folder.png"),
    Case("reconstruct-text-to-png", ["reconstruct", "TEXT", *OUT_PNG], "refuse", "out.png"),
    Case("reconstruct-table-to-png", ["reconstruct", "TABLE", *OUT_PNG], "refuse", "out.png"),
    # ---------------------------------------------------------------------------------- evaluate
    Case("evaluate-k-zero", ["evaluate", "RUN", "--k", "0"], "refuse", "--k"),
    Case("evaluate-k-huge", ["evaluate", "RUN", "--k", "1000000000"], "refuse", "--k"),
    Case("evaluate-k-text", ["evaluate", "RUN", "--k", "ten"], "refuse", "--k"),
    Case("evaluate-batch-size-zero", ["evaluate", "RUN", "--batch-size", "0"], "refuse", "--batch-size"),
    Case("evaluate-device-gpu", ["evaluate", "RUN", "--device", "gpu"], "refuse", "--device"),
    Case("evaluate-data-wrong-shape", ["evaluate", "RUN", "--k", "5", "--data", "BAD/7x7.npy"], "refuse",
         "7x7.npy"),
    Case("evaluate-data-nan", ["evaluate", "RUN", "--k", "5", "--data", "BAD/nan.npy"], "refuse", "nan.npy"),
    Case("evaluate-data-pickle", ["evaluate", "RUN", "--k", "5", "--data", "BAD/object.npz"], "refuse",
         "object.npz"),
    Case("evaluate-features-not-torchscript", ["evaluate", "RUN", "--k", "5", "--fid", "--fid-samples", "100",
                                               "--features", "BAD/garbage.pt"], "refuse", "garbage.pt"),
    Case("evaluate-features-a-pickle", ["evaluate", "RUN", "--k", "5", "--fid", "--fid-samples", "100",
                                        "--features", "BAD/pickled.pt"], "refuse", "pickled.pt"),
    Case("evaluate-features-missing", ["evaluate", "RUN", "--k", "5", "--fid", "--fid-samples", "100",
                                       "--features", "BAD/nope.pt"], "refuse", "nope.pt"),
    Case("evaluate-features-unknown-suffix", ["evaluate", "RUN", "--k", "5", "--fid", "--fid-samples", "100",
                                              "--features", "BAD/notes.txt"], "refuse", "notes.txt"),
    Case("evaluate-features-without-fid", ["evaluate", "RUN", "--k", "5", "--features", "BAD/garbage.pt"],
         "refuse", "--features"),
    Case("evaluate-fid-samples-too-few", ["evaluate", "RUN", "--k", "5", "--fid", "--fid-samples", "10"], "refuse",
         "--fid-samples"),
    Case("evaluate-sampler-unknown", ["evaluate", "RUN", "--k", "5", "--fid", "--fid-samples", "100", "--sampler",
                                      "nope"], "refuse", "nope"),
    Case("evaluate-fid-on-a-table", ["evaluate", "TABLE", "--k", "5", "--fid", "--fid-samples", "100"], "refuse",
         "FID"),
    Case("evaluate-molecules-on-digits", ["evaluate", "RUN", "--k", "5", "--molecules", "100"], "refuse",
         "--molecules"),
    Case("evaluate-molecules-negative", ["evaluate", "RUN", "--k", "5", "--molecules", "-1"], "refuse",
         "--molecules"),
    Case("evaluate-run-corrupt-weights", ["evaluate", "BROKEN/corrupt-weights", "--k", "5"], "refuse",
         "model.safetensors"),
    # ---------------------------------------------------------------------------------- anomaly
    Case("anomaly-score-unknown", ["anomaly", "RUN", "--score", "nope", "--out", "TMP/a.csv"], "refuse", "nope"),
    Case("anomaly-k-zero", ["anomaly", "RUN", "--k", "0", "--out", "TMP/a.csv"], "refuse", "--k"),
    Case("anomaly-k-huge", ["anomaly", "RUN", "--k", "1000000000", "--out", "TMP/a.csv"], "refuse", "--k"),
    Case("anomaly-contamination-over-one", ["anomaly", "RUN", "--contamination", "2", "--out", "TMP/a.csv"],
         "refuse", "--contamination"),
    Case("anomaly-contamination-negative", ["anomaly", "RUN", "--contamination", "-0.1", "--out", "TMP/a.csv"],
         "refuse", "--contamination"),
    Case("anomaly-contamination-nan", ["anomaly", "RUN", "--contamination", "nan", "--out", "TMP/a.csv"], "refuse",
         "--contamination"),
    Case("anomaly-quantile-over-one", ["anomaly", "RUN", "--quantile", "1.5", "--out", "TMP/a.csv"], "refuse",
         "--quantile"),
    Case("anomaly-quantile-nan", ["anomaly", "RUN", "--quantile", "nan", "--out", "TMP/a.csv"], "refuse",
         "--quantile"),
    Case("anomaly-contamination-and-quantile", ["anomaly", "RUN", "--contamination", "0.1", "--quantile", "0.9",
                                                "--out", "TMP/a.csv"], "refuse", "--quantile"),
    Case("anomaly-normal-unknown-class", ["anomaly", "RUN", "--normal", "99", "--out", "TMP/a.csv"], "refuse", "99"),
    Case("anomaly-split-unknown", ["anomaly", "RUN", "--split", "nope", "--out", "TMP/a.csv"], "refuse", "nope"),
    Case("anomaly-out-png", ["anomaly", "RUN", "--out", "TMP/a.png"], "refuse", "a.png"),
    Case("anomaly-out-missing", ["anomaly", "RUN"], "refuse", "--out"),
    Case("anomaly-figure-txt", ["anomaly", "RUN", "--out", "TMP/a.csv", "--figure", "TMP/f.txt"], "refuse", "f.txt"),
    Case("anomaly-figure-below-a-file", ["anomaly", "RUN", "--out", "TMP/a.csv", "--figure",
                                         "BAD/notes.txt/f.png"], "refuse", "notes.txt"),
    Case("anomaly-data-nan", ["anomaly", "RUN", "--data", "BAD/nan.npy", "--out", "TMP/a.csv"], "refuse", "nan.npy"),
    Case("anomaly-data-wrong-shape", ["anomaly", "RUN", "--data", "BAD/7x7.npy", "--out", "TMP/a.csv"], "refuse",
         "7x7.npy"),
    Case("anomaly-data-pixels-16000", ["anomaly", "RUN", "--data", "BAD/pixels-16000.npy", "--out", "TMP/a.csv"],
         "refuse", "pixels-16000.npy"),
    # ---------------------------------------------------------------------------------- restore
    Case("restore-no-degradation", ["restore", "RUN", *OUT_PNG], "refuse", "--mask"),
    Case("restore-mask-unknown", ["restore", "RUN", "--mask", "nope", *OUT_PNG], "refuse", "nope"),
    Case("restore-mask-random-over-one", ["restore", "RUN", "--mask", "random:2", *OUT_PNG], "refuse", "random:2"),
    Case("restore-mask-random-text", ["restore", "RUN", "--mask", "random:abc", *OUT_PNG], "refuse", "random:abc"),
    Case("restore-mask-random-nan", ["restore", "RUN", "--mask", "random:nan", *OUT_PNG], "refuse", "random:nan"),
    Case("restore-mask-png-missing", ["restore", "RUN", "--mask", "BAD/nope.png", *OUT_PNG], "refuse", "nope.png"),
    Case("restore-mask-png-corrupt", ["restore", "RUN", "--mask", "BAD/corrupt.png", *OUT_PNG], "refuse",
         "corrupt.png"),
    Case("restore-mask-png-wrong-size", ["restore", "RUN", "--mask", "BAD/mask-5x5.png", *OUT_PNG], "refuse",
         "mask-5x5.png"),
    Case("restore-noise-nan", ["restore", "RUN", "--noise", "nan", *OUT_PNG], "refuse", "--noise"),
    Case("restore-noise-inf", ["restore", "RUN", "--noise", "inf", *OUT_PNG], "refuse", "--noise"),
    Case("restore-noise-negative", ["restore", "RUN", "--noise", "-0.5", *OUT_PNG], "refuse", "--noise"),
    Case("restore-noise-huge", ["restore", "RUN", "--noise", "1e9", *OUT_PNG], "refuse", "--noise"),
    Case("restore-downsample-zero", ["restore", "RUN", "--downsample", "0", *OUT_PNG], "refuse", "--downsample"),
    Case("restore-downsample-negative", ["restore", "RUN", "--downsample", "-2", *OUT_PNG], "refuse",
         "--downsample"),
    Case("restore-downsample-not-a-divisor", ["restore", "RUN", "--downsample", "3", *OUT_PNG], "refuse",
         "--downsample"),
    Case("restore-downsample-huge", ["restore", "RUN", "--downsample", "100", *OUT_PNG], "refuse", "--downsample"),
    Case("restore-method-unknown", ["restore", "RUN", "--mask", "half", "--method", "nope", *OUT_PNG], "refuse",
         "nope"),
    Case("restore-method-wrong-operator", ["restore", "RUN", "--noise", "0.1", "--method", "pseudo-gibbs",
                                           *OUT_PNG], "refuse", "pseudo-gibbs"),
    Case("restore-steps-zero", ["restore", "RUN", "--mask", "half", "--steps", "0", *OUT_PNG], "refuse", "--steps"),
    Case("restore-k-zero", ["restore", "RUN", "--mask", "half", "--k", "0", *OUT_PNG], "refuse", "--k"),
    Case("restore-n-zero", ["restore", "RUN", "--mask", "half", "--n", "0", *OUT_PNG], "refuse", "--n"),
    Case("restore-indices-out-of-range", ["restore", "RUN", "--mask", "half", "--indices", "99999", *OUT_PNG],
         "refuse", "--indices"),
    Case("restore-out-unsupported", ["restore", "RUN", "--mask", "half", "--out", "TMP/r.csv"], "refuse", "r.csv"),
    Case("restore-out-missing", ["restore", "RUN", "--mask", "half"], "refuse", "--out"),
    Case("restore-data-nan", ["restore", "RUN", "--mask", "half", "--data", "BAD/nan.npy", *OUT_PNG], "refuse",
         "nan.npy"),
    Case("restore-observed-wrong-shape", ["restore", "RUN", "--downsample", "2", "--observed", "--data",
                                          "BAD/digits.npy", *OUT_PNG], "refuse", "digits.npy"),
    Case("restore-on-a-table", ["restore", "TABLE", "--mask", "half", "--out", "TMP/r.npy"], "refuse", "--mask"),
    Case("restore-on-text", ["restore", "TEXT", "--mask", "half", "--out", "TMP/r.npy"], "refuse", "--mask"),
    # ---------------------------------------------------------------------------------- impute
    Case("impute-on-an-image-run", ["impute", "RUN", "--data", "BAD/digits.npy", "--out", "TMP/f.csv"], "accept", "",
         why="impute fills images too (NaN pixels); inputs with no holes come back as they are"),
    Case("impute-on-a-text-run", ["impute", "TEXT", "--data", "BAD/people.csv", "--out", "TMP/f.csv"], "refuse",
         "people.csv"),
    Case("impute-data-missing", ["impute", "TABLE", "--data", "BAD/nope.csv", "--out", "TMP/f.csv"], "refuse",
         "nope.csv"),
    Case("impute-data-empty-file", ["impute", "TABLE", "--data", "BAD/empty.csv", "--out", "TMP/f.csv"], "refuse",
         "empty.csv"),
    Case("impute-data-binary", ["impute", "TABLE", "--data", "BAD/garbage.csv", "--out", "TMP/f.csv"], "refuse",
         "garbage.csv"),
    Case("impute-data-wrong-columns", ["impute", "TABLE", "--data", "BAD/wrong-columns.csv", "--out", "TMP/f.csv"],
         "refuse", "wrong-columns.csv"),
    Case("impute-data-semicolons", ["impute", "TABLE", "--data", "BAD/people-semicolon.csv", "--out", "TMP/f.csv"],
         "accept", "", why="the delimiter is detected and said in a line, as for train"),
    Case("impute-data-ragged", ["impute", "TABLE", "--data", "BAD/people-ragged.csv", "--out", "TMP/f.csv"],
         "refuse", "people-ragged.csv"),
    Case("impute-data-header-only", ["impute", "TABLE", "--data", "BAD/people-header-only.csv", "--out",
                                     "TMP/f.csv"], "refuse", "people-header-only.csv"),
    Case("impute-data-inf", ["impute", "TABLE", "--data", "BAD/people-inf.csv", "--out", "TMP/f.csv"], "refuse",
         "people-inf.csv"),
    Case("impute-data-1e300", ["impute", "TABLE", "--data", "BAD/people-1e300.csv", "--out", "TMP/f.csv"],
         "refuse", "people-1e300.csv"),
    Case("impute-data-unknown-category", ["impute", "TABLE", "--data", "BAD/people-purple.csv", "--out",
                                          "TMP/f.csv"], "refuse", "purple"),
    Case("impute-data-an-image-array", ["impute", "TABLE", "--data", "BAD/digits.npy", "--out", "TMP/f.csv"],
         "refuse", "digits.npy"),
    Case("impute-method-unknown", ["impute", "TABLE", "--data", "BAD/people.csv", "--method", "nope", "--out",
                                   "TMP/f.csv"], "refuse", "nope"),
    Case("impute-k-zero", ["impute", "TABLE", "--data", "BAD/people.csv", "--k", "0", "--out", "TMP/f.csv"],
         "refuse", "--k"),
    Case("impute-steps-zero", ["impute", "TABLE", "--data", "BAD/people.csv", "--steps", "0", "--out", "TMP/f.csv"],
         "refuse", "--steps"),
    Case("impute-multiple-negative", ["impute", "TABLE", "--data", "BAD/people.csv", "--multiple", "-1", "--out",
                                      "TMP/f.csv"], "refuse", "--multiple"),
    Case("impute-multiple-huge", ["impute", "TABLE", "--data", "BAD/people.csv", "--multiple", "100000000", "--out",
                                  "TMP/f.csv"], "refuse", "--multiple"),
    Case("impute-out-png", ["impute", "TABLE", "--data", "BAD/people.csv", "--out", "TMP/f.png"], "refuse", "f.png"),
    Case("impute-out-missing", ["impute", "TABLE", "--data", "BAD/people.csv"], "refuse", "--out"),
    Case("impute-out-below-a-file", ["impute", "TABLE", "--data", "BAD/people.csv", "--out", "BAD/notes.txt/f.csv"],
         "refuse", "notes.txt"),
    Case("impute-data-missing-option", ["impute", "TABLE", "--out", "TMP/f.csv"], "refuse", "--data"),
    # ---------------------------------------------------------------------------------- export
    Case("export-run-missing", ["export", "TMP/no-such-run", "--onnx", "--out", "TMP/export"], "refuse", "no-such-run"),
    Case("export-run-corrupt-weights", ["export", "BROKEN/corrupt-weights", "--onnx", "--out", "TMP/export"], "refuse",
         "model.safetensors"),
    Case("export-out-a-file", ["export", "RUN", "--onnx", "--out", "BAD/notes.txt"], "refuse", "notes.txt"),
    Case("export-out-below-a-file", ["export", "RUN", "--onnx", "--out", "BAD/notes.txt/export"], "refuse",
         "notes.txt"),
    Case("export-onnx-text-run", ["export", "TEXT", "--onnx", "--out", "TMP/export"], "refuse", "--onnx"),
    Case("export-no-format", ["export", "RUN", "--out", "TMP/export"], "refuse", "--onnx"),
    # ---------------------------------------------------------------------------------- explore (never serves)
    Case("explore-port-zero", ["explore", "RUN", "--port", "0"], "refuse", "--port"),
    Case("explore-port-too-big", ["explore", "RUN", "--port", "70000"], "refuse", "--port"),
    Case("explore-port-negative", ["explore", "RUN", "--port", "-1"], "refuse", "--port"),
    Case("explore-port-text", ["explore", "RUN", "--port", "http"], "refuse", "--port"),
    Case("explore-port-in-use", ["explore", "RUN", "--port", "PORT"], "refuse", "--port"),
    Case("explore-host-unknown", ["explore", "RUN", "--host", "no-such-host.invalid"], "refuse", "--host"),
    Case("explore-host-not-an-address", ["explore", "RUN", "--host", "999.1.1.1"], "refuse", "--host"),
    Case("explore-host-not-this-machine", ["explore", "RUN", "--host", "192.0.2.1"], "refuse", "--port"),
    Case("explore-device-gpu", ["explore", "RUN", "--device", "gpu"], "refuse", "--device"),
    Case("explore-run-missing", ["explore", "TMP/no-such-run"], "refuse", "no-such-run"),
    Case("explore-data-nan", ["explore", "RUN", "--data", "BAD/nan.npy"], "refuse", "nan.npy"),
    Case("explore-data-wrong-shape", ["explore", "RUN", "--data", "BAD/7x7.npy"], "refuse", "7x7.npy"),
    # ---------------------------------------------------------------------------------- interpolate
    Case("interpolate-a-out-of-range", ["interpolate", "RUN", "--a", "99999", "--b", "1", *OUT_PNG], "refuse",
         "--a"),
    Case("interpolate-b-negative", ["interpolate", "RUN", "--a", "0", "--b", "-1", *OUT_PNG], "refuse", "--b"),
    Case("interpolate-steps-one", ["interpolate", "RUN", "--steps", "1", *OUT_PNG], "refuse", "--steps"),
    Case("interpolate-steps-huge", ["interpolate", "RUN", "--steps", "100000", *OUT_PNG], "refuse", "--steps"),
    Case("interpolate-path-unknown", ["interpolate", "RUN", "--path", "zigzag", *OUT_PNG], "refuse", "zigzag"),
    Case("interpolate-out-unsupported", ["interpolate", "RUN", "--out", "TMP/i.csv"], "refuse", "i.csv"),
    Case("interpolate-out-a-folder", ["interpolate", "RUN", "--out", "BAD/folder.png"], "refuse", "folder.png"),
    Case("interpolate-data-nan", ["interpolate", "RUN", "--data", "BAD/nan.npy", *OUT_PNG], "refuse", "nan.npy"),
    Case("interpolate-data-one-input", ["interpolate", "RUN", "--data", "BAD/one-row.npy", "--out", "TMP/i.npy"],
         "accept", "", why="one input is a path from it to itself, as interpolate-same-input"),
    Case("interpolate-same-input", ["interpolate", "RUN", "--a", "3", "--b", "3", "--out", "TMP/i.npy"], "accept", "",
         why="a path from an input to itself is constant but well defined"),
    # ---------------------------------------------------------------------------------- traverse
    Case("traverse-dims-zero", ["traverse", "RUN", "--dims", "0", *OUT_PNG], "refuse", "--dims"),
    Case("traverse-dims-more-than-latent", ["traverse", "RUN", "--dims", "1000", "--out", "TMP/t.npy"], "accept", "",
         why="--dims is 'at most this many, highest KL first': a 4-d run shows its 4"),
    Case("traverse-span-zero", ["traverse", "RUN", "--span", "0", *OUT_PNG], "refuse", "--span"),
    Case("traverse-span-negative", ["traverse", "RUN", "--span", "-3", *OUT_PNG], "refuse", "--span"),
    Case("traverse-span-nan", ["traverse", "RUN", "--span", "nan", *OUT_PNG], "refuse", "--span"),
    Case("traverse-span-inf", ["traverse", "RUN", "--span", "inf", *OUT_PNG], "refuse", "--span"),
    Case("traverse-span-huge", ["traverse", "RUN", "--span", "1e9", *OUT_PNG], "refuse", "--span"),
    Case("traverse-steps-one", ["traverse", "RUN", "--steps", "1", *OUT_PNG], "refuse", "--steps"),
    Case("traverse-steps-huge", ["traverse", "RUN", "--steps", "100000", *OUT_PNG], "refuse", "--steps"),
    Case("traverse-center-out-of-range", ["traverse", "RUN", "--center", "99999", *OUT_PNG], "refuse", "--center"),
    Case("traverse-out-gif", ["traverse", "RUN", "--out", "TMP/t.gif"], "refuse", "t.gif"),
    Case("traverse-data-inf", ["traverse", "RUN", "--data", "BAD/inf.npy", *OUT_PNG], "refuse", "inf.npy"),
    # ---------------------------------------------------------------------------------- arithmetic
    Case("arithmetic-from-unknown-label", ["arithmetic", "RUN", "--from", "99", "--to", "1", *OUT_PNG], "refuse",
         "99"),
    Case("arithmetic-to-unknown-name", ["arithmetic", "RUN", "--from", "1", "--to", "cat", *OUT_PNG], "refuse",
         "cat"),
    Case("arithmetic-from-without-to", ["arithmetic", "RUN", "--from", "1", *OUT_PNG], "refuse", "--to"),
    Case("arithmetic-nothing-given", ["arithmetic", "RUN", *OUT_PNG], "refuse", "--from"),
    Case("arithmetic-from-indices-text", ["arithmetic", "RUN", "--from-indices", "a", "--to-indices", "1",
                                          *OUT_PNG], "refuse", "--from-indices"),
    Case("arithmetic-to-indices-out-of-range", ["arithmetic", "RUN", "--from-indices", "1", "--to-indices",
                                                "99999", *OUT_PNG], "refuse", "--to-indices"),
    Case("arithmetic-apply-out-of-range", ["arithmetic", "RUN", "--from", "1", "--to", "7", "--apply", "99999",
                                           *OUT_PNG], "refuse", "--apply"),
    Case("arithmetic-strengths-text", ["arithmetic", "RUN", "--from", "1", "--to", "7", "--strengths", "a,b",
                                       *OUT_PNG], "refuse", "--strengths"),
    Case("arithmetic-strengths-nan", ["arithmetic", "RUN", "--from", "1", "--to", "7", "--strengths", "0,nan",
                                      *OUT_PNG], "refuse", "--strengths"),
    Case("arithmetic-strengths-huge", ["arithmetic", "RUN", "--from", "1", "--to", "7", "--strengths", "0,1e30",
                                       *OUT_PNG], "refuse", "--strengths"),
    Case("arithmetic-analogy-two-indices", ["arithmetic", "RUN", "--analogy", "1,2", *OUT_PNG], "refuse",
         "--analogy"),
    Case("arithmetic-analogy-out-of-range", ["arithmetic", "RUN", "--analogy", "1,2,99999", *OUT_PNG], "refuse",
         "--analogy"),
    Case("arithmetic-analogy-and-from", ["arithmetic", "RUN", "--analogy", "1,2,3", "--from", "1", "--to", "2",
                                         *OUT_PNG], "refuse", "--analogy"),
    Case("arithmetic-labels-of-unlabelled-data", ["arithmetic", "RUN", "--data", "BAD/digits.npy", "--from", "1",
                                                  "--to", "2", *OUT_PNG], "refuse", "--from"),
    Case("arithmetic-out-unsupported", ["arithmetic", "RUN", "--from", "1", "--to", "7", "--out", "TMP/a.gif"],
         "refuse", "a.gif"),
    # ---------------------------------------------------------------------------------- swap
    Case("swap-unconditional-run", ["swap", "RUN", *OUT_PNG], "refuse", "cvae"),
    Case("swap-apply-out-of-range", ["swap", "CVAE", "--apply", "99999", *OUT_PNG], "refuse", "--apply"),
    Case("swap-apply-text", ["swap", "CVAE", "--apply", "x", *OUT_PNG], "refuse", "--apply"),
    Case("swap-out-unsupported", ["swap", "CVAE", "--out", "TMP/s.csv"], "refuse", "s.csv"),
    Case("swap-unlabelled-data", ["swap", "CVAE", "--data", "BAD/digits.npy", *OUT_PNG], "refuse", "digits.npy"),
    # ---------------------------------------------------------------------------------- embed
    Case("embed-method-unknown", ["embed", "RUN", "--method", "nope", *OUT_PNG], "refuse", "nope"),
    Case("embed-method-umap-missing", ["embed", "RUN", "--method", "umap", *OUT_PNG], "refuse", "umap"),
    Case("embed-dims-four", ["embed", "RUN", "--dims", "4", *OUT_PNG], "refuse", "--dims"),
    Case("embed-max-points-two", ["embed", "RUN", "--max-points", "2", *OUT_PNG], "refuse", "--max-points"),
    Case("embed-out-unsupported", ["embed", "RUN", "--out", "TMP/e.gif"], "refuse", "e.gif"),
    Case("embed-out-missing", ["embed", "RUN"], "refuse", "--out"),
    Case("embed-data-pickle", ["embed", "RUN", "--data", "BAD/object.npy", *OUT_PNG], "refuse", "object.npy"),
    Case("embed-data-one-input", ["embed", "RUN", "--data", "BAD/one-row.npy", *OUT_PNG], "refuse", "N >= 3"),
    # ---------------------------------------------------------------------------------- cluster
    Case("cluster-method-unknown", ["cluster", "RUN", "--method", "nope"], "refuse", "nope"),
    Case("cluster-clusters-one", ["cluster", "RUN", "--clusters", "1"], "refuse", "--clusters"),
    Case("cluster-clusters-more-than-inputs", ["cluster", "RUN", "--clusters", "100000"], "refuse", "--clusters"),
    Case("cluster-max-points-five", ["cluster", "RUN", "--max-points", "5"], "refuse", "--max-points"),
    Case("cluster-unlabelled-data", ["cluster", "RUN", "--data", "BAD/digits.npy"], "refuse", "digits.npy"),
    Case("cluster-data-nan", ["cluster", "RUN", "--data", "BAD/nan.npy"], "refuse", "nan.npy"),
    # ---------------------------------------------------------------------------------- optimize
    Case("optimize-not-a-molecule-run", ["optimize", "RUN", "--seed", "CCO", "--property", "qed"], "refuse",
         "molecule"),
    Case("optimize-text-run", ["optimize", "TEXT", "--seed", "CCO", "--property", "qed"], "refuse", "property"),
    Case("optimize-steps-zero", ["optimize", "RUN", "--seed", "CCO", "--property", "qed", "--steps", "0"], "refuse",
         "--steps"),
    Case("optimize-lr-nan", ["optimize", "RUN", "--seed", "CCO", "--property", "qed", "--lr", "nan"], "refuse",
         "property head"),
    Case("optimize-prior-weight-inf", ["optimize", "RUN", "--seed", "CCO", "--property", "qed", "--prior-weight",
                                       "inf"], "refuse", "property head"),
    Case("optimize-seed-missing", ["optimize", "RUN", "--property", "qed"], "refuse", "--seed"),
    Case("optimize-decode-unknown", ["optimize", "RUN", "--seed", "CCO", "--property", "qed", "--decode", "nope"],
         "refuse", "property head"),
    # ---------------------------------------------------------------------------------- report
    Case("report-out-unsupported", ["report", "RUN", "--out", "TMP/r.pdf"], "refuse", "r.pdf"),
    Case("report-out-a-folder", ["report", "RUN", "--out", "BAD/folder.html"], "refuse", "folder.html"),
    Case("report-out-below-a-file", ["report", "RUN", "--out", "BAD/notes.txt/r.html"], "refuse", "notes.txt"),
    Case("report-data-wrong-shape", ["report", "RUN", "--data", "BAD/7x7.npy", "--out", "TMP/r.html"], "refuse",
         "7x7.npy"),
    Case("report-run-missing", ["report", "TMP/no-such-run", "--out", "TMP/r.html"], "refuse", "no-such-run"),
    # ---------------------------------------------------------------------------------- config
    Case("config-preset-unknown", ["config", "--preset", "nope"], "refuse", "nope"),
    Case("config-set-unknown-key", ["config", "--set", "model.nope=1"], "refuse", "model.nope"),
    Case("config-set-wrong-type", ["config", "--set", "train.lr=fast"], "refuse", "train.lr"),
    Case("config-set-latent-dim-zero", ["config", "--set", "model.latent_dim=0"], "refuse", "model.latent_dim"),
    Case("config-set-epochs-negative", ["config", "--set", "train.epochs=-1"], "refuse", "train.epochs"),
    Case("config-set-lr-inf", ["config", "--set", "train.lr=inf"], "refuse", "train.lr"),
    Case("config-set-no-value", ["config", "--set", "model"], "refuse", "model"),
    Case("config-unknown-option", ["config", "--nope"], "refuse", "--nope"),
    # ---------------------------------------------------------------------------------- the command itself
    Case("unknown-command", ["nocommand"], "refuse", "nocommand"),
    Case("unknown-option", ["sample", "RUN", "--nope"], "refuse", "--nope"),
    Case("missing-run-argument", ["sample"], "refuse", "RUN"),
]


# ------------------------------------------------------------------------------------ the files


def write_npy_header(path: Path, shape: tuple[int, ...], body: bytes = b"\0" * 64) -> None:
    """A .npy whose header declares ``shape`` (float64) but holds only ``body``."""
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": shape})
        handle.write(body)


class Canary:
    """Unpickled, it copies a file to ``canary``: if a pickle were ever loaded, a new file shows it."""

    def __init__(self, source: Path, canary: Path) -> None:
        self.source, self.canary = source, canary

    def __reduce__(self):
        return shutil.copyfile, (str(self.source), str(self.canary))


def write_png(path: Path, size: int) -> None:
    from PIL import Image

    Image.fromarray(np.full((size, size), 128, dtype=np.uint8)).save(path)


def write_idx_header(path: Path, dims: tuple[int, ...]) -> None:
    """A gzip IDX image file whose header declares ``dims`` over a few bytes of data."""
    header = struct.pack(">I", IMAGES_MAGIC) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(gzip.compress(header + b"\0" * 64))


def make_bad_files(folder: Path, existing_run: Path) -> None:
    """Every bad input of :data:`CASES`, built once (a few are good, as the control of a case)."""
    from sklearn.datasets import load_digits

    digits = load_digits().images[:40].astype(np.float64)  # (40, 8, 8), the run's units 0..16
    rng = np.random.default_rng(0)
    (folder / "notes.txt").write_text("keep me\n")
    (folder / "notes.txt.bak").write_text("keep me\n")
    for name in ("a-folder", "folder.npy", "folder.png", "folder.html"):
        (folder / name).mkdir()
    # .npy and .npz
    np.save(folder / "digits.npy", digits)
    np.save(folder / "overwrite-me.npy", digits)  # only for the case that writes over its input
    (folder / "empty.npy").write_bytes(b"")
    (folder / "garbage.npy").write_bytes(rng.bytes(1024))
    whole = (folder / "digits.npy").read_bytes()
    (folder / "truncated.npy").write_bytes(whole[: len(whole) // 2])
    canary = Canary(folder / "notes.txt", folder / "PICKLE-WAS-LOADED")
    np.save(folder / "object.npy", np.array([canary, canary], dtype=object), allow_pickle=True)
    write_npy_header(folder / "huge-header.npy", (100000, 100000, 64))
    np.save(folder / "nan.npy", np.where(digits > 8, np.nan, digits))
    np.save(folder / "inf.npy", np.where(digits > 8, np.inf, digits))
    np.save(folder / "7x7.npy", digits[:, :7, :7])
    np.save(folder / "strings.npy", digits.astype(int).astype(str))
    np.save(folder / "scalar.npy", np.float64(3.0))
    np.save(folder / "no-rows.npy", digits[:0])
    np.save(folder / "one-row.npy", digits[:1])
    np.save(folder / "pixels-16000.npy", digits * 1000)
    np.save(folder / "negative.npy", digits - 8)
    np.save(folder / "1e300.npy", np.full_like(digits, 1e300))
    (folder / "empty.npz").write_bytes(b"")
    (folder / "garbage.npz").write_bytes(rng.bytes(1024))
    np.savez(folder / "good.npz", x=digits, y=np.arange(40) % 10)
    whole = (folder / "good.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    (folder / "good.npz").unlink()
    np.savez(folder / "object.npz", x=np.array([canary, canary], dtype=object), y=np.arange(2))
    np.savez(folder / "no-x.npz", a=digits, b=np.arange(40))
    np.savez(folder / "labels-mismatch.npz", x=digits, y=np.arange(5))
    np.savez(folder / "negative-labels.npz", x=digits, y=-np.arange(40))
    # latents for a 4-d run
    np.save(folder / "z-ok.npy", rng.normal(size=(5, 4)).astype(np.float32))
    np.save(folder / "z-width3.npy", np.zeros((5, 3), dtype=np.float32))
    np.save(folder / "z-1d.npy", np.zeros(4, dtype=np.float32))
    np.save(folder / "z-3d.npy", np.zeros((5, 2, 3), dtype=np.float32))
    np.save(folder / "z-nan.npy", np.full((5, 4), np.nan, dtype=np.float32))
    np.save(folder / "z-1e30.npy", np.full((5, 4), 1e30, dtype=np.float32))
    np.save(folder / "z-strings.npy", np.full((5, 4), "zero"))
    np.save(folder / "z-no-rows.npy", np.zeros((0, 4), dtype=np.float32))
    np.save(folder / "z-far.npy", np.full((5, 4), 12.0, dtype=np.float32))
    # CSV: a good table (the table run's columns) and bad ones
    write_table_csv(folder / "people.csv", n=40)
    (folder / "empty.csv").write_bytes(b"")
    (folder / "garbage.csv").write_bytes(rng.bytes(1024))
    (folder / "ragged.csv").write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n")
    (folder / "semicolon.csv").write_text("a;b;c\n" + "".join(f"{i};{i + 1};{i * 2}\n" for i in range(30)))
    (folder / "header-only.csv").write_text("a,b,c\n")
    (folder / "one-row.csv").write_text("a,b,c\n1,2,3\n")
    (folder / "inf.csv").write_text("a,b\n" + "".join(f"{i},{'inf' if i == 7 else i}\n" for i in range(30)))
    (folder / "1e300.csv").write_text("a,b\n" + "".join(f"{i},{'1e300' if i == 7 else i}\n" for i in range(30)))
    (folder / "wrong-columns.csv").write_text("x,y,z\n" + "".join(f"{i},{i},{i}\n" for i in range(20)))
    rows = (folder / "people.csv").read_text().splitlines()
    (folder / "people-semicolon.csv").write_text("".join(row.replace(",", ";") + "\n" for row in rows))
    (folder / "people-ragged.csv").write_text("".join(row + ("\n" if i != 5 else ",9,9\n") for i, row in
                                                      enumerate(rows)))
    (folder / "people-header-only.csv").write_text(rows[0] + "\n")
    body = "".join(f"{h},0,red,3\n" for h in (170, 180, "inf", 160))
    (folder / "people-inf.csv").write_text(f"{rows[0]}\n{body}")
    (folder / "people-1e300.csv").write_text(f"{rows[0]}\n{body.replace('inf', '1e300')}")
    (folder / "people-purple.csv").write_text(f"{rows[0]}\n170,0,purple,3\n,1,red,2\n")
    (folder / "empty.txt").write_text("")
    # images
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(200))
    (folder / "zero.png").write_bytes(b"")
    write_png(folder / "mask-5x5.png", 5)
    for name, contents in {"mixed-sizes": [("a.png", 8), ("b.png", 12), ("c.png", 8)],
                           "one-corrupt": [("a.png", 8), ("b.png", 8)], "one-empty": [("a.png", 8), ("b.png", 8)]
                           }.items():
        (folder / name).mkdir()
        for file, size in contents:
            write_png(folder / name / file, size)
    (folder / "one-corrupt" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(100))
    (folder / "one-empty" / "zero.png").write_bytes(b"")
    (folder / "not-images").mkdir()
    (folder / "not-images" / "readme.txt").write_text("no images here\n")
    # gzip IDX (a fake MNIST folder, each with one bad file)
    for name in ("idx-truncated", "idx-not-gzip", "idx-overflow"):
        write_fake_mnist(folder / name)
    labels = folder / "idx-truncated" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:20])
    (folder / "idx-not-gzip" / "t10k-images-idx3-ubyte.gz").write_bytes(rng.bytes(300))
    write_idx_header(folder / "idx-overflow" / "train-images-idx3-ubyte.gz", (65536, 65537, 4294901761))
    # configs
    (folder / "broken.yaml").write_text("train:\n  epochs: [1\n  lr: : :\n")
    (folder / "unknown-key.yaml").write_text("train:\n  epochs: 1\n  learning_rate: 0.01\n")
    (folder / "wrong-type.yaml").write_text("train:\n  epochs: abc\n")
    (folder / "list.yaml").write_text("- 1\n- 2\n")
    (folder / "huge-hidden.yaml").write_text("model:\n  hidden: [10000000, 10000000]\n")
    (folder / "broken.json").write_text('{"train": {"epochs": 1,,}}')
    # feature networks for evaluate --fid: neither is TorchScript
    (folder / "garbage.pt").write_bytes(rng.bytes(512))
    import torch

    torch.save({"weights": torch.zeros(3), "canary": canary}, folder / "pickled.pt")
    shutil.copytree(existing_run, folder / "existing-run")


def make_broken_runs(folder: Path, run: Path) -> None:
    """Damaged copies of a good run folder, each broken in one way."""
    from safetensors.torch import load_file, save_file

    def copy(name: str) -> Path:
        return Path(shutil.copytree(run, folder / name))

    (folder / "empty").mkdir()
    (folder / "header-only").mkdir()
    for name in ("config.json", "data_spec.json"):
        shutil.copy(run / name, folder / "header-only" / name)
    (copy("no-config") / "config.json").unlink()
    (copy("corrupt-config") / "config.json").write_bytes(b"\xff\xfe{garbage")
    (copy("config-list") / "config.json").write_text("[]")
    config = json.loads((run / "config.json").read_text())
    config["model"]["nope"] = 1
    (copy("config-unknown-key") / "config.json").write_text(json.dumps(config))
    config = json.loads((run / "config.json").read_text())
    config["model"]["latent_dim"] = 10**9
    (copy("config-huge-latent") / "config.json").write_text(json.dumps(config))
    (copy("no-spec") / "data_spec.json").unlink()
    (copy("corrupt-spec") / "data_spec.json").write_text('{"shape": [1, 8')
    (copy("no-weights") / "model.safetensors").unlink()
    (copy("corrupt-weights") / "model.safetensors").write_bytes(b"\x00" * 8 + b"garbage" * 20)
    weights = (run / "model.safetensors").read_bytes()
    (copy("truncated-weights") / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    (copy("empty-weights") / "model.safetensors").write_bytes(b"")
    config = json.loads((run / "config.json").read_text())
    config["model"]["latent_dim"] += 1
    (copy("wrong-shape") / "config.json").write_text(json.dumps(config))
    tensors = load_file(run / "model.safetensors")
    save_file({name: torch_nan(t) for name, t in tensors.items()}, copy("nan-weights") / "model.safetensors")
    (copy("damaged-history") / "history.csv").write_bytes(b"\xff\xfe\x00garbage")
    (copy("corrupt-metrics") / "metrics.json").write_text("{not json")
    for leftover in folder.rglob("figures"):
        shutil.rmtree(leftover)


def torch_nan(tensor):
    return tensor.float().fill_(math.nan).to(tensor.dtype) if tensor.is_floating_point() else tensor


# ------------------------------------------------------------------------------------ the runs


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory, invoke, pristine_run: Path, cvae_run: Path):
    """{placeholder: folder}: the runs the cases read and the bad files, built once for the module; and
    a port in use (a socket listening on it while the module runs)."""
    root = tmp_path_factory.mktemp("corpus")
    table = root / "table-run"
    write_table_csv(root / "people.csv", n=200)
    invoke(["train", "--data", root / "people.csv", "--epochs", "1", *TINY, "--set", "eval.enabled=false",
            "--set", "data.column_types={visits: count}", "--out", table])
    text = root / "text-run"
    (root / "corpus.txt").write_text("".join(f"{a} {b} here\n" for a in ("a cat", "the dog", "my bird")
                                             for b in ("sat", "ran", "hid") for _ in range(10)))
    invoke(["train", "--data", root / "corpus.txt", "--preset", "seq-vae", "--set", "data.tokens=word", "--epochs",
            "1", *SMALL, "--set", "eval.enabled=false", "--out", text])
    (root / "bad").mkdir()
    make_bad_files(root / "bad", pristine_run)
    (root / "broken").mkdir()
    make_broken_runs(root / "broken", pristine_run)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield {"RUN": pristine_run, "CVAE": cvae_run, "TABLE": table, "TEXT": text, "BAD": root / "bad",
               "BROKEN": root / "broken", "PORT": taken.getsockname()[1]}


PLACEHOLDER = re.compile(r"\b(RUN|CVAE|TABLE|TEXT|BAD|BROKEN|TMP|PORT)\b")


def run_vaekit(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, list[str]]:
    """``vaekit ARGS`` in-process as ``python -m vaekit`` runs it (its log lines, "warning: " first):
    (exit code, stdout, stderr, Python warnings shown), each warning as the one-line text Python
    would print. Warnings are filtered as a plain interpreter filters them."""
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()
        for quiet in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", quiet)
        warnings.simplefilter("default")
        for quiet in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=quiet)
        signal.signal(signal.SIGALRM, too_long)
        signal.alarm(CASE_SECONDS)
        try:
            code = run_in_process(args)
        finally:
            signal.alarm(0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err, [f"{w.category.__name__}: {w.message}" for w in shown]


CASE_SECONDS = 30  # a bad input is refused at once: a case still running after this is trying to do the work


class TooLong(BaseException):
    """Raised by the alarm in a case that runs too long (a BaseException: vaekit does not catch it)."""


def too_long(signum, frame) -> None:
    raise TooLong(f"still running after {CASE_SECONDS} s")


def digests(folders: dict[str, Path]) -> dict[str, dict[str, str]]:
    return {name: folder_digest(folder) for name, folder in folders.items()}


def as_param(case: Case):
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [as_param(case) for case in CASES])
def test_bad_input_contract(case: Case, places: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """One case: the exit code, the one line naming the thing at fault, no traceback, nothing written."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", never_serve)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "cache"))
    where = {**places, "TMP": tmp_path}
    args = [PLACEHOLDER.sub(lambda found: str(where[found[1]]), arg) for arg in case.args]
    # The folders this case names (hashing all six before and after every case was half the module's time).
    named = {found[1] for arg in case.args for found in PLACEHOLDER.finditer(arg)}
    read = {name: folder for name, folder in where.items() if name in named and isinstance(folder, Path)
            and name != "TMP"}
    before = digests(read)
    code, out, err, shown = run_vaekit(args, capsys)
    report = (f"vaekit {' '.join(args)}\nexit {code}\n--- stdout\n{out}\n--- stderr\n{err}\n--- Python warnings\n"
              + "\n".join(shown))
    assert "Traceback" not in out + err, report
    lines = err.splitlines()
    errors = [line for line in lines if not line.startswith("warning: ")]
    warned = [line for line in lines if line.startswith("warning: ")]
    assert not (places["BAD"] / "PICKLE-WAS-LOADED").exists(), f"a pickle was loaded\n{report}"
    assert digests(read) == before, f"a file was written or changed in a folder the case reads\n{report}"
    if case.expect == "refuse":
        assert code == 2, report
        assert len(errors) == 1 and errors[0].startswith("vaekit: error: "), f"expected one error line\n{report}"
        assert not warned and not shown, f"a refusal prints its one line and no warning\n{report}"
        assert case.named in errors[0], f"the line does not name {case.named!r}\n{report}"
        assert folder_digest(tmp_path) == {}, f"a refused case left files behind\n{report}"
        assert not any(tmp_path.iterdir()), f"a refused case left a folder behind\n{report}"
    else:
        assert case.why, f"{case.name}: an accepted case says why"
        assert code == 0 and "vaekit: error" not in err, report
        assert not shown, f"Python warnings are not one-line warnings\n{report}"
        if case.expect == "warn":
            assert any(case.named in line for line in warned), f"no warning naming {case.named!r}\n{report}"


def never_serve(*args, **kwargs) -> None:
    raise AssertionError("explore got as far as serving: a bad option must fail before")


# ------------------------------------------------------------------------------------ the Python API


@dataclass(frozen=True)
class ApiCase:
    """A misuse of the Python API: ``call(fixtures)`` must raise a ValueError that is a VaekitError,
    its message one line containing ``said``."""

    name: str
    call: Callable[[dict], object]
    said: str
    misuse: bool = True  # False: bad input (a broken run folder), a VaekitError but not a ValueError
    xfail: str = ""


def _estimator(kind: str, **params):
    from vaekit.estimators import VAEImputer, VAEOutlierDetector, VAETransformer

    small = {"n_components": 2, "hidden": (8,), "max_epochs": 1, "k": 5, "random_state": 0}
    return {"transformer": VAETransformer, "detector": VAEOutlierDetector, "imputer": VAEImputer}[kind](
        **{**small, **params})


ROWS = np.random.default_rng(0).normal(size=(30, 3))


def fit(kind: str, X=ROWS, **params):
    return lambda fixtures: _estimator(kind, **params).fit(X)


API_CASES: list[ApiCase] = [
    ApiCase("load-none", lambda f: vaekit.load(None), "path of a run folder"),
    ApiCase("load-int", lambda f: vaekit.load(3), "path of a run folder"),
    ApiCase("load-missing", lambda f: vaekit.load(f["TMP"] / "no-such-run"), "no-such-run", misuse=False),
    ApiCase("load-a-file", lambda f: vaekit.load(f["BAD"] / "notes.txt"), "notes.txt", misuse=False),
    ApiCase("load-corrupt-config", lambda f: vaekit.load(f["BROKEN"] / "corrupt-config"), "config.json",
            misuse=False),
    ApiCase("load-corrupt-weights", lambda f: vaekit.load(f["BROKEN"] / "corrupt-weights"), "model.safetensors",
            misuse=False),
    ApiCase("load-wrong-shape", lambda f: vaekit.load(f["BROKEN"] / "wrong-shape"), "model.safetensors",
            misuse=False),
    ApiCase("load-nan-weights", lambda f: vaekit.load(f["BROKEN"] / "nan-weights"), "NaN", misuse=False),
    ApiCase("load-device-unknown", lambda f: vaekit.load(f["RUN"], device="gpu"), "gpu"),
    ApiCase("sample-minus-one", lambda f: f["run"].sample(-1), "at least 1"),
    ApiCase("sample-zero", lambda f: f["run"].sample(0), "at least 1"),
    ApiCase("sample-float", lambda f: f["run"].sample(2.5), "whole number"),
    ApiCase("sample-string", lambda f: f["run"].sample("4"), "whole number"),
    ApiCase("sample-temperature-inf", lambda f: f["run"].sample(4, temperature=math.inf), "temperature"),
    ApiCase("sample-temperature-negative", lambda f: f["run"].sample(4, temperature=-1.0), "temperature"),
    ApiCase("sample-cvae-label-99", lambda f: f["cvae"].sample(4, condition=99), "0..9"),
    ApiCase("sample-condition-on-unconditional", lambda f: f["run"].sample(4, condition=1), "condition"),
    ApiCase("encode-wrong-shape", lambda f: f["run"].encode(np.zeros((3, 7, 7))), "(1, 8, 8)"),
    ApiCase("encode-nan", lambda f: f["run"].encode(np.full((3, 1, 8, 8), np.nan)), "NaN"),
    ApiCase("encode-strings", lambda f: f["run"].encode(np.full((3, 1, 8, 8), "x")), "input"),
    ApiCase("encode-none", lambda f: f["run"].encode(None), "input"),
    ApiCase("encode-pixels-16000", lambda f: f["run"].encode(np.full((3, 1, 8, 8), 16000.0)), "trained on"),
    ApiCase("decode-wrong-width", lambda f: f["run"].decode(np.zeros((3, 5))), "shape (N, 4)"),
    ApiCase("decode-1-d", lambda f: f["run"].decode(np.zeros(4)), "shape (N, 4)"),
    ApiCase("decode-text", lambda f: f["run"].decode("codes"), "shape (N, 4)"),
    ApiCase("decode-nan", lambda f: f["run"].decode(np.full((2, 4), np.nan)), "NaN"),
    ApiCase("decode-1e30", lambda f: f["run"].decode(np.full((2, 4), 1e30)), "1e+30"),
    ApiCase("decode-mode-unknown", lambda f: f["run"].decode(np.zeros((2, 4)), mode="nope"), "nope"),
    ApiCase("generate-wrong-width", lambda f: f["run"].generate(np.zeros((3, 1))), "shape (N, 4)"),
    ApiCase("reconstruct-wrong-shape", lambda f: f["run"].reconstruct(np.zeros((3, 64, 2))), "(1, 8, 8)"),
    ApiCase("reconstruct-inf", lambda f: f["run"].reconstruct(np.full((3, 1, 8, 8), np.inf)), "inf"),
    ApiCase("inputs-split-unknown", lambda f: f["run"].inputs(split="nope"), "nope"),
    ApiCase("inputs-missing-file", lambda f: f["run"].inputs(str(f["BAD"] / "nope.npy")), "nope.npy"),
    ApiCase("inputs-pickle", lambda f: f["run"].inputs(str(f["BAD"] / "object.npy")), "object.npy"),
    ApiCase("transformer-n-components-zero", fit("transformer", n_components=0), "n_components"),
    ApiCase("transformer-n-components-float", fit("transformer", n_components=2.5), "n_components"),
    ApiCase("transformer-hidden-zero", fit("transformer", hidden=(0,)), "hidden"),
    ApiCase("transformer-beta-negative", fit("transformer", beta=-1.0), "beta"),
    ApiCase("transformer-hidden-huge", fit("transformer", hidden=(10**7, 10**7)), "hidden"),
    ApiCase("transformer-max-epochs-zero", fit("transformer", max_epochs=0), "max_epochs"),
    ApiCase("transformer-learning-rate-nan", fit("transformer", learning_rate=math.nan), "learning_rate"),
    ApiCase("transformer-batch-size-negative", fit("transformer", batch_size=-1), "batch_size"),
    ApiCase("transformer-preset-unknown", fit("transformer", preset="nope"), "nope"),
    ApiCase("transformer-device-unknown", fit("transformer", device="gpu"), "gpu"),
    ApiCase("transformer-fit-1-d", fit("transformer", X=np.zeros(5)), "2D"),
    ApiCase("transformer-fit-empty", fit("transformer", X=np.zeros((0, 3))), "0 sample"),
    ApiCase("transformer-fit-inf", fit("transformer", X=np.full((10, 3), np.inf)), "infinity"),
    ApiCase("transformer-fit-a-column-all-missing", fit("transformer", X=np.c_[ROWS[:, :2], np.full(30, np.nan)]),
            "missing"),
    ApiCase("transformer-transform-unfitted", lambda f: _estimator("transformer").transform(ROWS), "not fitted"),
    ApiCase("transformer-transform-wrong-width", lambda f: f["transformer"].transform(np.zeros((4, 5))), "3"),
    ApiCase("transformer-inverse-wrong-width", lambda f: f["transformer"].inverse_transform(np.zeros((4, 5))),
            "n_samples, 2"),
    ApiCase("transformer-sample-zero", lambda f: f["transformer"].sample(0), "n_samples"),
    ApiCase("detector-contamination-two", fit("detector", contamination=2.0), "contamination"),
    ApiCase("detector-contamination-nan", fit("detector", contamination=math.nan), "contamination"),
    ApiCase("imputer-method-unknown", fit("imputer", method="nope"), "nope"),
    ApiCase("imputer-k-zero", fit("imputer", k=0), "k"),
]


@pytest.fixture(scope="module")
def api_fixtures(places: dict) -> dict:
    """The module's places, the runs loaded, and a fitted transformer."""
    from vaekit.estimators import VAETransformer

    transformer = VAETransformer(n_components=2, hidden=(8,), max_epochs=1, k=5, random_state=0).fit(ROWS)
    return {**places, "run": vaekit.load(places["RUN"]), "cvae": vaekit.load(places["CVAE"]),
            "transformer": transformer}


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name, marks=[pytest.mark.xfail(
    reason=case.xfail, strict=True)] if case.xfail else []) for case in API_CASES])
def test_api_misuse_contract(case: ApiCase, api_fixtures: dict, tmp_path: Path) -> None:
    """One misuse: a ValueError that is a VaekitError, one line naming what is wrong."""
    with pytest.raises(Exception) as caught:  # noqa: B017 -- which exception is what the case checks
        case.call({**api_fixtures, "TMP": tmp_path})
    error = caught.value
    detail = f"{type(error).__name__}: {error}"
    assert isinstance(error, VaekitError) and (isinstance(error, ValueError) or not case.misuse), detail
    assert "\n" not in str(error) and case.said in str(error), detail
    assert not (api_fixtures["BAD"] / "PICKLE-WAS-LOADED").exists()


def test_the_corpus_is_a_corpus() -> None:
    """Names are unique (they are the test ids), every case says what it expects."""
    for table in (CASES, API_CASES):
        names = [case.name for case in table]
        assert len(names) == len(set(names))
    assert all(case.expect in ("refuse", "accept", "warn") for case in CASES)
    assert len(CASES) + len(API_CASES) >= 200
