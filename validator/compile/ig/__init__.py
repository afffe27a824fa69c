"""Implementation Guides in, profile packs out (part of the compile stage).

packages.py reads an IG's conformance resources (package.tgz, an unpacked folder, or `id#version`
from the FHIR package cache); structure.py turns one StructureDefinition's differential into the
constraints of a profile pack; importer.py turns an IG into packs (profiles, extension and
datatype profiles, value sets) that compile like hand-written ones and can be written as YAML.
"""
