"""pyproject.toml declares every third-party package the platform imports directly (the benchmark peers have
venvs of their own and are left out)."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib

from core.settings import PROJECT_ROOT

OURS = ("core", "schemas", "producers", "streaming", "db", "monitoring", "infra")


def imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for folder in OURS:
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            if "peers" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(OURS)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_directly_imported_package_is_declared():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = {normalized(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    distributions = metadata.packages_distributions()
    missing = {
        module: distributions.get(module)
        for module in imported_top_level_modules()
        if not any(normalized(d) in declared for d in distributions.get(module, [module]))
    }
    assert not missing, f"imported but not declared in pyproject.toml's dependencies: {missing}"
