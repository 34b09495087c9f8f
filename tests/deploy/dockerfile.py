"""Read the Dockerfile and .dockerignore as the deployment tests need them.

Only the Dockerfile features this project uses are understood: `\\` continuations, comment
lines, `KEY=value` ENV pairs, exec-form (JSON) CMD and HEALTHCHECK, and leading `--flags`
on RUN and COPY. The .dockerignore matcher follows Docker's rules (last matching line
wins, `!` re-includes, a pattern matching a folder covers what is inside it), with
`fnmatch` standing in for Go's path matching.
"""

import fnmatch
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its upper-case keyword and the text after it."""

    keyword: str
    arguments: str

    def flags(self) -> dict[str, str]:
        """The leading `--name=value` options, such as COPY's `--from`."""
        flags = {}
        for word in self.arguments.split():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            flags[name] = value
        return flags

    def body(self) -> str:
        """The arguments without their leading `--options`."""
        words = self.arguments.split(" ")
        while words and (words[0].startswith("--") or not words[0]):
            words.pop(0)
        return " ".join(words)


def read_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Every instruction of the file, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, arguments = (pending + line.strip()).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def read_stages(path: Path = DOCKERFILE) -> list[list[Instruction]]:
    """The instructions grouped into build stages, each group starting with its FROM."""
    stages: list[list[Instruction]] = []
    for instruction in read_instructions(path):
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def stage_environment(stage: list[Instruction]) -> dict[str, str]:
    """The ENV variables a stage sets, values as written (no `$VAR` expansion)."""
    environ = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            pairs = (word.split("=", 1) for word in shlex.split(instruction.arguments))
            environ.update({name: value for name, value in pairs})
    return environ


def only(stage: list[Instruction], keyword: str) -> Instruction:
    """The single instruction of that kind in the stage."""
    matches = [instruction for instruction in stage if instruction.keyword == keyword]
    assert len(matches) == 1, f"expected one {keyword}, found {len(matches)}"
    return matches[0]


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON argument list of a CMD, or of a HEALTHCHECK's CMD."""
    text = instruction.body()
    if instruction.keyword == "HEALTHCHECK":
        text = text.removeprefix("CMD").strip()
    return json.loads(text)


def read_ignore_rules(path: Path = DOCKERIGNORE) -> list[tuple[str, bool]]:
    """(pattern, re-included) pairs in file order."""
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((line.lstrip("!").strip("/"), negated))
    return rules


def is_ignored(relative: str, rules: list[tuple[str, bool]]) -> bool:
    """Whether Docker leaves `relative` (a path inside the context) out of the build context."""
    ignored = False
    for pattern, negated in rules:
        if _matches(pattern, relative):
            ignored = not negated
    return ignored


def _matches(pattern: str, relative: str) -> bool:
    parts = relative.strip("/").split("/")
    paths = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    patterns = [pattern, pattern.removeprefix("**/")]
    return any(fnmatch.fnmatchcase(path, candidate) for path in paths for candidate in patterns)
