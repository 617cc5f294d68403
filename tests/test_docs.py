"""The documentation cannot rot: every snippet in README.md and docs/*.md runs here, or says why it does not.

The convention (docs/architecture.md, "Documentation that runs", says it for writers):

- A ```` ```console ```` block is a terminal: each ``$ COMMAND`` line runs in bash and the lines after
  it, up to the next ``$``, are what it prints (stdout and stderr, as a terminal shows them). A
  command with no lines after it is run for its exit status only. ```` ```bash ````/``sh``/``shell``
  blocks run as one script, output not compared; ```` ```python ```` blocks run as a script (they
  assert what they claim). Every command must exit 0 unless the block says ``exit N``.
- ```` ```LANG file=PATH ```` (any language) is a file the reader writes: it is written to PATH before
  the later blocks of the same page run. ```` ```diff ```` blocks are patches the reader applies to
  the repository: applied with ``git apply`` before the later blocks run. A page with either runs
  each block in a fresh copy of the repository (cwd: its root), otherwise in a temporary folder
  that links the repository's data folders (hw_configs/, scenarios/, models/, dynamics/), as if at
  the repository root, with the repository on PYTHONPATH. ``aegis`` and
  ``python`` are this interpreter's.
- An HTML comment right before a block (blank lines between allowed) says how it runs:
  ``<!-- not run: REASON -->`` (the reason is required: what it needs, or how long it takes and where
  its numbers came from), or ``<!-- run: OPTION; OPTION -->`` with options ``slow`` (only under
  ``-m slow``: campaigns, benchmarks), ``exit N``, ``needs TOOL, TOOL`` (skipped when a tool is not
  on PATH), ``timings`` (every number in the output is a
  measurement: compared for shape only, and a benchmark target's "met" or "not met" with it) and
  ``timings LABEL, LABEL`` (only the numbers on lines that contain a label are). No comment: run, every number compared exactly.
- Output is compared as words: line breaks, blank lines, runs of spaces, the length of a table's
  rules and pybullet's build-time banner do not count (a terminal wraps a long path where it
  likes); blocks run with ``PYTHONHASHSEED=1`` (the filter QP's generated C depends on the hash
  seed: docs/microcontrollers.md); the repository's
  folder prints as ``/path/to/aegis``. A number compared for shape must keep its digits after the
  point (``72.3`` matches ``1013.5``, not ``1013``).
- Any block with a ``$ `` line must be ``console``; a runnable block with neither ``run`` nor ``not
  run`` runs. Relative links between README.md and docs/*.md must resolve, anchors included.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"console", "bash", "sh", "shell", "python", "diff"}
REPO_COPY = ("aegis", "controllers", "nodes", "hw_configs", "scenarios", "models", "dynamics", "launch", "resource")
REPO_FILES = ("package.xml", "setup.py", "setup.cfg", "pyproject.toml")
DATA_FOLDERS = ("hw_configs", "scenarios", "models", "dynamics")
COLUMNS = "100"
FAST_TIMEOUT_S, SLOW_TIMEOUT_S = 120, 1800
BOX_RUN = re.compile(r"([─━═])\1+")  # a table's rule: as long as its widest cell, which a timing moves
CELL_EDGE = re.compile(r" ?([│┃]) ?")  # a cell's padding: none when a wider number fills the column
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.(\d+))?")
DIRECTIVE = re.compile(r"^<!--\s*(not run|run)\s*:?(.*?)-->\s*$", re.DOTALL)


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    attrs: dict[str, str]
    body: str
    directive: str | None = None  # "run" or "not run"
    argument: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in RUNNABLE and self.directive != "not run" and "file" not in self.attrs

    @property
    def slow(self) -> bool:
        return "slow" in self.options


def parse_page(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page with the directive comment before each."""
    lines = page.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = re.match(r"^(\s*)(```+)(.*)$", lines[index])
        if not match:
            index += 1
            continue
        fence, info = match.group(2), match.group(3).split()
        end = next((j for j in range(index + 1, len(lines)) if lines[j].strip() == fence), None)
        assert end is not None, f"{page.name}:{index + 1}: unclosed code fence"
        lang = info[0] if info else ""
        attrs = dict(item.split("=", 1) for item in info[1:] if "=" in item)
        block = Block(page, index + 1, lang, attrs, "\n".join(lines[index + 1 : end]) + "\n")
        _read_directive(block, lines, index)
        blocks.append(block)
        index = end + 1
    return blocks


