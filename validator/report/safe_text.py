"""Payload text made harmless for each kind of output.

Any string of a payload or a file name can reach a report: a value quoted in a message, an id, a
key, a file name that is not UTF-8 (Python keeps its bytes as lone surrogates). In a terminal, a
control character could move the cursor, recolour or rewrite what is shown (ESC, CR, BEL) and a
bidirectional override could reorder it; in XML, a control character makes the document
unreadable; a lone surrogate cannot be written as UTF-8 at all. Each output escapes what it
cannot carry, as visible text (\\x1b, \\n, \\udcff), so the finding stays readable.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# C0 and C1 controls, DEL, lone surrogates, and the characters that reorder or break lines of a
# terminal's display (bidirectional overrides and isolates, the Unicode line separators).
_BUT_NEWLINE = "\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_TERMINAL_UNSAFE = re.compile(f"[\n{_BUT_NEWLINE}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"[{_BUT_NEWLINE}]")

# What XML 1.0 does not allow in a document at all (https://www.w3.org/TR/xml/#charsets): the
# complement of its Char production (#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
# [#x10000-#x10FFFF]) among the code points a str can hold, listed as such: the negated class
# says the same but takes re ~60 million instructions to compile, 7% of a one-file run
# (tests/test_startup.py checks that the two classes agree on every code point).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8 (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: str) -> str:
    """One line of terminal output: no character that a terminal would act on rather than show."""
    return _TERMINAL_UNSAFE.sub(_visible, text)


def terminal_lines(lines: list[str]) -> str:
    """Lines of terminal output, each made harmless as `terminal` makes it and ended by a newline:
    in one search when none needs it (most lines of a report), rather than one per line."""
    text = "\n".join(lines)
    if text.count("\n") == len(lines) - 1:  # no newline inside a line
        if text.isascii():  # what is unsafe in ASCII is what str.isprintable refuses there
            if text.replace("\n", " ").isprintable():
                return text + "\n"
        elif _UNSAFE_BUT_NEWLINE.search(text) is None:
            return text + "\n"
    return "".join([terminal(line) + "\n" for line in lines])


def xml_text(text: str) -> str:
    """An XML 1.0 document with every character it may not hold escaped as visible text (the
    document's own markup never holds one, so the whole document can be passed)."""
    return _XML_ILLEGAL.sub(_visible, text)
