"""Stage 2, load: paths in, resources out.

In: files, folders, globs and '-' (stdin). Out: ResourceInput items (sources.py), one per resource
of a JSON file, a Bundle entry, an NDJSON line or a FHIR XML file (xml.py), each with the parsed
resource, where it sits in its document and a PositionIndex that places findings at line and
column. An input that cannot be read or parsed becomes an item holding only a fatal finding; the
other inputs go on.
"""
