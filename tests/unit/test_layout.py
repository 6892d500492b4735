"""Architecture guards: the README documents every verb; pure modules stay pure."""

import ast
import re
from pathlib import Path

import pytest

from agent.api.methods import VERBS

ROOT = Path(__file__).parents[2]
PURE = [
    "agent/spec.py",
    *map(str, Path(ROOT).glob("agent/intake/*.py")),
    "agent/status.py",
    "agent/errors.py",
    "agent/hostinfo.py",
    "agent/config.py",
    "agent/power.py",
    "agent/clock.py",
    "agent/consoles.py",
    "agent/sessions.py",
    *map(str, Path(ROOT).glob("agent/domxml/**/*.py")),
]
FORBIDDEN = {"asyncio", "libvirt", "libvirtaio", "aiohttp", "jsonrpcserver"}


def test_readme_verb_table_matches_method_table():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `((?:Host|VM)\.\w+)` \|", readme, re.M))
    assert documented == set(VERBS)


@pytest.mark.parametrize("path", PURE)
def test_pure_modules_do_no_io_frameworks(path):
    tree = ast.parse((ROOT / path).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN


def test_only_virt_imports_libvirt():
    for path in (ROOT / "agent").rglob("*.py"):
        if "virt" in path.relative_to(ROOT / "agent").parts[:1]:
            continue
        text = path.read_text()
        assert not re.search(r"^\s*(import|from) libvirt", text, re.M), path
