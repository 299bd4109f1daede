"""Shared CLI plumbing: error handling, loading runs and inputs, output paths."""

from __future__ import annotations

import errno
import logging
import math
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from vaekit.errors import VaekitError

STATE: dict[str, Any] = {"debug": False, "inputs": set(), "outputs": set()}

log = logging.getLogger("vaekit")


class Device(str, Enum):
    auto, cpu, cuda, mps = "auto", "cpu", "cuda", "mps"


def run_app(app: typer.Typer) -> None:
    """Run the typer app; every exception becomes the outcome :func:`outcome` gives it."""
    try:
        code = app(standalone_mode=False)
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    except (Exception, KeyboardInterrupt) as error:
        status, line = outcome(error)
        if STATE["debug"] and status != 130:
            raise
        if line:
            print(line, file=sys.stderr)
        sys.exit(status)
    sys.exit(code if isinstance(code, int) else 0)


# Errors of the file system a user can act on (a full disk, a read-only or missing place, a name too
# long...): one line and exit 2 even where the OSError carries no path.
USER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
                         errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EFBIG, errno.ENAMETOOLONG,
                         errno.EMFILE, errno.ENFILE, errno.ELOOP, errno.ENOTEMPTY, errno.EXDEV})
OS_REMEDIES = {errno.ENOSPC: "the disk is full: free some space and rerun",
               errno.EDQUOT: "the disk quota is used up: free some space and rerun",
               errno.EFBIG: "the file is larger than this system allows",
               errno.EROFS: "the file system is read-only: choose another place",
               errno.EACCES: "no permission: choose a place you can write"}


def outcome(error: BaseException) -> tuple[int, str]:
    """The CLI's outcome of an exception, in one place: (exit code, the line for stderr).

    Known failures are one line and exit 2: a :class:`VaekitError` (bad input, configuration, run
    folder, divergence), a bad option, an operating-system error about a file (a full disk, a
    read-only folder, a missing path) and running out of memory. An interrupt exits 130 quietly.
    Anything else is a bug in vaekit: "internal error", exit 1. Notes added to the exception
    (``add_note``: what became of the run folder) end the line."""
    notes = "".join(f"; {note}" for note in getattr(error, "__notes__", ()))
    if isinstance(error, (KeyboardInterrupt, BrokenPipeError, typer.Abort)):
        return 130, ""
    if isinstance(error, VaekitError):
        return 2, f"vaekit: error: {error}{notes}"
    if _is_usage_error(error):  # click's (or typer's vendored click's) bad option or argument
        context = getattr(error, "ctx", None)
        command = context.command_path if context is not None else "vaekit"
        return 2, f"vaekit: error: {error.format_message()} (see: {command} --help)"
    if isinstance(error, OSError) and (error.filename is not None or error.errno in USER_ERRNOS):
        return 2, f"vaekit: error: {describe_os_error(error)}{notes}"
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or _cpu_allocation_failed(error):
        detail = str(error).splitlines()[0] if str(error) else ""
        return 2, (f"vaekit: error: out of memory{f' ({detail})' if detail else ''}: lower data.batch_size or "
                   f"eval.batch_size, use a smaller model, or fewer samples (data.max_samples){notes}")
    line = " ".join(str(error).split())  # one line, whatever the message
    return 1, (f"vaekit: internal error: {error.__class__.__name__}: {line} (rerun with --debug for the "
               "traceback)")


