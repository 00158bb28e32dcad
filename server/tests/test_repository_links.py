"""The repository stands alone: no file in it points outside it, and the documentation's links work.

People get this repository and nothing beside it. So no file may lead elsewhere: not to the
workplace's shared folder next to a clone, not to a path on someone's machine, not to a Markdown
file that exists only outside the repository. And every relative link in README.md and docs/
must reach a file that exists.

The files checked are what `git ls-files` lists, tracked or untracked but not ignored, except
lockfiles, binary files and anything under node_modules. The checker is plain functions
(`repository_files`, `find_problems`), so the tests at the end can show on a throwaway
repository that each rule catches what it is for, and lets similar but harmless text through.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote

import pytest

LOCKFILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
        "Cargo.lock",
        "Gemfile.lock",
        "composer.lock",
        "go.sum",
    }
)
MARKDOWN_SUFFIXES = (".md", ".markdown")
BINARY_SNIFF_BYTES = 8192

# These patterns are written so that this file does not contain the text they look for.
SHARED_FOLDER = re.compile(r"\.\./+shared\b")
"""The shared folder that sits beside the repository in the workplace, reached by `..`."""
WORKPLACE_PATH = re.compile(r"(?<![\w.~-])/wor[k]/")
"""An absolute path into the workplace folder (a URL path such as `host/<that folder>/` does not count)."""
ABSOLUTE_ROOT = re.compile(r"^/(?:home|Users|tmp|root|var|etc|opt|mnt|media|private|srv|usr|wor[k])(?:/|$)")
"""Link targets that are paths on someone's machine. Other targets starting with `/` are
repository-root links, which GitHub resolves against the repository root."""
WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
MARKDOWN_MENTION = re.compile(r"(?<![\w./@~-])((?:[\w.-]+/)*[\w-][\w.-]*\.md)\b")
"""A Markdown file named in any text (a bare name, or a path ending in one), but not inside a URL."""

LINK_TEXT = r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
LINK_TARGET = r"(<[^<>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
LINK_TITLE = r"""(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?"""
INLINE_LINK = re.compile(rf"!?{LINK_TEXT}\(\s*{LINK_TARGET}{LINK_TITLE}\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*(<[^<>\n]*>|\S+)", re.MULTILINE)
FENCE_OPENING = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?!`)(?:.+?)(?<!`)\1(?!`)")

OUTSIDE = "outside"
MISSING = "missing"


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    kind: str
    """OUTSIDE: points outside the repository. MISSING: a documentation link to no file."""
    message: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}: {self.excerpt}"


# -- which files ------------------------------------------------------------------------------


def repository_root(start: Path) -> Path:
    found = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True, check=True
    )
    return Path(found.stdout.strip()).resolve()


def _git_paths(root: Path, *options: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", *options], cwd=root, capture_output=True, check=True)
    return [path for path in listed.stdout.decode("utf-8", "surrogateescape").split("\0") if path]


def skipped(path: str) -> bool:
    parts = path.split("/")
    return "node_modules" in parts or parts[-1] in LOCKFILES


def repository_files(root: Path) -> list[str]:
    """Tracked files plus untracked ones git does not ignore, as POSIX paths relative to `root`;
    without lockfiles, node_modules, and tracked files deleted from the working tree."""
    listed = dict.fromkeys(_git_paths(root) + _git_paths(root, "--others", "--exclude-standard"))
    return sorted(path for path in listed if not skipped(path) and (root / path).is_file())


def read_text(file: Path) -> str | None:
    """The file's text, or None for a binary file (a NUL byte near the start, or not UTF-8)."""
    data = file.read_bytes()
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# -- the rules --------------------------------------------------------------------------------


def find_problems(root: Path, paths: Iterable[str]) -> list[Problem]:
    """Every reference outside the repository in `paths`, and every documentation link to a
    file that does not exist."""
    root = root.resolve()
    paths = list(paths)
    known = set(paths)
    names = {path.rsplit("/", 1)[-1] for path in paths}
    problems: list[Problem] = []
    for path in paths:
        text = read_text(root / path)
        if text is None:
            continue
        links = link_targets(text) if path.endswith(MARKDOWN_SUFFIXES) else []
        problems += _mentions(path, text, known, names, root, skip=[(start, end) for _, start, end, _ in links])
        problems += _links(root, path, text, links)
    return problems


def _problem(path: str, text: str, offset: int, kind: str, message: str) -> Problem:
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    excerpt = text[start : end if end != -1 else len(text)].strip()
    return Problem(path, line, kind, message, excerpt[:200])


def _mentions(
    path: str, text: str, known: set[str], names: set[str], root: Path, *, skip: list[tuple[int, int]]
) -> list[Problem]:
    """Text anywhere in a file (code and comments included) that names a place outside. Markdown
    files named inside link targets (the `skip` spans) are left to the link check."""
    found = [
        _problem(path, text, m.start(), OUTSIDE, "mentions the shared folder beside the repository")
        for m in SHARED_FOLDER.finditer(text)
    ]
    found += [
        _problem(path, text, m.start(), OUTSIDE, "mentions an absolute path outside the repository")
        for m in WORKPLACE_PATH.finditer(text)
    ]
    for m in MARKDOWN_MENTION.finditer(text):
        if any(start <= m.start() < end for start, end in skip):
            continue
        if not _markdown_file_exists(m.group(1), path, known, names, root):
            found.append(
                _problem(path, text, m.start(), OUTSIDE, f"mentions {m.group(1)}, which is not in the repository")
            )
    return found


def _markdown_file_exists(mention: str, path: str, known: set[str], names: set[str], root: Path) -> bool:
    if "/" not in mention:
        return mention in names
    here = os.path.dirname(path)
    candidates = {os.path.normpath(os.path.join(here, mention)), os.path.normpath(mention)}
    if any(candidate in known or (root / candidate).is_file() for candidate in candidates):
        return True
    # A path written relative to some package inside the repository (`packages/react/README.md`).
    return any(known_path.endswith("/" + mention) for known_path in known)


def without_code(text: str) -> str:
    """`text` with fenced code blocks and inline code spans blanked (same length, newlines kept):
    links are looked for only where Markdown renders them, and offsets still give line numbers."""
    kept: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        if fence is None:
            opening = FENCE_OPENING.match(line)
            if opening:
                fence = opening.group(1)
                kept.append(_blank(line))
            else:
                kept.append(INLINE_CODE.sub(lambda span: _blank(span.group(0)), line))
        else:
            closing = re.fullmatch(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*\r?\n?", line)
            if closing:
                fence = None
            kept.append(_blank(line))
    return "".join(kept)


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def link_targets(text: str) -> list[tuple[int, int, int, str]]:
    """The Markdown links of `text` (inline and reference definitions, not in code), each as
    (offset of the link, start and end of its target, the target)."""
    rendered = without_code(text)
    found = [(m.start(), m.start(1), m.end(1), m.group(1)) for m in INLINE_LINK.finditer(rendered)]
    found += [(m.start(), m.start(1), m.end(1), m.group(1)) for m in REFERENCE_DEFINITION.finditer(rendered)]
    return sorted(found)


def _links(root: Path, path: str, text: str, links: list[tuple[int, int, int, str]]) -> list[Problem]:
    must_exist = path == "README.md" or path.startswith("docs/")
    found: list[Problem] = []
    for offset, _, _, target in links:
        verdict = link_verdict(root, path, target, must_exist=must_exist)
        if verdict is not None:
            kind, message = verdict
            found.append(_problem(path, text, offset, kind, message))
    return found


def link_verdict(root: Path, path: str, target: str, *, must_exist: bool) -> tuple[str, str] | None:
    """What is wrong with a Markdown link target written in `path`, or None. Anchors and query
    strings are ignored; relative targets resolve against the file's folder. With `must_exist`
    (README.md and docs/) every target must exist; elsewhere only Markdown targets must."""
    target = target.strip()
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1].strip()
    if not target or target.startswith("#") or target.startswith("//"):
        return None
    if WINDOWS_PATH.match(target):
        return OUTSIDE, f"links to the absolute filesystem path {target}"
    if SCHEME.match(target):
        if target.lower().startswith("file:"):
            return OUTSIDE, f"links to a local file ({target})"
        return None  # https:, mailto: and the like
    location = unquote(target.split("#", 1)[0].split("?", 1)[0])
    if not location:
        return None
    if location.startswith("/"):
        if ABSOLUTE_ROOT.match(location):
            return OUTSIDE, f"links to the absolute filesystem path {location}"
        resolved = root / location.lstrip("/")
    else:
        resolved = (root / path).parent / location
    normalized = Path(os.path.normpath(resolved))
    if not normalized.is_relative_to(root):
        return OUTSIDE, f"links to {target}, outside the repository"
    if normalized.exists():
        return None
    if must_exist:
        return MISSING, f"links to {target}, which does not exist"
    if normalized.suffix in MARKDOWN_SUFFIXES:
        # Outside README.md and docs/, only a Markdown target must exist: a page that is not in
        # the repository is one that lives somewhere else.
        return OUTSIDE, f"links to {target}, which is not in the repository"
    return None


# -- this repository --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    root = repository_root(Path(__file__).parent)
    return find_problems(root, repository_files(root))


def test_nothing_points_outside_the_repository(problems: list[Problem]) -> None:
    outside = [str(p) for p in problems if p.kind == OUTSIDE]
    assert not outside, "files that point outside the repository:\n" + "\n".join(outside)


def test_documentation_links_reach_files(problems: list[Problem]) -> None:
    missing = [str(p) for p in problems if p.kind == MISSING]
    assert not missing, "README.md and docs/ links to files that do not exist:\n" + "\n".join(missing)


# -- the checker on planted files -------------------------------------------------------------

MD = ".md"
"""Appended in code, so that the planted names below are not Markdown mentions in this file."""
SHARED = ".." + "/shared"
WORKPLACE = "/wo" + "rk/"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, capture_output=True, check=True)


