"""Stage 3, select: a resource in, what it is validated as out.

In: a parsed resource and the options of the run (--fhir-version, --profile). Out: a Selection
(selection.py): the FHIR version and why (asked for, a declared profile's version, or the shape
of the payload, read from the version markers of rules/versions.yaml by version.py), the conflicts
with the asked-for version, the profiles that apply, and the notes on profiles that cannot apply.
Decided once per resource; later stages only read it.
"""