def _cpu_allocation_failed(error: BaseException) -> bool:
    """torch's CPU allocator out of memory: a plain RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def describe_os_error(error: OSError) -> str:
    """"PATH: No space left on device (the disk is full: ...)" for an operating-system error."""
    reason = error.strerror or str(error) or error.__class__.__name__
    remedy = OS_REMEDIES.get(error.errno)
    where = f"{error.filename}: " if error.filename is not None else ""
    if error.filename2 is not None:
        where = f"{error.filename} -> {error.filename2}: "
    return f"{where}{reason}{f' ({remedy})' if remedy else ''}"


def _is_usage_error(error: Exception) -> bool:
    return getattr(error, "exit_code", None) == 2 and hasattr(error, "format_message")


def finite(value: float | None) -> float | None:
    """Option callback: refuse inf and NaN for a float option (click's ranges let NaN through)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value}: expected a finite number")
    return value


def example(text: str) -> Callable[[Callable], Callable]:
    """Attach an example shown at the end of ``--help``."""

    def attach(function: Callable) -> Callable:
        function.example = f"Example: {text}"
        return function

    return attach


def load_run(path: Path, device: str = "cpu"):
    from vaekit.api import load

    return load(path, device=device)


def load_inputs(run, source: str | None, split: str = "test", holes: bool = False, check: bool = True):
    """Raw samples to feed a run: its own held-out split by default, or ``source`` (see :meth:`vaekit.Run.inputs`),
    checked now against the run's data spec so that a bad file is named in the error (``holes``: NaN is
    a missing value, as for imputation; ``check=False``: inputs that are not the run's samples, such as
    downsampled observations, checked by the caller)."""
    if source is not None and Path(source).exists():
        claim(source, "inputs", "--data")
    inputs = run.inputs(source, split)
    if source is not None and check:
        run.spec.transform(inputs.x, name=source, allow_nan=holes)
    return inputs


def figure_path(run, out: Path | None, name: str) -> Path:
    if out is not None:
        return out
    if run.path is None:
        raise VaekitError("no --out given and the run has no folder")
    return run.path / "figures" / name


def write_output(run, values, out: Path | None, nrow: int | None = None,
                 row_captions: list[str] | None = None) -> None:
    """Data-unit values to ``out`` by its suffix, as the data's kind writes them: .png (an image
    grid, ``nrow`` per row, each row captioned by ``row_captions`` when given), .gif (one frame per
    item), .npy or .csv; a text or molecule run's strings to .txt/.smi, or printed."""
    if prints_lines(run, out):
        write_texts(run.spec.to_text(values), out)  # text or molecules: one a line (printed without --out)
        return
    run.spec.data_kind.write(run.spec, values, out, nrow=nrow, row_captions=row_captions)
    log.info("wrote %s", out)


def prints_lines(run, out: Path | None) -> bool:
    """Whether values go out as lines of text (a text or molecule run, unless ``out`` is .npy)."""
    return run.spec.data_kind.prints(run.spec) and (out is None or out.suffix.lower() != ".npy")


def write_texts(texts, out: Path | None) -> None:
    """Strings one a line to ``out`` (.txt, .smi), or printed when there is no ``out``."""
    from vaekit.files import atomic_write_bytes

    if out is None:
        for text in texts:
            typer.echo(text)
        return
    atomic_write_bytes(out, "".join(f"{text}\n" for text in texts).encode())
    log.info("wrote %s", out)


def output_for(run, out: Path | None, name: str, allowed: tuple[str, ...]) -> Path | None:
    """Where a command writes: ``out`` checked against ``allowed`` (text and molecule runs: .txt, .smi
    or .npy instead), or the default figure RUN/figures/NAME.png; a text run prints instead."""
    if run.spec.data_kind.prints(run.spec):
        if out is not None:
            check_suffix(out, run.spec.data_kind.output_suffixes(run.spec, allowed))
        return out
    out = figure_path(run, out, f"{name}.png")
    check_suffix(out, allowed)
    return out


def parse_indices(text: str, count: int, option: str) -> list[int]:
    """"3,7,12" -> [3, 7, 12], each a valid index into ``count`` inputs."""
    from vaekit.errors import ConfigError

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 <= v < count for v in values):
        raise ConfigError(f"{option} {text!r}: expected comma-separated indices in 0..{count - 1}")
    return values


