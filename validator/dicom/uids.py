"""DICOM UID syntax (PS3.5 section 9.1)."""

from __future__ import annotations

import re

MAX_LENGTH = 64
# The same grammar as the loop below, in one C call: the common, valid case costs next to nothing.
VALID_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def uid_problem(uid: str) -> str | None:
    """Why `uid` is not a valid DICOM UID, or None. Components are digits separated by '.', a
    component has no leading zero unless it is the single digit 0, and the whole is at most 64
    characters."""
    if len(uid) <= MAX_LENGTH and VALID_UID.fullmatch(uid):
        return None
    if not uid:
        return "it is empty"
    if len(uid) > MAX_LENGTH:
        return f"it is {len(uid)} characters long (at most {MAX_LENGTH})"
    for part in uid.split("."):
        if part == "":
            return "it has an empty component (two dots in a row, or a dot at the start or end)"
        if not part.isascii() or not part.isdigit():
            shown = part if len(part) <= 20 else part[:17] + "..."
            return f"component {shown!r} is not made of the digits 0-9 only"
        if len(part) > 1 and part[0] == "0":
            return f"component {part!r} has a leading zero"
    return None


# What a UID may hold: digits and dots.
_DIGITS_DOTS = b"0123456789."
# A component with a leading zero, in UIDs joined by dots between dots: a component starts after a dot.
_LEADING_ZERO = re.compile(r"\.0[0-9]").search


def all_valid(uids: list[str]) -> bool:
    """Whether uid_problem() finds nothing in any of `uids` (strings; a TypeError for one that is
    not), read all at once: a few passes in C over the UIDs joined, instead of one regular
    expression match per UID (the thousands of instances of a series, the few UIDs of a small
    study, where each Python step counts)."""
    # Joined between dots, every component of every UID is one between dots: an empty UID or
    # component is two dots in a row, a UID holding another character (a newline too) is seen
    # in the whole.
    dots = "." + ".".join(uids) + "."
    return (
        dots.isascii()
        and not dots.encode().translate(None, _DIGITS_DOTS)
        and ".." not in dots
        and _LEADING_ZERO(dots) is None
        and max(map(len, uids)) <= MAX_LENGTH
    )
