"""Stage 4, evaluate: a resource, its Selection and the plan in, raw findings out.

fast_path.py answers yes/no for the base rules; walk.py walks the resource once and explains
(JSON form, datatypes, formats, bindings, targets, cardinalities, invariants), applying the
selected profiles through profile_check.py and slicing.py; dicom/ checks DICOM facts (UIDs, SOP
Classes, modalities, counts, WADO-RS endpoints, and the DICOM files of --dicom). Findings are
RawIssues (rule, pointer inside the resource, message); cross.py holds the checks that wait for
other inputs of the run.
"""