def _read_directive(block: Block, lines: list[str], fence_index: int) -> None:
    j = fence_index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or not lines[j].rstrip().endswith("-->"):
        return
    start = j
    while start >= 0 and "<!--" not in lines[start]:
        start -= 1
    match = DIRECTIVE.match(" ".join(line.strip() for line in lines[start : j + 1]))
    if not match:
        return
    block.directive, block.argument = match.group(1), " ".join(match.group(2).split())
    if block.directive == "run":
        for option in filter(None, (o.strip() for o in block.argument.split(";"))):
            name, _, value = option.partition(" ")
            block.options[name] = value.strip()


BLOCKS = [block for page in PAGES for block in parse_page(page)]


def test_the_docs_folder_has_pages() -> None:
    assert (ROOT / "docs").is_dir() and len(PAGES) > 1


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_every_block_follows_the_convention(block: Block) -> None:
    if any(line.startswith("$ ") for line in block.body.splitlines()):
        assert block.lang == "console", f"{block.id}: a block with '$ ' lines is a ```console block"
    if block.directive == "not run":
        assert block.lang in RUNNABLE, f"{block.id}: only runnable blocks (console, bash, python, diff) are marked not run"
        assert len(block.argument) >= 10, f"{block.id}: 'not run' needs its reason: <!-- not run: REASON -->"
    unknown = set(block.options) - {"slow", "exit", "timings", "needs"}
    assert not unknown, f"{block.id}: unknown run options {sorted(unknown)} (slow; exit N; needs TOOL, ...; timings [LABEL, ...])"
    if block.directive == "run":
        assert block.lang in RUNNABLE, f"{block.id}: <!-- run --> on a {block.lang or 'plain'} block, which does not run"
    if block.lang == "python" and "file" not in block.attrs and block.directive != "not run":
        compile(block.body, block.id, "exec")


def _run_cases() -> list:
    cases = []
    for block in BLOCKS:
        if block.runs:
            marks = [pytest.mark.slow] if block.slow else []
            cases.append(pytest.param(block, id=block.id, marks=marks))
    return cases


