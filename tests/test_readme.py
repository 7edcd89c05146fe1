"""The README and the docs show real output: every generated block is what tests/readme.py
makes now, and no machine path leaks in (`python tests/readme.py` rewrites the blocks); the
reference pages are what docs/gen.py makes from the code, and the site builds strict."""

from __future__ import annotations

import difflib
import os
import re
import sys

import pytest
import readme

sys.path.insert(0, str(readme.REPO / "docs"))

pytestmark = pytest.mark.readme


@pytest.mark.parametrize("name", sorted(readme.BLOCKS))
def test_readme_outputs_are_what_the_commands_print_now(name: str) -> None:
    """One block at a time, so the blocks are made in parallel."""
    page = readme.page_of(name)
    current = page.read_text(encoding="utf-8")
    fresh = readme.render(current, only=name)
    diff = "".join(difflib.unified_diff(readme.shape(current).splitlines(True),
                                        readme.shape(fresh).splitlines(True)))
    assert not diff, f"{page.name} drifted: run `python tests/readme.py` and commit it\n{diff}"


@pytest.mark.parametrize("name", ["events", "fleet"])
def test_the_blocks_with_dates_are_the_same_a_year_ahead(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their dates are relative to the README's clock: made a year later they say the same,
    a year later (nothing depends on the day the README is made)."""
    later = readme.NOW.replace(year=readme.NOW.year + 1)
    monkeypatch.setattr(readme, "NOW", later)
    current = readme.page_of(name).read_text(encoding="utf-8")
    fresh = readme.render(current, only=name).replace(str(later.year), str(later.year - 1))
    assert fresh == current


def test_every_block_is_shown_once() -> None:
    names = [m.group(2) for page in readme.PAGES
             for m in readme.BLOCK.finditer(page.read_text(encoding="utf-8"))]
    assert sorted(names) == sorted(readme.BLOCKS)


def test_pages_show_no_machine_path_and_label_stand_in_output() -> None:
    for page in readme.PAGES:
        assert not re.search(r"(/work/|/root/|/tmp/[\w-]+|/home/\w+/)", page.read_text(
            encoding="utf-8")), page.name
    for name in ("up", "deploy", "doctor", "team"):
        text = readme.page_of(name).read_text(encoding="utf-8")
        before = text[:text.index(f"<!-- generated: {name} -->")]
        assert "stand-in" in before.rsplit("\n\n", 2)[-2], name  # said just above the block


def test_the_readme_is_a_front_door() -> None:
    """At most 200 lines, starting with the two commands (install and plan; the tests)."""
    text = readme.README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    first = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first is not None
    commands = [line for line in first.group(1).splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2 and "plan examples/hello-course" in commands[0]
    ci = (readme.REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].split("&& ", 1)[1] in ci  # the tests as CI runs them


def test_reference_pages_are_made_from_the_code() -> None:
    import gen

    found = gen.drift()
    assert not found, f"docs/reference drifted: run `python docs/gen.py`\n{found}"


def test_the_docs_build_strict() -> None:
    """mkdocs --strict: a broken link or anchor in any page fails the build."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(readme.REPO / "site")], cwd=readme.REPO, capture_output=True,
                          text=True, check=False, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr


def test_every_exit_code_is_in_the_docs() -> None:
    from stx_pulumi.errors import EXIT_CODES, StxError

    text = (readme.REPO / "docs" / "reference" / "exit-codes.md").read_text(encoding="utf-8")
    codes = {cls.exit_code for cls in [StxError, *_subclasses(StxError)]}
    assert codes <= set(EXIT_CODES) and all(f"| {c} |" in text for c in EXIT_CODES)


def _subclasses(cls: type) -> list[type]:
    return [s for c in cls.__subclasses__() for s in (c, *_subclasses(c))]
