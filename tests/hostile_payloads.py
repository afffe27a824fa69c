"""A payload whose text tries to inject markup and script into reports."""

HOSTILE = {
    "resourceType": "ImagingStudy",
    "id": "x",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    "status": "</td><script>window.__pwned = 1</script>",
    "subject": {"reference": "Patient/p"},
    "<img src=x onerror=window.__pwned=2>": "y",
}
