"""The server probe: tests a FHIR server's ImagingStudy search and validates what it returns.

It reads the server's CapabilityStatement, searches from a known patient (or study identifier),
harvests real values from the studies that come back, searches again with each value and its
variants, and judges every answer: the Bundle (type, total, links, fullUrl, search.mode), every
match against the criteria by the spec's matching rules, GET against POST, paging, required and
unknown parameters. Every returned ImagingStudy is validated with the product's own rules. Each
check becomes a case of a RunResult, so the validate reports present it.

An entry point over the Python API (validator.api); it talks to servers only through the shared
read-only client (validator.net.client).
"""

from validator.probe.runner import ProbeOptions, probe

__all__ = ["ProbeOptions", "probe"]
