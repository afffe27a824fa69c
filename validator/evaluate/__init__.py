"""Stage 4, evaluate: a resource, its Selection and the plan in, raw findings out.

base_rules.py runs the base rules in one pass of Python generated from the plan per structure
(check_source.py): each check kind (JSON form, datatype, format, binding, target, cardinality,
invariant) is written once, reports only where it fails, and "clean" is "reported nothing".
walk.py adds the selected profiles (profile_check.py, slicing.py, bindings.py) on top; dicom/
checks DICOM facts (UIDs, SOP Classes, modalities, counts, WADO-RS endpoints, and the DICOM
files of --dicom). Findings are RawIssues (rule, pointer inside the resource, message); cross.py
holds the checks that wait for other inputs of the run.
"""
