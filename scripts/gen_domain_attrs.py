"""Derive agent/intake/domain_attrs.txt from libvirt's RELAX NG schemas (a developer's tool,
not run by hvagent): for every element of a domain, keyed `parent/element` by local names,
the attributes the schema defines for it. The output is reviewed before it is committed
(agent/intake/xmlattrs.py takes out what reaches the host); a newer libvirt's additions reach
hvagent only through this review.

Run: .venv/bin/python scripts/gen_domain_attrs.py [/usr/share/libvirt/schemas] > FILE
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from lxml import etree

RNG = "{http://relaxng.org/ns/structure/1.0}"
ANY = "*"


def load(directory: Path) -> tuple[dict[str, list[etree._Element]], etree._Element]:
    defines: dict[str, list[etree._Element]] = defaultdict(list)
    seen: set[str] = set()
    start = None

    def read(name: str) -> None:
        nonlocal start
        if name in seen:
            return
        seen.add(name)
        root = etree.parse(str(directory / name)).getroot()
        for inc in root.iter(RNG + "include"):
            read(inc.get("href"))
        for d in root.iter(RNG + "define"):
            defines[d.get("name")].append(d)
        if name == "domain.rng":
            start = root.find(RNG + "start")

    read("domain.rng")
    assert start is not None
    return defines, start


def names(node: etree._Element) -> list[str]:
    if node.get("name"):
        return [node.get("name").split(":")[-1]]
    out: list[str] = []
    for child in node:
        if child.tag == RNG + "name":
            out.append((child.text or "").strip())
        elif child.tag == RNG + "choice":
            out += [(n.text or "").strip() for n in child.iter(RNG + "name")]
        elif child.tag in (RNG + "anyName", RNG + "nsName"):
            out.append(ANY)
        if out:
            break
    return out


def main() -> None:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/libvirt/schemas")
    defines, start = load(directory)
    attrs: dict[str, set[str]] = defaultdict(set)
    done: set[tuple[int, str, str]] = set()

    def walk(node: etree._Element, parent: str, current: str, refs: frozenset[str]) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            tag = child.tag.removeprefix(RNG)
            if tag == "element":
                for n in names(child):
                    key = f"{current}/{n}"
                    attrs.setdefault(key, set())
                    if n == ANY or (id(child), current, n) in done:
                        continue
                    done.add((id(child), current, n))
                    walk(child, current, n, frozenset())
            elif tag == "attribute":
                for n in names(child):
                    attrs[f"{parent}/{current}"].add(n)
            elif tag == "ref":
                name = child.get("name")
                if name in refs:
                    continue
                for d in defines[name]:
                    walk(d, parent, current, refs | {name})
            elif tag in ("data", "value", "text", "empty", "notAllowed", "param", "name"):
                continue
            else:
                walk(child, parent, current, refs)

    walk(start, "", "", frozenset())
    for key in sorted(attrs):
        print(" ".join([key, *sorted(attrs[key])]))


if __name__ == "__main__":
    main()