@pytest.mark.parametrize("block", _run_cases())
def test_snippet(block: Block, tmp_path: Path) -> None:
    missing = [tool for tool in _listed(block.options.get("needs", "")) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{block.id} needs {', '.join(missing)}")
    cwd, env = _sandbox(block, tmp_path)
    timeout = SLOW_TIMEOUT_S if block.slow else FAST_TIMEOUT_S
    expected_exit = int(block.options.get("exit", "0"))
    if block.lang == "console":
        for command, expected in _console_steps(block.body):
            result = _bash(command, cwd, env, timeout)
            assert result.returncode == expected_exit, f"{block.id}: `{command}` exited {result.returncode}\n{result.stdout}"
            if expected is not None:
                _compare(block, command, expected, _normalized_output(result.stdout, cwd, Path(env["PYTHONPATH"])))
    elif block.lang == "diff":
        _apply(block.body, cwd, env, block.id)
    else:
        script = tmp_path / f"snippet.{'py' if block.lang == 'python' else 'sh'}"
        script.write_text(block.body)
        command = f"python {script}" if block.lang == "python" else f"bash -e {script}"
        result = _bash(command, cwd, env, timeout)
        assert result.returncode == expected_exit, f"{block.id}: exited {result.returncode}\n{result.stdout}"


def _listed(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _sandbox(block: Block, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The folder a block runs in, with the page's files and patches before it, and the environment."""
    earlier = [b for b in BLOCKS if b.page == block.page and b.line < block.line]
    setup = [b for b in earlier if "file" in b.attrs or (b.lang == "diff" and b.directive != "not run")]
    in_repo = any(b.lang == "diff" for b in BLOCKS if b.page == block.page) or any(
        Path(b.attrs["file"]).parts[0] in REPO_COPY for b in BLOCKS if b.page == block.page and "file" in b.attrs
    )
    cwd = tmp_path / ("aegis" if in_repo else "work")
    cwd.mkdir()
    if in_repo:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in REPO_COPY:
            shutil.copytree(ROOT / name, cwd / name, ignore=ignore)
        for name in REPO_FILES:
            if (ROOT / name).is_file():
                shutil.copy2(ROOT / name, cwd / name)
    else:  # as from the repository root, without writing into it
        for name in DATA_FOLDERS:
            (cwd / name).symlink_to(ROOT / name, target_is_directory=True)
    env = _environment(tmp_path, cwd if in_repo else ROOT)
    for earlier_block in setup:
        if "file" in earlier_block.attrs:
            target = cwd / earlier_block.attrs["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(earlier_block.body)
        else:
            _apply(earlier_block.body, cwd, env, earlier_block.id)
    return cwd, env


def _environment(tmp_path: Path, source: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in (("aegis", f'"{sys.executable}" -m aegis.cli'), ("python", f'"{sys.executable}"')):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(source), COLUMNS=COLUMNS,
               NO_COLOR="1", TERM="dumb", PYTHONHASHSEED="1")
    return env


def _bash(command: str, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)


def _apply(patch: str, cwd: Path, env: dict[str, str], where: str) -> None:
    result = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], input=patch, cwd=cwd, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{where}: the patch does not apply to the repository any more:\n{result.stderr}"


def _console_steps(body: str) -> list[tuple[str, str | None]]:
    """(command, expected output or None) for each ``$`` line; ``\\``-continued commands joined."""
    steps: list[tuple[str, list[str]]] = []
    lines = body.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\") and index + 1 < len(lines):
                index += 1
                command = command[:-1] + " " + lines[index].strip()
            steps.append((command, []))
        elif steps:
            steps[-1][1].append(line)
        else:
            raise AssertionError(f"console block starts with output, not a '$ ' command: {line!r}")
        index += 1
    return [(command, "\n".join(out) if any(o.strip() for o in out) else None) for command, out in steps]


def _normalized_output(text: str, cwd: Path, source: Path) -> str:
    """The repository (or its copy) prints as /path/to/aegis; paths in an empty work folder print relative to it."""
    text = text.replace(str(source), "/path/to/aegis").replace(str(cwd) + "/", "")
    return "\n".join(line for line in text.splitlines() if not line.startswith("pybullet build time:"))


def _canonical(text: str, block: Block) -> list[str]:
    labels = block.options.get("timings")
    lines = []
    for line in text.splitlines():
        line = BOX_RUN.sub(lambda m: m.group(0)[0], " ".join(line.split()))
        line = CELL_EDGE.sub(r"\1", line)
        if not line:
            continue
        if labels is not None and (labels == "" or any(label in line for label in _listed(labels))):
            line = NUMBER.sub(lambda m: "N" + (".%s" % ("d" * len(m.group(1))) if m.group(1) else ""), line)
            line = re.sub(r"\b(?:NOT|not) met\b", "met", line)  # a benchmark target's verdict follows its timing
        lines.append(line)
    return lines


def _compare(block: Block, command: str, expected: str, actual: str) -> None:
    """Equal as words: line breaks and runs of spaces do not count (a terminal wraps a long path where it likes)."""
    want, got = _canonical(expected, block), _canonical(actual, block)
    if " ".join(want).split() != " ".join(got).split():
        diff = "\n".join(difflib.unified_diff(want, got, "on the page", "printed now", lineterm="", n=1))
        raise AssertionError(f"{block.id}: `{command}` prints something else than the page shows:\n{diff}")


# --- links ---------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _anchors(page: Path) -> set[str]:
    text = page.read_text()
    ids = set(re.findall(r'<a id="([^"]+)"', text))
    counts: dict[str, int] = {}
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and not in_fence:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower().replace("`", "")).replace(" ", "-")
            ids.add(slug if slug not in counts else f"{slug}-{counts[slug]}")
            counts[slug] = counts.get(slug, 0) + 1
    return ids


def _links() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        kept, in_fence = [], False
        for line in page.read_text().splitlines():
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
            elif not in_fence:
                kept.append(line)
        text = re.sub(r"(`+).+?\1", "", "\n".join(kept))
        found += [(page, target) for target in LINK.findall(text) if not re.match(r"^[a-z]+:", target)]
    return found


@pytest.mark.parametrize("page,target", _links(), ids=lambda v: v if isinstance(v, str) else v.name)
def test_relative_links_resolve(page: Path, target: str) -> None:
    path_part, _, anchor = target.partition("#")
    resolved = (page.parent / path_part).resolve() if path_part else page
    assert resolved.exists(), f"{page.relative_to(ROOT)}: link {target} points at nothing"
    if anchor and resolved.suffix == ".md":
        assert anchor in _anchors(resolved), f"{page.relative_to(ROOT)}: link {target}: no such heading or anchor"


def test_readme_links_every_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in PAGES[1:] if f"docs/{p.name}" not in readme]
    assert not missing, f"README.md does not link these docs: {missing}"


def test_readme_stays_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 200, f"README.md has {lines} lines: move detail into docs/"


def test_the_two_commands_are_what_the_readme_says() -> None:
    """README's `make sim` and `make test`: the Makefile targets run what the README says they run."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^sim: \$\(STAMP\)\n\t\$\(BIN\)/aegis sim --out runs/sim$", makefile, re.MULTILINE)
    assert re.search(r"^test: \$\(STAMP\)\n\t\$\(BIN\)/python -m pytest -m \"slow or not slow\" -q -n auto --dist loadgroup$", makefile, re.MULTILINE)
    readme = (ROOT / "README.md").read_text()
    assert "make sim" in readme and "make test" in readme and "$ aegis sim --out runs/sim" in readme
