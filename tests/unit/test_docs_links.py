"""Every relative link and anchor in README.md and docs/ resolves: a page moved or a
heading renamed fails here instead of leaving a newcomer at a dead link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) outside code; images too. Targets with a scheme are not checked.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces
    to hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    out = set()
    for line in _FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, "\n".join(broken)


def test_the_checker_catches_a_dead_link_and_a_dead_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## A b, c\n\n[x](#a-b-c) [y](#nope) [z](gone.md)\n")
    assert anchors(page) == {"title", "a-b-c"}
    assert links(page) == ["#a-b-c", "#nope", "gone.md"]


def test_every_docs_page_is_linked_from_the_readme():
    readme = links(ROOT / "README.md")
    for page in PAGES[1:]:
        assert any(t.partition("#")[0] == f"docs/{page.name}" for t in readme), page.name


def test_every_platform_module_is_in_the_guides_table_of_modules():
    """bring-your-own-model.md's "The platform's modules" names each one: a module added
    without a row there is a part of the design a reader cannot find."""
    guide = (ROOT / "docs" / "bring-your-own-model.md").read_text()
    table = guide.split("## The platform's modules", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(\w+\.py)`", table))
    modules = {p.name for p in (ROOT / "model" / "sagemaker_platform").glob("*.py")}
    assert modules - {"__init__.py"} <= listed, sorted(modules - listed - {"__init__.py"})
