"""One version everywhere: agent.__version__, debian/changelog, and both commands' --version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent import __version__, cli, daemon

ROOT = Path(__file__).parents[2]


def test_debian_changelog_top_entry_is_the_code_version():
    top = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    m = re.fullmatch(r"hvagent \(([^)]+)\) \S+; urgency=\w+", top)
    assert m, top
    # A native package: the Debian version is the upstream version, no revision.
    assert m.group(1) == __version__


@pytest.mark.parametrize(
    ("main", "prog"), [(cli.main, "hvagent-client"), (daemon.parse_args, "hvagent")]
)
def test_version_option_prints_the_package_version(main, prog, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"{prog} {__version__}\n"
