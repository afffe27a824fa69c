"""The probe's client-side matching follows the FHIR search spec (search.html: token, reference, date)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from validator.probe.matchers import date_matches, parse_zone, reference_matches, token_matches

CT = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}
ACCESSION = {"system": "http://hospital.example.org/accession", "value": "ACC-1"}


@pytest.mark.parametrize(("criterion", "expected"), [
    ("CT", True),
    ("ct", True),  # codes compared case-insensitively, as servers may
    ("http://dicom.nema.org/resources/ontology/DCM|CT", True),
    ("http://dicom.nema.org/resources/ontology/DCM|", True),
    ("http://other.example.org|CT", False),
    ("|CT", False),  # |code asks for a code without a system
    ("MR", False),
])  # fmt: skip
def test_a_token_matches_code_system_and_code_or_no_system_as_the_spec_defines(criterion: str, expected: bool) -> None:
    assert token_matches([CT], criterion) is expected


def test_a_token_searches_identifier_values_and_codeable_concepts() -> None:
    assert token_matches([ACCESSION], "http://hospital.example.org/accession|ACC-1")
    assert not token_matches([ACCESSION], "http://hospital.example.org/accession|ACC-2")
    assert token_matches([{"coding": [CT]}], "CT")
    assert token_matches(["available"], "available")
    assert token_matches([{"value": "X1"}], "|X1")


@pytest.mark.parametrize(("criterion", "expected"), [
    ("pat-1", True), ("Patient/pat-1", True), ("https://fhir.example.org/Patient/pat-1", True),
    ("Device/pat-1", False), ("pat-2", False),
])  # fmt: skip
def test_a_reference_by_id_type_and_id_or_url_names_the_same_target(criterion: str, expected: bool) -> None:
    assert reference_matches([{"reference": "Patient/pat-1"}], criterion, ("Patient",)) is expected


@pytest.mark.parametrize(("stored", "criterion", "expected"), [
    ("2024-03-14T10:30:00Z", "2024-03-14T10:30:00Z", True),
    ("2024-03-14T10:30:00Z", "eq2024", True),
    ("2024-03", "2024-03-14", False),  # the day does not contain the month: eq is containment
    ("2024-03", "2024-03", True),
    ("2024-03", "ne2024-03-14", True),
    ("2024-03-14T10:30:00Z", "gt2024-03-14T09:30:00Z", True),
    ("2024-03-14T10:30:00Z", "gt2024-03-14T10:30:00Z", False),
    ("2024-03-14T10:30:00Z", "lt2024-03-14T11:30:01Z", True),
    ("2024-03-14T10:30:00Z", "ge2024-03-14T11:30:01Z", False),
    ("2024-03-14T10:30:00Z", "sa2023", True),
    ("2024-03-14T10:30:00Z", "sa2024", False),
    ("2024-03-14T10:30:00Z", "eb2025", True),
    ("2024-03-14T10:30:00Z", "le2024", True),
    ("2024-03-14T10:30:00+01:00", "2024-03-14T09:30:00Z", True),  # the same instant in another zone
])  # fmt: skip
def test_a_date_is_a_range_and_each_prefix_compares_ranges_as_the_spec_says(stored: str, criterion: str,
                                                                             expected: bool) -> None:  # fmt: skip
    assert date_matches([stored], criterion) is expected


def test_a_day_without_a_zone_against_an_instant_near_midnight_depends_on_the_servers_zone() -> None:
    # 23:30 in New York is 04:30 UTC the next day: whether `started=2024-03-14` finds it depends on
    # the zone the server reads the day in, which the spec leaves to the server.
    late = "2024-03-14T23:30:00-05:00"
    assert date_matches([late], "2024-03-14") is None
    assert date_matches([late], "2024-03-14", server_zone=parse_zone("-05:00")) is True
    assert date_matches([late], "2024-03-14", server_zone=parse_zone("Z")) is False
    assert date_matches([late], "2024-03-15", server_zone=timedelta(0)) is True


def test_ap_is_left_to_the_server_and_never_judged() -> None:
    assert date_matches(["2024-03-14"], "ap2024-03-14") is None


def test_a_zone_that_is_not_an_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="not a time zone offset"):
        parse_zone("Europe/Paris")
