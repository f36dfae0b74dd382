"""The layer picture of docs/architecture.md, checked on the code: nothing imports upward,
commands never import each other, and no modules import each other in a circle (imports
inside functions and under TYPE_CHECKING count too: a circle held together by local
imports is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "eslkit"

# Lowest first.  A module may import from its own package and from lower ranks only.
LAYERS = [
    ("errors", "_headers", "_compact_json", "status", "safe_text", "backoff", "sizes", "causes", "__init__"),
    ("event",),
    ("protocol", "subscription", "config"),
    ("client", "calls", "recording", "contacts", "libesl"),
    ("switch_state",),
    ("stats",),
    ("actions", "brokers", "views", "sim", "ESL", "metrics"),
    ("sources", "control"),
    ("web",),
    ("app",),
    ("commands",),
    ("cli",),
    ("__main__",),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out["eslkit." + ".".join(parts)] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """Every eslkit module this file imports, anywhere in it (``from pkg import module``
    depends on that module, not on the package's __init__)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "eslkit" or node.module.startswith("eslkit."):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("eslkit.")}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {m for m in imports(path, known) if m in known and m != name} for name, path in mods.items()}


def top(module: str) -> str:
    return module.split(".")[1]


def test_nothing_imports_a_layer_above_it():
    wrong = []
    for module, deps in graph().items():
        if top(module) == "build":
            continue  # the build is a product of its own (docs/architecture.md)
        for dep in deps:
            if top(dep) == "build" and top(module) != "commands":
                wrong.append((module, dep))
            elif top(dep) != "build" and top(dep) != top(module) and RANK[top(dep)] >= RANK[top(module)]:
                wrong.append((module, dep))
    assert not wrong, wrong


def test_the_build_stands_apart():
    for module, deps in graph().items():
        if top(module) == "build":
            assert {top(d) for d in deps} <= {"build", "errors", "safe_text", "__init__"}, (module, deps)


def test_commands_never_import_each_other():
    shared = {"eslkit.commands.options"}  # option aliases, not a command
    for module, deps in graph().items():
        if module.startswith("eslkit.commands.") and module not in shared:
            assert not {d for d in deps if d.startswith("eslkit.commands.")} - shared, module


def test_no_import_circles():
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in g:
        if v not in index:
            visit(v)
    assert not circles, circles


def test_every_eslkit_import_names_a_module_that_exists():
    """A module that moved leaves no import behind (imports inside functions are not run by
    most tests)."""
    mods = modules()
    known = set(mods) | {"eslkit"}
    missing = []
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and (node.module == "eslkit" or node.module.startswith("eslkit.")):
                if node.module not in known:
                    missing.append((name, node.module))
            elif isinstance(node, ast.Import):
                missing += [(name, a.name) for a in node.names if a.name.startswith("eslkit.") and a.name not in known]
    assert not missing, missing
