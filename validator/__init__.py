"""imaging-validator: conformance validation of FHIR ImagingStudy payloads."""

from validator.api import Validator
from validator.model import VERSION, Issue, ResourceResult, RunResult, Severity

__all__ = ["Issue", "ResourceResult", "RunResult", "Severity", "Validator"]
__version__ = VERSION
