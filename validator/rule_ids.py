"""Ids of the rules implemented as Python checks (declared, with severity and text, in rules/core.yaml
and rules/dicom/), and the decorator that registers the function implementing each.

The ids are constants so that a typo is a NameError, not a rule that never fires; `@implements`
ties a rule to the code that reports it, for the rule table (run/rule_table.py), which refuses a
declared rule nobody implements and an implementation nobody declares.
"""

from collections.abc import Callable
from typing import TypeVar

_F = TypeVar("_F", bound=Callable)

# rule id -> the functions that report it (module.qualified name)
IMPLEMENTED_BY: dict[str, list[str]] = {}


def implements(*rule_ids: str) -> Callable[[_F], _F]:
    """Register the decorated function as (one of) the Python check(s) reporting these rules."""

    def register(fn: _F) -> _F:
        name = f"{fn.__module__}.{fn.__qualname__}"
        for rid in rule_ids:
            where = IMPLEMENTED_BY.setdefault(rid, [])
            if name not in where:
                where.append(name)
        return fn

    return register


UNREADABLE = "input:unreadable"
MALFORMED_JSON = "input:malformed-json"
MALFORMED_XML = "input:malformed-xml"
NOT_A_RESOURCE = "input:not-a-resource"
BYTE_ORDER_MARK = "input:byte-order-mark"
NO_RESOURCE = "input:no-resource"
TOO_LARGE = "input:too-large"
TOO_DEEP = "input:too-deep"
STRING_TOO_LONG = "input:string-too-long"
XML_UNKNOWN_ATTRIBUTE = "xml:unknown-attribute"
XML_UNKNOWN_ELEMENT = "xml:unknown-element"
XML_REPEATED_ELEMENT = "xml:repeated-element"
XML_EMPTY_ELEMENT = "xml:empty-element"

MISSING_RESOURCE_TYPE = "json:missing-resourceType"
UNKNOWN_RESOURCE_TYPE = "json:unknown-resource-type"
DUPLICATE_KEY = "json:duplicate-key"
NULL = "json:null"
EMPTY_ARRAY = "json:empty-array"
EMPTY_OBJECT = "json:empty-object"
EMPTY_STRING = "json:empty-string"
ARRAY_EXPECTED = "json:array-expected"
ARRAY_UNEXPECTED = "json:array-unexpected"
UNKNOWN_PROPERTY = "json:unknown-property"
COMPANION = "json:companion"

UNSUPPORTED_RESOURCE_TYPE = "engine:unsupported-resource-type"
INVARIANT_NOT_EVALUATED = "engine:invariant-not-evaluated"
BINDING_NOT_CHECKED = "engine:binding-not-checked"
UNKNOWN_PROFILE = "engine:unknown-profile"
TARGET_NOT_CHECKED = "engine:target-not-checked"
PROFILE_NOT_CHECKED = "engine:profile-not-checked"
VERSION_MISMATCH = "engine:version-mismatch"
MIGRATION_HINT = "engine:migration-hint"
INTERNAL_ERROR = "engine:internal-error"
TOO_MANY_ISSUES = "engine:too-many-issues"

CODE_SYSTEM_PAGE = "coding:system-is-a-page"

# The DICOM pack (rules/dicom/dicom.yaml)
UID_SYNTAX = "dicom:uid-syntax"
STUDY_UID_URN = "dicom:study-uid-urn"
SERIES_UID_UNIQUE = "dicom:series-uid-unique"
INSTANCE_UID_UNIQUE = "dicom:instance-uid-unique"
UID_LEVEL_REUSE = "dicom:uid-level-reuse"
SOP_CLASS_CODING = "dicom:sop-class-coding"
SOP_CLASS_KNOWN = "dicom:sop-class-known"
SOP_CLASS_RETIRED = "dicom:sop-class-retired"
SOP_CLASS_PRIVATE = "dicom:sop-class-private"
SOP_CLASS_MODALITY = "dicom:sop-class-modality"
MODALITY_SYSTEM = "dicom:modality-system"
MODALITY_CODE = "dicom:modality-code"
MODALITY_CONSISTENCY = "dicom:modality-consistency"
NUMBER_OF_SERIES = "dicom:number-of-series"
NUMBER_OF_INSTANCES = "dicom:number-of-instances"
SERIES_NUMBER_OF_INSTANCES = "dicom:series-number-of-instances"
SERIES_NUMBER_UNIQUE = "dicom:series-number-unique"
INSTANCE_NUMBER_UNIQUE = "dicom:instance-number-unique"
WADO_STUDY = "dicom:wado-study"
WADO_SERIES = "dicom:wado-series"
FILES_UNREADABLE = "dicom-files:unreadable"
FILES_STUDY_NOT_FOUND = "dicom-files:study-not-found"
FILES_SERIES_MISSING = "dicom-files:series-missing"
FILES_SERIES_EXTRA = "dicom-files:series-extra"
FILES_INSTANCE_MISSING = "dicom-files:instance-missing"
FILES_INSTANCE_EXTRA = "dicom-files:instance-extra"
FILES_SOP_CLASS = "dicom-files:sop-class"
FILES_MODALITY = "dicom-files:modality"
FILES_NUMBER = "dicom-files:number"
FILES_STARTED = "dicom-files:started"
FILES_COUNTS = "dicom-files:counts"
# --dicomweb URL: the cross-check above against a DICOMweb server, and its WADO-RS endpoints probed
DICOMWEB_UNAVAILABLE = "dicomweb:unavailable"
DICOMWEB_ENDPOINT_NOT_SERVED = "dicomweb:endpoint-not-served"
DICOMWEB_ENDPOINT_CONTENT_TYPE = "dicomweb:endpoint-content-type"
DICOMWEB_ENDPOINT_WRONG_STUDY = "dicomweb:endpoint-wrong-study"
DICOMWEB_ENDPOINT_NOT_CHECKED = "dicomweb:endpoint-not-checked"
