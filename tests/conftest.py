"""Suite-wide options: `--regen-golden` rewrites tests/data/domxml/*.xml from the builders."""

from __future__ import annotations


def pytest_addoption(parser):
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite the domain XML goldens (tests/data/domxml/<case>.xml) instead of comparing",
    )