def choose_items(inputs, n: int | None, default: int, seed: int, indices: str | None = None,
                 option: str = "--indices"):
    """The inputs a command shows: ``indices`` (an option's "3,17,42") when given, else ``n`` (or
    ``default``) of them by :func:`~vaekit.applications.visualize.pick_items`, a seeded random
    choice, as files are often sorted by label."""
    import numpy as np

    from vaekit.applications.visualize import pick_items
    from vaekit.errors import ConfigError

    if indices is None:
        return pick_items(len(inputs), default if n is None else n, seed)
    if n is not None:
        raise ConfigError(f"--n and {option}: give one of them")
    return np.asarray(parse_indices(indices, len(inputs), option))


def item_captions(run, inputs, chosen) -> list[str]:
    """"#812: 3" for each chosen input: its index and, when the inputs are labelled, its class."""
    from vaekit.applications.visualize import item_captions as captions

    return captions(chosen, inputs.y, inputs.class_names or run.spec.class_names)


def say_items(run, inputs, chosen, what: str = "showing") -> None:
    """Log which inputs a command used: "showing items 812, 3, 1290 (labels 3, 0, 7)"."""
    from vaekit.applications.visualize import describe_items

    log.info("%s %s", what, describe_items(chosen, len(inputs), inputs.y, inputs.class_names or run.spec.class_names))


def claim(path: str | Path, role: str, option: str) -> None:
    """Note ``path`` as one of the command's inputs or outputs (``role``); a path that is both is
    refused (``encode --data x.npy --out x.npy`` overwrote its own input)."""
    resolved = Path(path).resolve()
    other = "outputs" if role == "inputs" else "inputs"
    if resolved in STATE[other]:
        raise VaekitError(f"{option} {str(path)!r} is also this command's {other[:-1]}; choose another file")
    STATE[role].add(resolved)


def check_suffix(path: Path, allowed: tuple[str, ...], option: str = "--out", role: str = "outputs") -> None:
    """A file option's suffix, and its place: not a folder, not below a file (refused before any
    work), and not also the command's input (an output) or output (an input)."""
    claim(path, role, option)
    if path.suffix.lower() not in allowed:
        raise VaekitError(f"{option} {str(path)!r}: expected a file ending in {' or '.join(allowed)}")
    if path.is_dir():
        raise VaekitError(f"{option} {str(path)!r} is a folder; expected a file")
    check_not_below_a_file(path, option)


def check_not_below_a_file(path: Path, option: str = "--out") -> None:
    """A path to create whose nearest existing ancestor is a file: refused before any work."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise VaekitError(f"{option} {str(path)!r}: {str(parent)!r} is a file, not a folder")


def condition_for(run, n: int, label: str | None, condition: str | None):
    """The condition for ``n`` samples: a class (index or name), a vector, or every class in turn."""
    import torch

    from vaekit.errors import ConfigError

    dim = run.model.condition_dim
    if not dim:
        if label is not None or condition is not None:
            option = "--label" if label is not None else "--condition"
            raise ConfigError(f"{option}: run {str(run.path)!r} is not conditional (train the cvae preset "
                              "to generate by class)")
        return None
    if label is not None and condition is not None:
        raise ConfigError("--label and --condition: give one of them")
    if condition is not None:
        try:
            vector = [float(v) for v in condition.split(",")]
        except ValueError:
            vector = []
        if len(vector) != dim or not all(math.isfinite(v) for v in vector):
            raise ConfigError(f"--condition {condition!r}: expected {dim} comma-separated finite numbers")
        return torch.tensor(vector).expand(n, dim)
    if label is None:
        return None  # Run.sample / Run.decode cycle through the classes
    from vaekit.data.loaders import class_index

    return torch.full((n,), class_index(label, run.spec.class_names, dim, "--label"))


def labels_of(run, inputs, what: str):
    """The inputs' labels as a tensor when the run is conditional (which needs them), else None."""
    return run.labels(inputs, what)
