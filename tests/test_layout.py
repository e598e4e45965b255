"""The house rules of docs/ARCHITECTURE.md, checked on the source: imports point one way (no cycle, counting
imports inside functions), model.py knows tensors only, no function is over 60 lines and no command body
(its option declarations aside) over 40, and the library never prints or exits."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "s2scli"
MAX_FUNCTION = 60
MAX_COMMAND_BODY = 40


def modules() -> dict[str, Path]:
    """'s2scli.cli.core' -> its file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = ([target] if node.module else []) + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        out |= {c for c in candidates if c in known and c != name}
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path being explored, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def functions(path: Path) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.FunctionDef)]


def is_command(fn: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Call) and getattr(d.func, "id", "") == "command" for d in fn.decorator_list)


def test_no_import_cycle() -> None:
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    # A package's __init__ importing its own modules (the cli registering its commands) is not a cycle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_check_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_model_knows_tensors_only() -> None:
    """model.py imports only its config, feeding.py (its hand-written backward pass) and packed.py (products
    with packed weights); feeding.py imports only packed.py, which imports nothing."""
    known = modules()
    assert imported("s2scli.model", known["s2scli.model"], known) <= {"s2scli.config", "s2scli.feeding",
                                                                       "s2scli.packed"}
    assert imported("s2scli.feeding", known["s2scli.feeding"], known) <= {"s2scli.packed"}
    assert imported("s2scli.packed", known["s2scli.packed"], known) == set()


def test_functions_are_short() -> None:
    long = []
    for path in PACKAGE.rglob("*.py"):
        for fn in functions(path):
            if is_command(fn):
                body = fn.end_lineno - fn.body[0].lineno + 1  # from the docstring on: declarations aside
                if body > MAX_COMMAND_BODY:
                    long.append(f"{path.relative_to(PACKAGE)}:{fn.name} body {body} lines")
            elif fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION:
                long.append(f"{path.relative_to(PACKAGE)}:{fn.name} {fn.end_lineno - fn.lineno + 1} lines")
    assert not long, "; ".join(sorted(long))


def test_the_library_never_prints_or_exits() -> None:
    offenders = []
    for path in PACKAGE.glob("*.py"):  # the library: everything outside the cli package
        if path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f"{getattr(f.value, 'id', '')}.{f.attr}" \
                    if isinstance(f, ast.Attribute) else ""
                if name in ("print", "sys.exit", "exit", "quit", "os._exit"):
                    offenders.append(f"{path.name}:{node.lineno} {name}")
    assert not offenders, ", ".join(offenders)
