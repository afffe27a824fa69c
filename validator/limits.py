"""Input limits: defaults no real payload comes near, which refuse what would exhaust time or
memory (a 60 MB string, 200,000 levels of nesting) while a study of 300,000 instances passes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 512 * 1024 * 1024  # one input file
    max_depth: int = 64  # JSON nesting; an ImagingStudy with nested extensions stays under 20
    max_string: int = 32 * 1024 * 1024  # one JSON string (a narrative or an attachment's data)
    max_issues: int = 500  # findings listed per resource; the rest are counted (a flood helps no reader)


DEFAULT = Limits()
