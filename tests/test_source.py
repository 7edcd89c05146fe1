"""The image tag: the folder's last commit when clean in git, else a content hash of the build
context that honours .dockerignore."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
