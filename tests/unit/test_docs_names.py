"""Every code name the README and docs/ mention exists: a file path, or a dotted name of one of our packages."""

from __future__ import annotations

import importlib
import re

import pytest

from core.settings import PROJECT_ROOT

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
PACKAGES = ("core", "schemas", "producers", "streaming", "db", "monitoring", "infra")
OURS = "|".join(PACKAGES)
PATH = re.compile(r"`((?:" + OURS + r"|tests|bench-results|docs)/[\w./*-]*\w)`")
DOTTED = re.compile(r"`((?:" + OURS + r")(?:\.\w+)+)`")


def mentioned(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return sorted({(doc.name, m) for doc in DOCS for m in pattern.findall(doc.read_text())})


@pytest.mark.parametrize(("doc", "path"), mentioned(PATH))
def test_a_path_the_docs_name_exists(doc, path):
    found = list(PROJECT_ROOT.glob(path)) if "*" in path else [PROJECT_ROOT / path]
    assert found and all(p.exists() for p in found), f"{doc} names {path}, which does not exist"


@pytest.mark.parametrize(("doc", "name"), mentioned(DOTTED))
def test_a_dotted_name_the_docs_use_exists(doc, name):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes below it
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"{doc} names {name}: {'.'.join(parts[:cut])} has no {attr}"
            obj = getattr(obj, attr)
        return
    pytest.fail(f"{doc} names {name}, which is no module of ours")
