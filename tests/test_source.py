"""The image tag: the folder's last commit when clean in git, else a content hash of the build
context that honours .dockerignore."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stx_pulumi.source import dockerignore_spec, image_tag, inspect_source


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c",
                           "user.email=t@example.org", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_same_content_same_tag(app_dir: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    twin.mkdir()
    for f in app_dir.rglob("*"):
        if f.is_file():
            (twin / f.relative_to(app_dir)).parent.mkdir(parents=True, exist_ok=True)
            (twin / f.relative_to(app_dir)).write_bytes(f.read_bytes())
    tag = image_tag(app_dir)
    assert tag.startswith("src-") and len(tag) == 16
    assert image_tag(twin) == tag


def test_one_byte_changes_the_tag(app_dir: Path) -> None:
    before = image_tag(app_dir)
    book = app_dir / "book.py"
    book.write_bytes(book.read_bytes() + b" ")
    assert image_tag(app_dir) != before


def test_new_file_changes_the_tag(app_dir: Path) -> None:
    before = image_tag(app_dir)
    (app_dir / "blocks").mkdir()
    (app_dir / "blocks" / "intro.py").write_text("x = 1\n")
    assert image_tag(app_dir) != before


def test_dockerignored_change_keeps_the_tag(app_dir: Path) -> None:
    before = image_tag(app_dir)
    (app_dir / ".env").write_text("SECRET=1\n")
    (app_dir / "__pycache__").mkdir()
    (app_dir / "__pycache__" / "book.cpython-311.pyc").write_bytes(b"\0\1")
    assert image_tag(app_dir) == before


def test_dockerignore_patterns_are_anchored_like_docker(app_dir: Path) -> None:
    (app_dir / ".dockerignore").write_text(".env\nsecrets/**\n!secrets/public.txt\n")
    spec = dockerignore_spec(app_dir)
    assert spec.match_file(".env")
    assert not spec.match_file("sub/.env")  # Docker anchors patterns at the context root
    assert spec.match_file("secrets/key.pem")
    assert not spec.match_file("secrets/public.txt")


def test_git_folder_uses_its_last_commit(tmp_path: Path, app_dir: Path) -> None:
    repo = tmp_path / "apps"
    git(repo, "init", "-q")
    (repo / "other").mkdir()
    (repo / "other" / "README").write_text("other app\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "both apps")
    commit = git(repo, "log", "-1", "--format=%H", "--", "hello-course")
    assert image_tag(app_dir) == f"sha-{commit[:7]}"

    (repo / "other" / "README").write_text("changed elsewhere\n")
    git(repo, "commit", "-qam", "unrelated change")
    assert image_tag(app_dir) == f"sha-{commit[:7]}"  # a commit elsewhere changes nothing

    (app_dir / "book.py").write_text("# edited\n")
    dirty = image_tag(app_dir)
    assert dirty.startswith("src-")  # uncommitted changes: content hash
    git(repo, "commit", "-qam", "edit the course")
    new = git(repo, "log", "-1", "--format=%H")
    assert image_tag(app_dir) == f"sha-{new[:7]}"


def test_inspect_source_reads_the_dockerfile(app_dir: Path) -> None:
    facts = inspect_source(app_dir)
    assert facts.has_dockerfile and facts.is_streamtex
    assert facts.dockerfile_serve_mode == "dual"
    assert facts.copies_uv_lock and facts.has_uv_lock
    assert facts.unignored_secret_files == ()
    dockerfile = app_dir / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('STX_SERVE_MODE="dual"',
                                                         "STX_SERVE_MODE=static-only"))
    assert inspect_source(app_dir).dockerfile_serve_mode == "static-only"


def _spec(app_dir: Path) -> Any:
    from stx_pulumi.model.build import build_spec

    return build_spec({"gcp:project": "course-project-1"}, app="hello-course", env="dev",
                      source=inspect_source(app_dir))


def test_secret_files_at_any_depth_and_keys_by_content_are_refused(app_dir: Path) -> None:
    from stx_pulumi.errors import SpecError

    (app_dir / "modules" / "week1").mkdir(parents=True)
    (app_dir / "modules" / "week1" / ".env").write_text("TOKEN=x\n")
    (app_dir / "keys").mkdir()
    (app_dir / "keys" / "deployer.json").write_text(json.dumps(
        {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\n..."}))
    (app_dir / "keys" / "settings.json").write_text('{"type": "settings"}')
    with pytest.raises(SpecError) as err:
        _spec(app_dir)
    problems = err.value.problems
    assert any("modules/week1/.env would ship" in p and "`**/.env`" in p for p in problems)
    assert any("keys/deployer.json would ship" in p for p in problems)
    assert not any("settings.json" in p for p in problems)
    (app_dir / ".dockerignore").write_text(
        (app_dir / ".dockerignore").read_text() + "**/.env\nkeys/deployer.json\n")
    assert _spec(app_dir).app == "hello-course"


def test_heavy_folders_warn_with_their_size_and_never_change_the_tag(app_dir: Path) -> None:
    (app_dir / "node_modules" / "lib").mkdir(parents=True)  # not in its .dockerignore
    (app_dir / "node_modules" / "lib" / "big.js").write_bytes(b"x" * 3_000_000)
    (app_dir / ".pulumi-state").mkdir()
    (app_dir / ".pulumi-state" / "passphrase").write_text("secret")
    spec = _spec(app_dir)
    assert any("node_modules/ (3 MB) is in the build context" in w and "`node_modules/`" in w
               for w in spec.warnings)
    assert any(w.startswith(".pulumi-state/") for w in spec.warnings)
    (app_dir / "node_modules" / "lib" / "churn.js").write_bytes(b"new build")
    assert _spec(app_dir).image_tag == spec.image_tag


def test_a_huge_context_names_its_largest_folders(app_dir: Path) -> None:
    (app_dir / "videos").mkdir()
    with open(app_dir / "videos" / "lecture.mp4", "wb") as video:
        video.truncate(600_000_000)  # sparse: no disk used
    warning = next(w for w in _spec(app_dir).warnings if "every build sends it all" in w)
    assert "largest: videos 600 MB" in warning


def test_the_largest_folders_count_a_heavy_folder_sent_whole(app_dir: Path) -> None:
    """A fresh app's .venv (hundreds of MB, no .dockerignore) is named first, not `.`."""
    (app_dir / ".dockerignore").unlink(missing_ok=True)
    (app_dir / ".venv" / "lib").mkdir(parents=True)
    with open(app_dir / ".venv" / "lib" / "torch.so", "wb") as lib:
        lib.truncate(503_000_000)
    warning = next(w for w in _spec(app_dir).warnings if "every build sends it all" in w)
    assert "largest: .venv 503 MB" in warning
