"""Small helpers every layer may use: progress bars, seeding, devices, atomic files, the cache folder.

This module sits at the bottom of the package (it imports nothing from reidbook), so data,
models, engine, eval, prune, distill, viz and the CLI can all use it.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np


def quiet() -> bool:
    """True when ``REIDBOOK_QUIET=1``: progress bars and chatty prints are silenced."""
    return os.environ.get("REIDBOOK_QUIET", "0") not in ("", "0", "false", "False")


# Executed chapters (``REIDBOOK_PROGRESS=text``, set by the course runner): a bar appears after
# TEXT_DELAY seconds (short loops print nothing) and redraws at most every TEXT_INTERVAL seconds.
TEXT_DELAY, TEXT_INTERVAL, LIVE_INTERVAL = 2.0, 10.0, 0.5


def progress_mode() -> str:
    """``"off"`` (``REIDBOOK_QUIET=1``), ``"text"`` (``REIDBOOK_PROGRESS=text``) or ``"auto"``."""
    if quiet():
        return "off"
    return "text" if os.environ.get("REIDBOOK_PROGRESS", "auto").lower() == "text" else "auto"


def _text_tqdm():
    """tqdm whose ``close`` also prints a bar that ran longer than its ``delay`` but never reached a redraw
    (a 5 s loop under a 10 s ``mininterval``), so its final state is not lost."""
    global _TextTqdm
    if _TextTqdm is None:
        from tqdm import tqdm

        class TextTqdm(tqdm):
            def close(self):
                if (not self.disable and self.delay and self.last_print_t < self.start_t + self.delay
                        and self._time() - self.start_t >= self.delay):
                    self.last_print_t = self.start_t + self.delay  # counts as shown: close prints the last state
                super().close()

        _TextTqdm = TextTqdm
    return _TextTqdm


_TextTqdm = None


def progress(iterable: Iterable | None = None, **kwargs: Any):
    """A progress bar (tqdm), silent under ``REIDBOOK_QUIET=1``.

    * Live (a terminal, JupyterLab): ``tqdm.auto`` (a widget in a notebook), redrawn at most every
      ``LIVE_INTERVAL`` s, gone when done.
    * An executed chapter (``REIDBOOK_PROGRESS=text``; the course runner sets it, since nobody watches a
      papermill run live): plain text on stderr, shown only for loops longer than ``TEXT_DELAY`` s,
      redrawn at most every ``TEXT_INTERVAL`` s and **kept** when done, so the saved notebook shows the
      bar's final state (100 %, the last loss) instead of a widget frozen at "0%" — and the kernel sends
      a few lines instead of a stream of widget messages.
    Explicit ``kwargs`` win over these defaults, except that a text bar is always kept.
    """
    mode = progress_mode()
    kwargs.setdefault("disable", mode == "off")
    if mode == "text":
        import sys

        tqdm = _text_tqdm()
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("mininterval", TEXT_INTERVAL)
        kwargs.setdefault("maxinterval", max(TEXT_INTERVAL, 10.0))
        kwargs.setdefault("delay", TEXT_DELAY)
        kwargs.setdefault("ncols", 100)
        kwargs["leave"] = True
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", LIVE_INTERVAL)
    return tqdm(iterable, **kwargs)


def say(*args: Any) -> None:
    """``print`` unless ``REIDBOOK_QUIET=1``."""
    if not quiet():
        print(*args, flush=True)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so CPU runs are repeatable."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(device: str | None = "auto"):
    """``"auto"`` → CUDA if available, else MPS if available, else CPU. Never call ``.cuda()`` directly."""
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def cache_dir() -> Path:
    """The cache folder: ``$REIDBOOK_CACHE`` or ``~/.cache/reidbook``. Created on demand."""
    root = Path(os.environ.get("REIDBOOK_CACHE", Path.home() / ".cache" / "reidbook")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temp file in the same folder, fsync, then rename.

    A reader never sees a half-written file, and an existing file is only replaced once the new
    one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name lets a cleaner tell a killed writer's leftover from a live one's file
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a cache shared by a class must be readable
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temp file and an atomic rename."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (cache and store provenance)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def lazy_exports(package: str, exports: dict[str, str]):
    """The one style of package face: ``(__getattr__, __dir__)`` for a package ``__init__`` whose public
    names (``exports``: name → submodule) are imported from their submodule on first use (PEP 562).

    Usage, at the end of ``reidbook/<package>/__init__.py``::

        __all__ = sorted(_EXPORTS)
        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

    ``import reidbook.<package>`` stays cheap and a module is loaded only when a name of it is asked for;
    an unknown name is an ``AttributeError`` naming the package. The value is cached in the package.
    """
    import importlib
    import sys

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)  # the next access skips __getattr__
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__


def positive_int_arg(flag: str):
    """An ``argparse`` ``type=`` for a whole number ≥ 1, whose errors name the flag (used by every CLI)."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number ≥ 1, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number ≥ 1, got {value}")
        return value
    return parse
