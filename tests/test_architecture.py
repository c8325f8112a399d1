"""The shape of the code (docs/architecture.md), checked: small modules, public names
between modules, device and host met only in the backend layer, imports one way."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "tsogpu"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 600

# layer -> the tsogpu modules it may import (its own layer always)
ALLOWED = {
    "algorithms": {"config", "dq", "errors"},
    "launchers": {"algorithms", "config", "dq", "errors", "segment"},
    "backends": {"algorithms", "launchers", "flow", "segment", "memory", "errors", "config"},
    "io": {"config", "dq", "errors", "segment"},
}


def _name(path):
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
        ".__init__"
    )


def _imports(path):
    """(imported tsogpu module, names taken from it, line) for each import of ``path``."""
    tree = ast.parse(path.read_text())
    here = _name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "tsogpu":  # from tsogpu import dq: the modules themselves
                for a in node.names:
                    yield f"tsogpu.{a.name}", [], node.lineno
            elif module.split(".")[0] == "tsogpu":
                yield module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "tsogpu":
                    yield a.name, [], node.lineno


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_is_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{lines} lines"


def test_no_private_name_crosses_modules():
    crossing = []
    for path in MODULES:
        for module, names, line in _imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                crossing.append(f"{_name(path)}:{line} imports {private} from {module}")
        tree = ast.parse(path.read_text())
        imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    for a in n.names}  # fmt: skip
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                crossing.append(f"{_name(path)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not crossing


def test_device_and_host_meet_only_in_the_backend_layer():
    """No ``hasattr(a, "get")`` (a CuPy array?) outside tsogpu/backends and tsogpu/launchers:
    the pipeline moves data with ops.to_device / ops.to_host."""
    found = []
    for path in MODULES:
        if path.parent.name in ("backends", "launchers"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "hasattr"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value == "get"
            ):
                found.append(f"{_name(path)}:{node.lineno}")
    assert not found


def test_imports_run_one_way():
    wrong = []
    for path in MODULES:
        parts = _name(path).split(".")
        layer = (
            parts[1] if len(parts) > 2 or (len(parts) == 2 and path.name == "__init__.py") else None
        )
        if layer not in ALLOWED:
            continue
        for module, _, line in _imports(path):
            target = module.split(".")
            if len(target) < 2 or target[1] in (layer, "__version__"):
                continue
            if target[1] not in ALLOWED[layer]:
                wrong.append(f"{_name(path)}:{line} ({layer}) imports {module}")
    assert not wrong
