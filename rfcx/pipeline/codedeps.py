"""Which rfcx source files a workflow script runs, read from its imports, so that each rule lists them as inputs.

Snakemake does not track what a script imports: a rule whose code changed would keep its stale results. A hand-kept
list of modules per rule rots as the code moves, so the list is derived here, statically (no import, no GPU, no
TensorFlow at planning time), from the `import` statements of the script and, transitively, of every rfcx module
it reaches, including imports inside functions (rfcx imports heavy modules lazily).

`rfcx.pipeline.stages` is the scripts' one entry point and imports, inside each function, what that stage needs; taking
all of it would make every rule depend on every module (editing the probe would retrain the CNN). A script's reach
through stages is therefore the stages functions it calls (`stages.train(...)`), the stages functions those call, and
stages' own top-level imports. Every other module counts whole.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "rfcx"
ROOT = Path(__file__).resolve().parents[1]
HUB = f"{PACKAGE}.pipeline.stages"


def module_file(name: str) -> Path | None:
    """The source file of rfcx module `name` (a package's __init__.py), None when it is not one."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(nodes: list[ast.AST]) -> set[str]:
    """rfcx modules named by the import statements among `nodes` (and inside them): `from rfcx.a import b` is
    rfcx.a, plus rfcx.a.b when b is a submodule; a package also brings its __init__."""
    names: set[str] = set()
    for node in (inner for outer in nodes for inner in ast.walk(outer)):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in candidates:
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # rfcx.a.b imports rfcx and rfcx.a first
                if module_file(".".join(parts[:depth])) is not None:
                    names.add(".".join(parts[:depth]))
    return names


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _hub_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _hub_calls(nodes: list[ast.AST]) -> set[str]:
    """Names of the stages functions used by `nodes` as `stages.name`."""
    return {node.attr for outer in nodes for node in ast.walk(outer)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "stages"}


def _through_hub(called: set[str]) -> set[str]:
    """The modules that the stages functions `called` (and the stages functions they call) import, and stages'
    own top-level imports."""
    tree = _tree(module_file(HUB))
    functions = _hub_functions(tree)
    todo, seen = [name for name in called if name in functions], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [node.func.id for node in ast.walk(functions[name])
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions]
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return _imported(top_level + [functions[name] for name in seen])


def reached_modules(script: str | Path) -> set[str]:
    """Every rfcx module that running `script` can import: its own imports, transitively; the stages hub by the
    functions the script calls, or whole when a module other than the script imports it."""
    tree = _tree(Path(script).resolve())
    todo = list(_imported([tree]))
    if HUB in todo:
        todo += list(_through_hub(_hub_calls([tree])))
    reached: set[str] = set()
    hub_whole = False
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        if name == HUB:
            continue
        imports = _imported([_tree(module_file(name))])
        if HUB in imports and not hub_whole:
            hub_whole = True
            imports |= _imported([_tree(module_file(HUB))])
        todo += list(imports)
    return reached


def script_code(script: str | Path) -> list[Path]:
    """The source files of `script`'s reached modules, sorted: a rule's code inputs."""
    return sorted(module_file(name) for name in reached_modules(script))
