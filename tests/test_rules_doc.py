"""docs/RULES.md is the project's statement of the contract's rules: every rule that the
code, SQL, YAML, tests, benchmarks, notebooks or docs cite must have a heading there, and
every heading there is either cited by the code or marked as not implemented yet.

Plain pytest, no Dagster, no lake: it only reads text files (well under a second).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES_MD = ROOT / "docs" / "RULES.md"
THIS_FILE = Path(__file__).resolve()

# Where rule citations may appear. gopro_tools/ is optional (it may not exist).
SCAN_DIRS = ("gopro_assets", "dbt_like_sql", "tests", "benchmarks", "notebooks", "docs", "scripts", "gopro_tools")
SCAN_FILES = ("README.md",)
# Citations outside docs count as "cited by the code" for test 2 (README.md is a doc too).
DOC_PARTS = {"docs"}
DOC_FILES = {"README.md"}

TEXT_SUFFIXES = {
    ".py",
    ".sql",
    ".yml",
    ".yaml",
    ".md",
    ".ipynb",
    ".sh",
    ".toml",
    ".json",
    ".txt",
    ".cfg",
    ".ini",
    ".html",
    ".j2",
    ".jinja",
    ".rst",
    ".csv",
}
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", "node_modules", ".git"}

TOKEN = re.compile(r"\bR(\d+)(b?)\b")
# A range like `R7–R9`, `R1-R13`, `R2 – R4` or `R1..R13`: every number in it is cited.
RANGE = re.compile(r"\bR(\d+)(b?)\s*(?:–|—|-|\.\.)\s*R(\d+)(b?)\b")
MAX_RULE = 30  # larger numbers are not rule citations (the contract's rules stop well below)

HEADING = re.compile(r"^## (R\d+b?)\b(.*)$", re.MULTILINE)
NOT_IMPLEMENTED = "Status: not implemented yet"


def _files() -> list[Path]:
    out = []
    for name in SCAN_FILES:
        if (ROOT / name).is_file():
            out.append(ROOT / name)
    for d in SCAN_DIRS:
        base = ROOT / d
        if not base.is_dir():
            continue
        for p in base.rglob("*"):
            if p.suffix not in TEXT_SUFFIXES or not p.is_file():
                continue
            if SKIP_DIRS.intersection(p.relative_to(ROOT).parts):
                continue
            # This file talks ABOUT citations (examples in its docstrings and regexes), it
            # does not cite rules itself.
            if p.resolve() == THIS_FILE:
                continue
            out.append(p)
    return sorted(out)


def _lines(path: Path) -> list[tuple[str, str]]:
    """(location, text) per line. Notebooks: only the cells' source, never their outputs
    (base64 images and binary reprs can contain `+R2/`-like runs that are not citations)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []  # moved away meanwhile, or not text: nothing to cite
    rel = path.relative_to(ROOT).as_posix()
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(text)
        except json.JSONDecodeError:
            return [(f"{rel}:{i}", line) for i, line in enumerate(text.splitlines(), 1)]
        out = []
        for c, cell in enumerate(nb.get("cells", []), 1):
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else str(src)
            out += [(f"{rel} cell {c} line {i}", line) for i, line in enumerate(src.splitlines(), 1)]
        return out
    return [(f"{rel}:{i}", line) for i, line in enumerate(text.splitlines(), 1)]


def _citations(line: str) -> list[tuple[str, str]]:
    """(rule, how it was written) for each rule the line cites."""
    found = []
    for m in TOKEN.finditer(line):
        n = int(m.group(1))
        if 1 <= n <= MAX_RULE:
            found.append((f"R{n}{m.group(2)}", m.group(0)))
    for m in RANGE.finditer(line):
        a, z = int(m.group(1)), int(m.group(3))
        if not (1 <= a <= MAX_RULE and 1 <= z <= MAX_RULE) or z <= a:
            continue
        # The endpoints are already tokens above; add what lies strictly between them
        # (a `b` start such as R1b–R3 starts the plain numbers after it: R2, R3).
        for n in range(a + 1, z):
            found.append((f"R{n}", f"{m.group(0)} (inside the range)"))
    return found


def _collect() -> dict[str, list[tuple[str, str]]]:
    """rule -> [(location, as written)]"""
    cited: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path in _files():
        for where, line in _lines(path):
            for rule, written in _citations(line):
                cited[rule].append((where, written))
    return cited


def _headings() -> dict[str, str]:
    """rule -> the text of its section (up to the next `## ` heading)."""
    text = RULES_MD.read_text(encoding="utf-8")
    sections = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    out: dict[str, str] = {}
    for sec in sections:
        m = HEADING.match(sec)
        if m:
            assert m.group(1) not in out, f"docs/RULES.md: heading {m.group(1)} appears twice"
            out[m.group(1)] = sec
    return out


def _is_doc(where: str) -> bool:
    path = re.split(r":| cell ", where, maxsplit=1)[0]
    parts = Path(path).parts
    return path in DOC_FILES or (bool(parts) and parts[0] in DOC_PARTS)


def test_every_cited_rule_has_a_heading_in_rules_md():
    headings = _headings()
    assert headings, "docs/RULES.md has no `## R<n> ...` headings"
    cited = _collect()
    assert cited, "no rule citations found at all: the scan is broken"
    missing = [
        f"  {where}: cites {rule} (written {written!r}) but docs/RULES.md has no `## {rule} ...` heading"
        for rule, places in sorted(cited.items())
        if rule not in headings
        for where, written in places
    ]
    assert not missing, "rule citations that do not resolve in docs/RULES.md:\n" + "\n".join(missing)


def test_every_rule_heading_is_cited_by_code_or_marked_not_implemented():
    cited = _collect()
    in_code = {rule for rule, places in cited.items() if any(not _is_doc(w) for w, _ in places)}
    orphans = [
        f"  docs/RULES.md: `## {rule}` is cited nowhere outside the docs and not marked `{NOT_IMPLEMENTED}`"
        for rule, section in _headings().items()
        if rule not in in_code and NOT_IMPLEMENTED not in section
    ]
    assert not orphans, "rule headings with neither an implementation nor a status:\n" + "\n".join(orphans)
