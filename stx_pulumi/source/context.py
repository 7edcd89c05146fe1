"""What stx-pulumi reads from an app folder: Dockerfile facts, .dockerignore and the image tag.

This is the only module that reads the app's files. `inspect_source` returns plain facts; the
spec module decides what they mean.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathspec

from stx_pulumi.errors import InputError
from stx_pulumi.model.facts import SourceFacts
from stx_pulumi.source.dockerfile import read_dockerfile

GIT_TIMEOUT_S = 10

# Files StreamTeX uses for deploy secrets and passwords: they must never ship in an image.
SECRET_FILES = (".env", ".stx-deploy.env", ".stx-passwords.toml")



def inspect_source(path: Path, folders: Sequence[str] = ()) -> SourceFacts:
    """Read everything the spec needs from the app folder at `path` (and each FOLDER in it)."""
    path = path.resolve()
    if not path.is_dir():
        return SourceFacts(path=path, exists=False)
    dockerfile = path / "Dockerfile"
    if not dockerfile.is_file():
        return SourceFacts(path=path, exists=True, built_from=_dockerfile_above(path))
    facts = read_dockerfile(dockerfile.read_text(encoding="utf-8", errors="replace"))
    ignore = dockerignore_spec(path)
    scan = scan_context(path, ignore)
    return SourceFacts(
        path=path,
        exists=True,
        has_dockerfile=True,
        dockerfile_serve_mode=facts.serve_mode,
        exposed_ports=facts.exposed,
        has_nginx=facts.has_nginx,
        is_streamtex=(path / "book.py").is_file(),
        copies_uv_lock=facts.copies_uv_lock,
        has_uv_lock=(path / "uv.lock").is_file(),
        has_uv=shutil.which("uv") is not None,
        unignored_secret_files=scan.secrets,
        heavy_folders=scan.heavy,
        context_bytes=scan.total_bytes,
        largest_folders=scan.largest,
        image_tag=image_tag(path, scan),
        copies_context=facts.copies_context_to is not None,
        copied=facts.copied,
        books=tuple((folder, _folder_state(path, folder, ignore)) for folder in folders),
        special_files=scan.special,
        escaping_links=scan.escaping,
    )


def _folder_state(path: Path, folder: str, ignore: pathspec.PathSpec[Any]) -> str:
    target = (path / folder).resolve()
    if folder.startswith("/") or ".." in Path(folder).parts or not (
            target == path or path in target.parents):
        return "outside"
    if not (target / "book.py").is_file():
        return "no-book"
    inside = (target / "book.py").relative_to(path).as_posix()
    return "ignored" if ignore.match_file(inside) else "ok"


def _dockerfile_above(path: Path) -> Path | None:
    """The nearest folder above `path` with a Dockerfile, up to the repository's root (the
    folder holding .git), else at most three levels up: the root of a repository of books."""
    if (path / ".git").exists():
        return None
    in_repo = any((folder / ".git").exists() for folder in path.parents)
    for level, folder in enumerate(path.parents):
        if (folder / "Dockerfile").is_file():
            return folder
        if (folder / ".git").exists() or (not in_repo and level >= 2):
            return None
    return None


def dockerignore_spec(path: Path) -> pathspec.PathSpec[Any]:
    """The app's `.dockerignore` as a matcher of paths relative to the build context.

    Docker anchors every pattern at the context root, so each one is anchored before it is
    handed to pathspec's gitignore matcher (which would otherwise match `foo` at any depth).
    """
    file = path / ".dockerignore"
    try:
        lines = file.read_text(encoding="utf-8").splitlines() if file.is_file() else []
    except UnicodeDecodeError as err:
        raise InputError(f"{file}: not UTF-8 text (byte {err.start} is "
                         f"{err.object[err.start]:#04x})") from None
    return dockerignore_spec_of(lines)


def dockerignore_spec_of(lines: Sequence[str]) -> pathspec.PathSpec[Any]:
    """.dockerignore lines as a matcher (each pattern anchored at the context root)."""
    anchored = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = "/" + pattern.lstrip("/").removeprefix("./")
        anchored.append(("!" if negate else "") + pattern)
    return pathspec.GitIgnoreSpec.from_lines(anchored)


# A StreamTeX app's .dockerignore: StreamTeX's own (`stx deploy docker` writes it:
# streamtex/cli/deploy_cmd.py, generate_dockerignore) and the caches a `stx project new` app's
# .gitignore lists. Nothing the generated Dockerfile COPYs (.stx-version, pyproject.toml,
# uv.lock, book.py, blocks/, static/, .streamlit/, nginx.conf, entrypoint.sh) is left out.
STREAMTEX_DOCKERIGNORE = (*SECRET_FILES, ".git", ".venv", "**/__pycache__", "**/*.pyc",
                          ".stx_cache", ".ruff_cache", ".pytest_cache", "node_modules", ".claude")


def missing_dockerignore(path: Path) -> tuple[str, ...]:
    """What a StreamTeX .dockerignore would leave out of an app folder that has a Dockerfile and
    no .dockerignore (its top-level names); () when it has one, or nothing to leave out."""
    path = path.resolve()
    if not (path / "Dockerfile").is_file() or (path / ".dockerignore").exists():
        return ()
    ignore = dockerignore_spec_of(STREAMTEX_DOCKERIGNORE)
    try:
        names = sorted(entry.name for entry in path.iterdir())
    except OSError:
        return ()
    return tuple(name for name in names if ignore.match_file(name)
                 or ignore.match_file(name + "/"))


def write_dockerignore(path: Path, extra: Sequence[str] = ()) -> Path:
    """Write a StreamTeX app's .dockerignore in `path` (`extra`: more entries, such as a
    workspace's own files); never over an existing one."""
    file = path / ".dockerignore"
    lines = ["# Written by stx-pulumi for a StreamTeX app: secrets, environments and caches",
             "# never go into the image nor into a cloud build's upload.",
             *STREAMTEX_DOCKERIGNORE, *(x for x in extra if x not in STREAMTEX_DOCKERIGNORE)]
    with file.open("x", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return file


# Folders that never belong in an image: their size is reported and they never count in the
# content tag (a host .venv's .pyc churn would change the tag, rebuild and roll a revision).
HEAVY_FOLDERS = frozenset({".venv", "venv", "node_modules", "__pycache__", ".git",
                           ".pulumi-state"})
KEY_FILE_MAX = 64 * 1024


@dataclass(frozen=True)
class ContextScan:
    """One walk of the Docker build context, through its .dockerignore."""

    files: tuple[str, ...]                     # what Docker sends, heavy folders left out
    secrets: tuple[str, ...] = ()              # secret files and service-account keys
    heavy: tuple[tuple[str, int], ...] = ()    # (folder, bytes) of heavy folders it holds
    total_bytes: int = 0
    largest: tuple[tuple[str, int], ...] = ()  # the three largest top-level folders
    special: tuple[str, ...] = ()  # FIFOs, sockets, devices: never read (a FIFO would hang)
    escaping: tuple[tuple[str, str], ...] = ()  # symlinks pointing out of the context


def scan_context(root: Path, ignore: pathspec.PathSpec[Any]) -> ContextScan:
    """Every file Docker would send, and what should not be among them. Only regular files
    and symlinks are sent; a symlink is sent as a link (its target is never read)."""
    files, secrets, heavy, special, escaping = [], [], [], [], []
    total, by_top = 0, dict[str, int]()
    negation = _has_negation(ignore)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        # An excluded folder may still hold re-included files (`!`): prune only without them.
        if not negation:
            dirnames[:] = [d for d in dirnames if not ignore.match_file(prefix + d + "/")]
        for name in [d for d in dirnames if d in HEAVY_FOLDERS]:
            dirnames.remove(name)
            if ignore.match_file(prefix + name + "/"):
                continue  # left out by .dockerignore (a pattern elsewhere re-includes files)
            size = _tree_size(Path(dirpath) / name)
            heavy.append((prefix + name, size))
            total += size
            top = (prefix + name).split("/", 1)[0]
            by_top[top] = by_top.get(top, 0) + size  # the largest folders name it too
        for name in filenames:
            rel = prefix + name
            if ignore.match_file(rel):
                continue
            kind = _kind(root, Path(dirpath) / name)
            if kind == "special":
                special.append(rel)
                continue
            if kind.startswith("escaping:"):
                escaping.append((rel, kind.removeprefix("escaping:")))
                continue
            size = _size(Path(dirpath) / name)
            total += size
            top = rel.split("/", 1)[0] if "/" in rel else "."
            by_top[top] = by_top.get(top, 0) + size
            files.append(rel)
            if name in SECRET_FILES or (kind == "file" and name.endswith(".json") and (
                    size <= KEY_FILE_MAX) and _is_service_account_key(Path(dirpath) / name)):
                secrets.append(rel)
    largest = sorted(by_top.items(), key=lambda item: -item[1])[:3]
    return ContextScan(tuple(sorted(files)), tuple(sorted(secrets)), tuple(heavy), total,
                       tuple(largest), tuple(sorted(special)), tuple(sorted(escaping)))


def _kind(root: Path, file: Path) -> str:
    """"file", "link" (a symlink inside the context, or dangling), "escaping:<target>" (a
    symlink out of the context) or "special" (a FIFO, socket or device)."""
    import stat

    try:
        mode = file.lstat().st_mode
    except OSError:
        return "special"
    if stat.S_ISLNK(mode):
        target = os.readlink(file)
        resolved = (file.parent / target).resolve()
        if resolved.exists() and resolved != root and root not in resolved.parents:
            return f"escaping:{target}"
        return "link"
    return "file" if stat.S_ISREG(mode) else "special"


def docker_context(root: Path) -> list[str]:
    """Every file Docker sends as the build context of `root`: the .dockerignore applied as
    for the content tag, and the Dockerfile and .dockerignore always (Docker sends them even
    when ignored, it needs them)."""
    ignore = dockerignore_spec(root)
    negation = _has_negation(ignore)
    files = {name for name in ("Dockerfile", ".dockerignore") if (root / name).is_file()}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if not negation:
            dirnames[:] = [d for d in dirnames if not ignore.match_file(prefix + d + "/")]
        files.update(prefix + name for name in filenames
                     if not ignore.match_file(prefix + name)
                     and _kind(root, Path(dirpath) / name) in ("file", "link"))
    return sorted(files)


def _is_service_account_key(file: Path) -> bool:
    try:
        data = json.loads(file.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("type") == "service_account" and bool(
        data.get("private_key"))


def _size(file: Path) -> int:
    try:
        return file.lstat().st_size
    except OSError:
        return 0


def _tree_size(folder: Path) -> int:
    return sum(_size(Path(d) / f) for d, _, names in os.walk(folder) for f in names)


def image_tag(path: Path, scan: ContextScan | None = None) -> str:
    """`sha-<7 hex>` of the folder's last commit when it is clean in git, else `src-<12 hex>`."""
    commit = _clean_git_commit(path)
    if commit:
        return f"sha-{commit[:7]}"
    scan = scan or scan_context(path, dockerignore_spec(path))
    return f"src-{content_hash(path, scan)[:12]}"


def content_hash(path: Path, scan: ContextScan) -> str:
    """SHA-256 over the relative paths and bytes of every file Docker would send."""
    digest = hashlib.sha256()
    for rel in scan.files:
        digest.update(rel.encode() + b"\0")
        file = path / rel
        data = os.readlink(file).encode() if file.is_symlink() else file.read_bytes()
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _has_negation(ignore: pathspec.PathSpec[Any]) -> bool:
    return any(getattr(p, "include", None) is False for p in ignore.patterns)


def has_uncommitted_changes(path: Path) -> bool:
    """True when `path` is in a git repository and has changes not yet committed."""
    try:
        status = _git(path, "status", "--porcelain", "--", ".")
    except OSError:
        return False
    return bool(status and status.strip())


def _clean_git_commit(path: Path) -> str | None:
    """The last commit touching `path`, or None when it is not in git or has local changes."""
    try:
        status = _git(path, "status", "--porcelain", "--", ".")
        if status is None or status.strip():
            return None
        return _git(path, "log", "-1", "--format=%H", "--", ".") or None
    except OSError:
        return None


def in_git_work_tree(path: Path) -> bool:
    """A `.git` at or above `path`: only then is git asked (outside one, no subprocess)."""
    return any((folder / ".git").exists() for folder in (path, *path.parents))


def _git(path: Path, *args: str) -> str | None:
    if not in_git_work_tree(path.resolve()):
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            timeout=GIT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:  # a hung git never hangs `plan`: no commit tag then
        return None
    return result.stdout.strip() if result.returncode == 0 else None
