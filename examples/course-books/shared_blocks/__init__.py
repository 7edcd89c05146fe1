"""Blocks shared by every book of this repository."""


def course_title() -> str:
    return "Physics 101"
