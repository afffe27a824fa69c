"""imaging-validator: conformance validation of FHIR ImagingStudy payloads."""

from validator.evaluate.code_cache import classes_code_cached

# The methods of the package's dataclasses are written and compiled as its modules are imported:
# compiled once across processes (evaluate/code_cache.py).
with classes_code_cached("validator"):
    from validator.api import Validator
    from validator.model import VERSION, Issue, ResourceResult, RunResult, Severity

__all__ = ["Issue", "ResourceResult", "RunResult", "Severity", "Validator"]
__version__ = VERSION
