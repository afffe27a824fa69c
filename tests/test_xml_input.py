"""FHIR XML input: renderings of the official examples validate like their JSON; XML findings point
into the XML; hostile XML (entity bombs, external entities, deep nesting) is refused, never run."""

from __future__ import annotations

import copy
import json

import pytest
from fhir_xml import to_xml

from validator import Severity, Validator


def _pairs(results) -> list[tuple[str, str]]:
    return sorted((i.rule, i.expression) for r in results for i in r.issues)


@pytest.mark.parametrize("name", ["ImagingStudy-example.json", "ImagingStudy-example-xr.json"])
def test_the_xml_rendering_of_an_official_example_validates_like_its_json(shared, tmp_path, name) -> None:
    resource = json.loads((shared / "examples" / "r4" / name).read_text())
    xml = tmp_path / name.replace(".json", ".xml")
    xml.write_text(to_xml(resource))
    validator = Validator(fhir_version="R4")
    assert _pairs(validator.validate_file(xml)) == _pairs(validator.validate_file(shared / "examples" / "r4" / name))


def test_an_xml_finding_points_at_the_xml_element(shared, tmp_path) -> None:
    resource = json.loads((shared / "examples" / "r4" / "ImagingStudy-example.json").read_text())
    broken = copy.deepcopy(resource)
    broken["status"] = "done"
    broken["series"][0]["numberOfInstances"] = "one"
    xml = tmp_path / "broken.xml"
    text = to_xml(broken)
    xml.write_text(text)
    (result,) = Validator(fhir_version="R4").validate_file(xml)
    by_rule = {i.rule: i for i in result.issues}
    status = by_rule["r4:ImagingStudy.status:binding"]
    assert '<status value="done"/>' in text.splitlines()[status.line - 1]
    count = by_rule["r4:ImagingStudy.series.numberOfInstances:type"]
    assert count.expression == "ImagingStudy.series[0].numberOfInstances"
    assert "numberOfInstances" in text.splitlines()[count.line - 1]


def test_xml_files_in_a_directory_are_picked_up(shared, tmp_path) -> None:
    resource = json.loads((shared / "examples" / "r4" / "ImagingStudy-example.json").read_text())
    (tmp_path / "a.xml").write_text(to_xml(resource))
    run = Validator().validate_paths([str(tmp_path)])
    assert [r.label for r in run.results] == ["ImagingStudy/example"] and not run.failed


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ImagingStudy xmlns="http://hl7.org/fhir"><description value="&lol3;"/></ImagingStudy>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ImagingStudy xmlns="http://hl7.org/fhir"><description value="&xxe;"/></ImagingStudy>
"""


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (BOMB, "input:malformed-xml"),
        (EXTERNAL, "input:malformed-xml"),
        ('<ImagingStudy xmlns="http://hl7.org/fhir"><status value="available"', "input:malformed-xml"),
        ("<Study><status value='x'/></Study>", "input:malformed-xml"),
        (
            '<ImagingStudy xmlns="http://hl7.org/fhir">'
            + "<extension>" * 500
            + "</extension>" * 500
            + "</ImagingStudy>",
            "input:too-deep",
        ),
    ],
    ids=["entity expansion bomb", "external entity", "truncated", "not FHIR namespace", "deep nesting"],
)
def test_hostile_xml_is_one_fatal_issue(tmp_path, text, rule) -> None:
    path = tmp_path / "hostile.xml"
    path.write_text(text)
    (result,) = Validator().validate_file(path)
    assert [(i.severity, i.rule) for i in result.issues] == [(Severity.FATAL, rule)]
    assert "root:" not in result.issues[0].message  # nothing of /etc/passwd was read


def _r6_build_study(shared) -> dict:
    """The R5 example reshaped as the R6 build writes it: sopClass an oid, status inactive."""
    study = json.loads((shared / "examples" / "r5" / "ImagingStudy-example.json").read_text())
    study["status"] = "inactive"
    for s in study.get("series", []):
        for i in s.get("instance", []):
            i["sopClass"] = i["sopClass"]["code"] if isinstance(i.get("sopClass"), dict) else i.get("sopClass")
    return study


@pytest.mark.parametrize(("version", "name"), [("R5", "ImagingStudy-example.json"),
                                               ("R5", "ImagingStudy-example-xr.json"), ("R6", None)])  # fmt: skip
def test_an_xml_payload_of_a_later_version_is_detected_and_read_with_that_versions_elements(
    shared, tmp_path, version, name
) -> None:
    resource = _r6_build_study(shared) if name is None else json.loads((shared / "examples" / "r5" / name).read_text())
    as_json, as_xml = tmp_path / "study.json", tmp_path / "study.xml"
    as_json.write_text(json.dumps(resource))
    as_xml.write_text(to_xml(resource))
    validator = Validator()  # no --fhir-version: detected
    (from_xml,) = validator.validate_file(as_xml)
    (from_json,) = validator.validate_file(as_json)
    assert from_xml.fhir_version == from_json.fhir_version and from_xml.fhir_version.startswith(version[1])
    assert _pairs([from_xml]) == _pairs([from_json])
    assert not [i for i in from_xml.issues if i.rule.startswith("json:")], "a JSON-only rule fired on XML"


def test_an_element_written_twice_where_it_holds_one_value_loses_nothing_silently(tmp_path) -> None:
    xml = tmp_path / "twice.xml"
    xml.write_text('<ImagingStudy xmlns="http://hl7.org/fhir"><status value="available"/><status value="cancelled"/>'
                   '<subject><reference value="Patient/p"/></subject></ImagingStudy>')  # fmt: skip
    (result,) = Validator(fhir_version="R4").validate_file(xml)
    (issue,) = [i for i in result.issues if i.rule == "xml:repeated-element"]
    assert issue.line == 1 and "ImagingStudy.status holds one value" in issue.message
