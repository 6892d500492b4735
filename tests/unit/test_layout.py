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
    "agent/wirevalues.py",
    "agent/errors.py",
    "agent/hostinfo.py",
    *map(str, Path(ROOT).glob("agent/config/*.py")),
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


def _imports(path: Path) -> set[str]:
    """Every module a file imports, by full dotted name (`from a.b import c` gives a.b and
    a.b.c, since c may be a module)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _agent_files() -> list[Path]:
    return sorted((ROOT / "agent").rglob("*.py"))


def test_only_api_imports_the_http_and_jsonrpc_frameworks():
    for path in _agent_files():
        if path.relative_to(ROOT / "agent").parts[0] == "api":
            continue
        frameworks = {n.split(".")[0] for n in _imports(path)} & {"aiohttp", "jsonrpcserver"}
        assert not frameworks, f"{path} imports {frameworks}"


def test_api_never_builds_xml():
    """A verb's path is api -> runtime -> intake; the API layer never reaches domxml."""
    for path in (ROOT / "agent" / "api").rglob("*.py"):
        assert not any(n.startswith("agent.domxml") for n in _imports(path)), path


def test_domxml_is_only_builders_and_readers():
    """domxml/ renders and reads XML; requests, policy and config belong to intake/."""
    for path in (ROOT / "agent" / "domxml").rglob("*.py"):
        names = _imports(path)
        assert not any(
            n.startswith(("agent.intake", "agent.config", "agent.runtime")) for n in names
        ), path


def test_no_module_is_over_400_lines():
    sizes = {p: len(p.read_text().splitlines()) for p in _agent_files()}
    assert not {p: n for p, n in sizes.items() if n > 400}
