"""imaging-validator: conformance validation of FHIR ImagingStudy payloads."""

from .api import Validator
from .model import Issue, ResourceResult, RunResult, Severity

__all__ = ["Issue", "ResourceResult", "RunResult", "Severity", "Validator"]
__version__ = "0.1.0"
