"""Read the Dockerfile and .dockerignore the way Docker does, for tests that cannot build.

Enough of the Dockerfile grammar for this repo: comments, line continuations, JSON (exec)
and shell forms, `ARG`/`ENV` substitution in `FROM`, `KEY=value` pairs in `ENV` and
`LABEL`. And enough of .dockerignore: glob patterns with `**`, `!` exceptions, last match
wins, a match on a directory excludes what is inside it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the logical line, continuations joined
    line: int  # where it starts (1-based)

    def exec_form(self) -> list[str] | None:
        """The JSON array of `RUN`/`CMD`/`ENTRYPOINT`/`SHELL` in exec form, else None."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value

    def pairs(self) -> dict[str, str]:
        """`KEY=value KEY2="value 2"` of `ENV`, `LABEL` and `ARG` as a dict."""
        out = {}
        for token in shlex.split(self.args):
            key, sep, value = token.partition("=")
            assert sep, f"line {self.line}: {token!r} is not KEY=value"
            out[key] = value
        return out


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, in order."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not parts):
            continue  # comments vanish, also inside a continued instruction
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(raw.rstrip()[:-1])
            continue
        parts.append(raw)
        logical = " ".join(p.strip() for p in parts if p.strip())
        keyword, _, args = logical.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    assert not parts, "the Dockerfile ends inside a line continuation"
    return instructions


def load(path: Path = DOCKERFILE) -> list[Instruction]:
    return parse(path.read_text())


def substitute(value: str, variables: dict[str, str]) -> str:
    """`$VAR` and `${VAR}` as Docker expands them in FROM, ENV, COPY and WORKDIR."""

    def repl(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, "")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, value)


def base_image(instructions: list[Instruction], build_args: dict | None = None) -> str:
    """The image the (single) FROM resolves to, with the ARG defaults before it."""
    variables: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            variables[name] = (build_args or {}).get(name, default)
        if ins.keyword == "FROM":
            return substitute(ins.args.split()[0], variables)
    raise AssertionError("no FROM")


def final_env(instructions: list[Instruction], inherited: dict[str, str]) -> dict[str, str]:
    """The image's environment: `inherited` (the base image's) updated by every ENV."""
    env = dict(inherited)
    for ins in instructions:
        if ins.keyword == "ENV":
            for key, value in ins.pairs().items():
                env[key] = substitute(value, env)
    return env


def of(instructions: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in instructions if i.keyword == keyword]


# --- .dockerignore ---------------------------------------------------------------------
def ignore_patterns(path: Path = DOCKERIGNORE) -> list[tuple[bool, str]]:
    """(is_exception, pattern) for every rule, in order."""
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        rules.append((negate, pattern.strip("/")))
    return rules


def _pattern_matches(pattern: str, path: str) -> bool:
    if "**" in pattern:
        regex = ""
        for piece in re.split(r"(\*\*/?)", pattern):
            if piece.startswith("**"):
                regex += "(?:.*/)?" if piece.endswith("/") else ".*"
            else:
                regex += fnmatch.translate(piece)[4:-3].replace(".*", "[^/]*")
        return re.fullmatch(regex, path) is not None
    pattern_parts, path_parts = pattern.split("/"), path.split("/")
    return len(pattern_parts) == len(path_parts) and all(
        fnmatch.fnmatchcase(p, q) for q, p in zip(pattern_parts, path_parts, strict=True)
    )


def ignored(relpath: str, rules: list[tuple[bool, str]] | None = None) -> bool:
    """Whether Docker leaves `relpath` (relative to the context root) out of the context."""
    rules = ignore_patterns() if rules is None else rules
    parts = relpath.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, pattern in rules:
        if any(_pattern_matches(pattern, p) for p in prefixes):
            excluded = not negate
    return excluded
