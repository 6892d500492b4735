"""Attribute helpers for the builders: drop None, spell booleans the way libvirt wants."""

from __future__ import annotations


def attrs(**kw: str | int | None) -> dict[str, str]:
    """Keyword attributes without the None ones; booleans must go through yes_no/on_off."""
    out: dict[str, str] = {}
    for key, value in kw.items():
        if value is None:
            continue
        if isinstance(value, bool):
            raise TypeError(f"attribute {key}: use yes_no() or on_off() for booleans")
        out[key.rstrip("_")] = str(value)
    return out


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def on_off(value: bool) -> str:
    return "on" if value else "off"
