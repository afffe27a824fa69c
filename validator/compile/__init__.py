"""Stage 1, compile: rule packs in, plans out, once per process.

In: the YAML packs of rules/ (core, the FHIR version's rule set, DICOM) and profiles/, each
checked against the pack meta-schema (packs.py; a broken pack is a PackError naming file, rule
and field). Out: a Plan per FHIR version (plan.py: structures, element definitions, bindings with
their value sets, invariants compiled to Python or fhirpathpy, every rule by id) and a ProfileSet
(profiles.py: profiles compiled against that plan). catalog.py keeps both for the process. ig/
turns an Implementation Guide's StructureDefinitions and value sets into profile packs (--ig,
profiles import), which then compile like hand-written ones.
"""
