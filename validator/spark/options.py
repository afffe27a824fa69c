"""The options of a Spark run, shipped to every executor instead of a compiled Validator.

A Validator holds compiled rule packs and code objects that are large to send and not all
picklable; the options are a few strings and numbers. Each executor's Python worker builds the
Validator from them once and keeps it for every partition it is given afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from validator.api import Validator
from validator.limits import DEFAULT, Limits
from validator.model import Severity

_BUILT: dict[SparkOptions, Validator] = {}  # per Python worker process: built once, reused


@dataclass(frozen=True)
class SparkOptions:
    """The options `imaging-validator validate` takes that bear on findings (not on files or reports)."""

    fhir_version: str | None = None
    fail_on: Severity | None = Severity.ERROR
    profiles: tuple[str, ...] = ()
    must_support: bool = True
    dicom: bool = True
    severity: tuple[tuple[str, Severity | None], ...] = ()  # (rule id or glob, level or None: off)
    limits: Limits = field(default=DEFAULT)
    debug: bool = False

    def validator(self) -> Validator:
        """The Validator of these options, built on first use in this process. Raises as Validator does
        (unknown version, profile or rule, broken pack): the driver builds one first, so a usage error
        is found there before any executor starts."""
        built = _BUILT.get(self)
        if built is None:
            built = _BUILT[self] = Validator(self.fhir_version, self.fail_on, self.profiles, self.must_support,
                                             self.dicom, dict(self.severity), limits=self.limits,
                                             debug=self.debug)  # fmt: skip
        return built
