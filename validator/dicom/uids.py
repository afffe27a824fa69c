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


# What a UID may hold besides digits: its dots, and the newline joining the UIDs of a list.
_UID_BYTES = b"0123456789.\n"


def all_valid(uids: list[str]) -> bool:
    """Whether uid_problem() finds nothing in any of `uids` (strings), read all at once: a few
    passes in C over the UIDs joined, instead of one regular expression match per UID (the
    thousands of instances of a series). True only if every one is valid; False may also mean
    that a valid list is not plain enough to tell (zero components in a row), then each UID is
    read apart."""
    joined = "\n".join(uids)
    if not joined.isascii() or joined.count("\n") != len(uids) - 1 or joined.encode().translate(None, _UID_BYTES):
        return False  # a UID holding a newline, or a character other than a digit or a dot
    dots = "." + joined.replace("\n", ".") + "."
    # No empty UID or component, and every component that starts with 0 is 0: each ".0" is a
    # ".0." (counted without overlaps, hence the pairs ".0.0.", which can only count fewer).
    return (
        ".." not in dots
        and dots.count(".0") == dots.count(".0.") + dots.count(".0.0.")
        and max(map(len, uids)) <= MAX_LENGTH
    )
