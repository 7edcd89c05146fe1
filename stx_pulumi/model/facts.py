"""What the spec knows of an app folder: facts read from it (by `source`), never the folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceFacts:
    """Facts read from an app folder (the Docker build context)."""

    path: Path
    exists: bool
    has_dockerfile: bool = False
    dockerfile_serve_mode: str | None = None
    exposed_ports: frozenset[int] = frozenset()
    has_nginx: bool = False
    is_streamtex: bool = False
    copies_uv_lock: bool = False
    has_uv_lock: bool = False
    has_uv: bool = True  # `uv` on this machine's PATH (what makes a uv.lock)
    built_from: Path | None = None  # no Dockerfile here: the folder above that has one
    unignored_secret_files: tuple[str, ...] = ()  # secret files and keys the image would hold
    heavy_folders: tuple[tuple[str, int], ...] = ()  # (folder, bytes) in the context, untagged
    context_bytes: int = 0
    largest_folders: tuple[tuple[str, int], ...] = ()  # the three largest top-level folders
    image_tag: str | None = None
    copies_context: bool = False         # the Dockerfile COPYs the build context (`COPY . DEST`)
    copied: tuple[str, ...] = ()         # what its final stage COPYs from the context
    books: tuple[tuple[str, str], ...] = ()  # FOLDER → "ok", "outside", "no-book", "ignored"
    special_files: tuple[str, ...] = ()  # FIFOs, sockets, devices: skipped
    escaping_links: tuple[tuple[str, str], ...] = ()  # (symlink, its target) out of the context

    def copies(self, folder: str) -> bool:
        """Whether the image holds FOLDER: the whole context is copied, or a folder holding it
        (`COPY manuals/ ./manuals/` holds manuals/intro), or it matches a copied pattern."""
        from fnmatch import fnmatchcase

        parts = folder.strip("/").split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        return self.copies_context or any(
            src == "." or any(fnmatchcase(prefix, src) for prefix in prefixes)
            for src in self.copied)

    def folder_state(self, folder: str) -> str:
        """What was found at FOLDER: "ok", "outside" (the build context), "no-book", or
        "ignored" (its book.py is excluded by .dockerignore)."""
        return dict(self.books).get(folder, "ok")