def _plant(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A throwaway git repository with a README and one docs page that link to each other."""
    _git(tmp_path, "init", "-q")
    _plant(
        tmp_path,
        {
            "README" + MD: f"# Demo\n\nSee [the guide](docs/guide{MD}).\n",
            f"docs/guide{MD}": f"# Guide\n\nBack to the [README](../README{MD}#demo).\n",
        },
    )
    _git(tmp_path, "add", "README" + MD, f"docs/guide{MD}")
    return tmp_path


def test_listing_takes_tracked_and_untracked_files_but_skips_ignored_lockfiles_and_node_modules(repo: Path) -> None:
    _plant(
        repo,
        {
            ".gitignore": "build/\n",
            "build/out.txt": "ignored",
            "notes.txt": "untracked, not ignored",
            "package-lock.json": "{}",
            "web/node_modules/pkg/index.js": "// vendored",
            "deleted.txt": "tracked, then deleted",
        },
    )
    _git(repo, "add", "deleted.txt")
    (repo / "deleted.txt").unlink()

    assert repository_files(repo) == [".gitignore", "README" + MD, f"docs/guide{MD}", "notes.txt"]


def test_a_clean_repository_has_no_problems(repo: Path) -> None:
    assert find_problems(repo, repository_files(repo)) == []


def test_binary_files_are_not_read(repo: Path) -> None:
    _plant(repo, {"logo.png": b"\x89PNG\r\n\x1a\n\0\0" + SHARED.encode(), "latin1.txt": SHARED.encode() + b"\xff\xfe"})

    assert find_problems(repo, repository_files(repo)) == []


@pytest.mark.parametrize(
    ("name", "content", "line", "kind", "message"),
    [
        ("setup.sh", f"#!/bin/sh\nsource {SHARED}/env.sh\n", 2, OUTSIDE, "mentions the shared folder"),
        ("app.py", f'"""Facts."""\n\nFACTS = "{WORKPLACE}shared/facts.json"\n', 3, OUTSIDE, "mentions an absolute path"),
        ("server/provider.py", f"# Provider facts: see PROVIDERS{MD} §2\n", 1, OUTSIDE, f"mentions PROVIDERS{MD}"),
        ("notes" + MD, f"Read `shared/CONTRACT{MD}` first.\n", 1, OUTSIDE, f"mentions shared/CONTRACT{MD}"),
        ("pkg/README" + MD, f"# Pkg\n\nThe [contract](../../../CONTRACT{MD}).\n", 3, OUTSIDE, "outside the repository"),
        ("pkg/USAGE" + MD, f"Facts: [here]({SHARED}/facts{MD}#spotify)\n", 1, OUTSIDE, "mentions the shared folder"),
        ("pkg/LINKS" + MD, "See [my notes](/home/alice/notes.txt).\n", 1, OUTSIDE, "absolute filesystem path /home/alice"),
        ("pkg/MAC" + MD, "See [it](</Users/bob/My Notes/x.txt>).\n", 1, OUTSIDE, "absolute filesystem path /Users/bob"),
        ("pkg/TMP" + MD, "Logs [here][logs].\n\n[logs]: /tmp/run.log\n", 3, OUTSIDE, "absolute filesystem path /tmp/run.log"),
        ("pkg/FILE" + MD, "A [file](file:///etc/hosts).\n", 1, OUTSIDE, "links to a local file"),
        ("pkg/WIN" + MD, "A [file](C:/Users/bob/x.txt).\n", 1, OUTSIDE, "absolute filesystem path C:/Users"),
        (f"docs/api{MD}", f"# API\n\nSee the [setup guide](setup{MD}#install).\n", 3, MISSING, "does not exist"),
        ("README" + MD, "# Demo\n\nSee [the changelog](CHANGES.txt).\n", 3, MISSING, "does not exist"),
        (f"docs/deep/page{MD}", f"Up: [guide](../guide{MD}), [img](../missing.png)\n", 1, MISSING, "missing.png"),
    ],
)
def test_each_rule_catches_its_planted_file(
    repo: Path, name: str, content: str, line: int, kind: str, message: str
) -> None:
    _plant(repo, {name: content})

    found = find_problems(repo, repository_files(repo))

    assert found, f"nothing found in {name}"
    assert {(p.path, p.kind) for p in found} == {(name, kind)}, found
    assert any(p.line == line and message in p.message for p in found), found


def test_similar_but_harmless_text_passes(repo: Path) -> None:
    _plant(
        repo,
        {
            f"docs/more{MD}": (
                "# More\n\n"
                f"[Guide](guide{MD}), [the same, by section](./guide{MD}#section \"Guide\"), "
                f"[root README](/README{MD}), [the docs folder](../docs), [anchor](#more).\n"
                f"[Web](https://example.com{WORKPLACE}item), [mail](mailto:team@example.com), "
                "<https://example.com/a/b>, [rel](//cdn.example.com/x.js).\n\n"
                "```sh\n"
                f"cat docs/guide{MD}   # a command, not a link: [x]({'/'.join(['..'] * 4)}/y)\n"
                "```\n\n"
                f"Inline code is not a link either: `[x](/home/alice/y)`.\n"
                f"Hosted READMEs are fine: https://github.com/example/project/blob/main/CHANGES{MD}\n"
            ),
        },
    )

    assert find_problems(repo, repository_files(repo)) == []


def test_outside_docs_only_markdown_link_targets_must_exist(repo: Path) -> None:
    _plant(
        repo,
        {
            "pkg/README" + MD: (
                f"See [the design](DESIGN-NOTES{MD}), [up](../README{MD}) and [the logo](logo.svg).\n"
            )
        },
    )

    found = find_problems(repo, repository_files(repo))

    # The missing logo is not checked outside README.md and docs/; a Markdown page that is nowhere
    # in the repository is reported once, by the link check (not again as a mention).
    assert [(p.kind, p.message) for p in found] == [
        (OUTSIDE, f"links to DESIGN-NOTES{MD}, which is not in the repository")
    ]
