"""One style of package face: every package that re-exports names does it with
``reidbook.utils.lazy_exports`` (no hand-written ``__getattr__``), and every exported name resolves."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAZY_FACES = ["reidbook.data", "reidbook.eval", "reidbook.engine", "reidbook.distill", "reidbook.models",
              "reidbook.prune", "reidbook.prune.criteria", "reidbook.prune.strategies"]


@pytest.mark.parametrize("package", LAZY_FACES)
def test_every_exported_name_resolves(package):
    mod = importlib.import_module(package)
    assert mod.__all__ == sorted(mod._EXPORTS)
    for name in mod.__all__:
        assert getattr(mod, name) is getattr(importlib.import_module(f"{package}.{mod._EXPORTS[name]}"), name)
    assert set(mod.__all__) <= set(dir(mod))
    with pytest.raises(AttributeError, match=f"{package}.*no_such_name"):
        _ = mod.no_such_name


def test_no_package_writes_its_own_getattr():
    own = []
    for init in sorted((ROOT / "reidbook").rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        own += [str(init.relative_to(ROOT)) for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name in ("__getattr__", "__dir__")]
    assert not own, f"use reidbook.utils.lazy_exports instead of a hand-written __getattr__ in {own}"


def test_lazy_exports_loads_on_first_use_and_caches(tmp_path, monkeypatch):
    pkg = tmp_path / "facepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from reidbook.utils import lazy_exports\n"
                                     "_EXPORTS = {'VALUE': 'sub', 'MISSING': 'sub'}\n"
                                     "__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)\n")
    (pkg / "sub.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    face = importlib.import_module("facepkg")
    assert "facepkg.sub" not in __import__("sys").modules  # nothing loaded yet
    assert "VALUE" in dir(face) and face.VALUE == 42
    assert face.__dict__["VALUE"] == 42  # cached: the next access skips __getattr__
    with pytest.raises(AttributeError, match="MISSING"):
        _ = face.MISSING  # listed, but the submodule has no such name
    with pytest.raises(AttributeError, match="'facepkg' has no attribute 'other'"):
        _ = face.other
