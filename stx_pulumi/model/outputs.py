"""What a stack's outputs say of where it answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def urls(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Where a stack answers: each book's URL, else the app's ("" for the app)."""
    books = outputs.get("books")
    books = books if isinstance(books, Mapping) else {}
    return {b: v.get("url") for b, v in sorted(books.items())} or (
        {"": outputs["url"]} if outputs.get("url") else {})


def url_text(outputs: Mapping[str, Any]) -> str | None:
    """Where a stack answers, on one line: its URL, or each book's (`advanced https://...,
    intro https://...`); None when it has none or they are secret."""
    text = ", ".join(f"{book} {url}".strip() for book, url in urls(outputs).items())
    return text if text and "[secret]" not in text else None
