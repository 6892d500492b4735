"""Secrets out of domain XML before it leaves hvagent (Host.dumpxmls)."""

from __future__ import annotations

from agent.domxml import parse, to_string

# Elements whose `passwd` attribute is a console or auth password.
_PASSWORD_ATTRS = ("passwd",)


def blank_passwords(xml: str) -> str:
    """Every `passwd` attribute set to the empty string; everything else unchanged."""
    root = parse(xml)
    changed = False
    for el in root.iter():
        for attr in _PASSWORD_ATTRS:
            if el.get(attr) is not None:
                el.set(attr, "")
                changed = True
    return to_string(root) if changed else xml
