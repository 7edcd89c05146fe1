"""The README shows real output: every generated block is what tests/readme.py makes now, and
no machine path leaks in. (`python tests/readme.py` rewrites the blocks.)"""

from __future__ import annotations

import difflib
import re

import pytest
import readme

pytestmark = pytest.mark.readme


@pytest.mark.parametrize("name", sorted(readme.BLOCKS))
def test_readme_outputs_are_what_the_commands_print_now(name: str) -> None:
    """One block at a time, so the blocks are made in parallel."""
    current = readme.README.read_text(encoding="utf-8")
    fresh = readme.render(current, only=name)
    diff = "".join(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True)))
    assert not diff, f"README.md drifted: run `python tests/readme.py` and commit it\n{diff}"


@pytest.mark.parametrize("name", ["events", "fleet"])
def test_the_blocks_with_dates_are_the_same_a_year_ahead(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their dates are relative to the README's clock: made a year later they say the same,
    a year later (nothing depends on the day the README is made)."""
    later = readme.NOW.replace(year=readme.NOW.year + 1)
    monkeypatch.setattr(readme, "NOW", later)
    current = readme.README.read_text(encoding="utf-8")
    fresh = readme.render(current, only=name).replace(str(later.year), str(later.year - 1))
    assert fresh == current


def test_every_block_is_in_the_readme() -> None:
    text = readme.README.read_text(encoding="utf-8")
    assert {m.group(2) for m in readme.BLOCK.finditer(text)} == set(readme.BLOCKS)


def test_readme_shows_no_machine_path_and_labels_stand_in_output() -> None:
    text = readme.README.read_text(encoding="utf-8")
    assert not re.search(r"(/work/|/root/|/tmp/[\w-]+|/home/\w+/)", text)
    for name in ("deploy", "doctor", "team"):
        before = text[:text.index(f"<!-- generated: {name} -->")]
        assert "stand-in" in before.rsplit("\n\n", 2)[-2], name  # said just above the block


def test_every_exit_code_is_in_the_readme() -> None:
    from stx_pulumi.errors import EXIT_CODES, StxError

    text = readme.README.read_text(encoding="utf-8")
    codes = {cls.exit_code for cls in [StxError, *_subclasses(StxError)]}
    assert codes <= set(EXIT_CODES) and all(f"| {c} |" in text for c in EXIT_CODES)


def _subclasses(cls: type) -> list[type]:
    return [s for c in cls.__subclasses__() for s in (c, *_subclasses(c))]
