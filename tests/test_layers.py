"""Imports only point down: every ``import`` in ``reidbook/`` (at module level *and* inside functions,
relative ones resolved, ``importlib.import_module("...")`` with a literal name too) goes to a module of
its own layer or of a layer below.

:data:`LAYERS` is the one statement of the layer order; CONTRIBUTING.md's diagram is drawn from it
(``python tests/test_layers.py`` prints the block, and a test checks that CONTRIBUTING.md holds it).
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reidbook"

# Bottom first. Each layer: (module prefixes, what lives there). A module belongs to the layer of the
# longest prefix that matches it; the package root ``reidbook`` (version only) sits at the bottom.
LAYERS: list[tuple[tuple[str, ...], str]] = [
    (("reidbook", "reidbook.utils", "reidbook.profiles"),
     "progress, seeding, devices, atomic writes, cache dir ; smoke/quick/full and their width"),
    (("reidbook.data",), "SynthReID, real data sets, samplers, transforms, FD views"),
    (("reidbook.models", "reidbook.losses"), "the model contract (models/base.py), architectures ; losses, criteria"),
    (("reidbook.profile",), "parameters, multiply-adds, latency (measures any model, by stage)"),
    (("reidbook.presets",), "every model's hyper-parameters and loss recipe per profile (data)"),
    (("reidbook.engine",), "fit, fit_preset, optimisers/schedules, checkpoints, distributed, feature extraction"),
    (("reidbook.store", "reidbook.pretrain"),
     "hash-checked cache of trained things and data sets ; source-domain pre-training"),
    (("reidbook.eval", "reidbook.prune", "reidbook.distill"),
     "metrics, re-ranking, anytime ; channel pruning ; factorized distillation"),
    (("reidbook.viz",), "pure figure functions"),
    (("reidbook.widgets", "reidbook.teach"),
     "ipywidgets shells over viz ; exercises' checks, hints, solutions, quizzes"),
    (("reidbook.zoo", "reidbook.compare", "reidbook.export", "reidbook.claims", "reidbook.cli",
      "reidbook.commands", "reidbook.course", "reidbook.course_client", "reidbook.course_plan"),
     "train-or-load ; comparison ; ONNX export ; claims ledger ; the `reidbook` command ; course"),
]


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of ``module`` (a dotted name), or ``None`` outside reidbook."""
    best, best_len = None, -1
    for i, (prefixes, _) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    p = ROOT.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


@dataclass(frozen=True)
class Edge:
    source: str   # importing module
    path: Path
    line: int
    target: str   # imported module (resolved, absolute)


def imports_of(path: Path) -> list[Edge]:
    """Every reidbook module imported by ``path``, wherever the import statement is."""
    src = module_name(path)
    package = src if path.name == "__init__.py" else src.rpartition(".")[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one
            targets = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == \
                "import_module" and node.args and isinstance(node.args[0], ast.Constant) and \
                isinstance(node.args[0].value, str) and not node.args[0].value.startswith("."):
            targets = [node.args[0].value]
        edges += [Edge(src, path, node.lineno, t) for t in targets if t == "reidbook" or t.startswith("reidbook.")]
    return edges


def all_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def upward_imports() -> list[str]:
    bad = []
    for path in all_modules():
        for e in imports_of(path):
            src, dst = layer_of(e.source), layer_of(e.target)
            if dst is not None and src is not None and dst > src:
                bad.append(f"{e.path.relative_to(ROOT)}:{e.line}: {e.source} "
                           f"(layer {src}: {', '.join(LAYERS[src][0])}) "
                           f"imports {e.target} (layer {dst}: {', '.join(LAYERS[dst][0])})")
    return bad


def diagram() -> str:
    """CONTRIBUTING.md's layer block, drawn from :data:`LAYERS` (top first, as the page reads; paths
    relative to ``reidbook/``)."""
    rows = ["notebooks/                   chapters: import and call, define nothing"]
    for prefixes, what in reversed(LAYERS):
        names = "  ".join(p.partition(".")[2].replace(".", "/")
                          + ("/" if (ROOT / p.replace(".", "/")).is_dir() else ".py")
                          for p in prefixes if p != "reidbook")
        rows += [f"{names:<28} {what}"] if len(names) < 29 else [names, f"{'':<28} {what}"]
    return "\n".join(rows)


# ----------------------------------------------------------------------------------------------
def test_every_module_has_a_layer():
    missing = [module_name(p) for p in all_modules() if layer_of(module_name(p)) is None]
    assert not missing, f"modules without a layer in tests/test_layers.py LAYERS: {missing}"


def test_imports_only_point_down():
    bad = upward_imports()
    assert not bad, "imports that point up (move the code down, or the import into the caller):\n" + "\n".join(bad)


def test_contributing_draws_the_layers_from_this_table():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    assert diagram() in text, "CONTRIBUTING.md's layer diagram is out of date; paste `python tests/test_layers.py`"


def test_the_parser_sees_nested_relative_and_dynamic_imports(tmp_path):
    # a fake module inside the package tree is not needed: parse a snippet as if it were reidbook/models/x.py
    probe = PACKAGE / "models" / "_layers_probe.py"
    try:
        probe.write_text("def f():\n    from ..zoo import get\n    from . import backbones\n"
                         "    import importlib\n    importlib.import_module('reidbook.viz.plots')\n")
        edges = {(e.line, e.target) for e in imports_of(probe)}
    finally:
        probe.unlink()
    assert edges == {(2, "reidbook.zoo"), (3, "reidbook.models.backbones"), (5, "reidbook.viz.plots")}
    assert layer_of("reidbook.zoo") > layer_of("reidbook.models") == layer_of("reidbook.losses")
    assert layer_of("reidbook.profiles") == 0 and layer_of("numpy") is None


if __name__ == "__main__":
    if "--check" in sys.argv:
        print("\n".join(upward_imports()) or "no upward imports")
    else:
        print(diagram())
