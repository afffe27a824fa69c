"""Every rule has named passing and failing fixtures; each fixture case is run here."""

from __future__ import annotations

import pytest
from fixture_cases import Case, dicom_folder, family, load_cases, write_case

from validator import Validator
from validator.limits import Limits

CASES = load_cases()


_VALIDATORS: dict[tuple, Validator] = {}


def _validator_for(case: Case, default: Validator, pacs=None) -> Validator:
    if not case.profiles and not case.dicom_files and not case.version and not case.limits and not case.dicomweb:
        return default
    key = (case.profiles, case.dicom_files, case.version, case.limits, case.dicomweb)
    if key not in _VALIDATORS:
        folder = dicom_folder(case.dicom_files) if case.dicom_files else None
        # --dicomweb credentials are read from the environment when the validator is made
        with pytest.MonkeyPatch.context() as env:
            for name, value in (pacs.env.items() if pacs is not None else ()):
                env.setenv(name, value)
            _VALIDATORS[key] = Validator(fhir_version=case.version, profiles=case.profiles, dicom_files=folder,
                                         limits=Limits(**dict(case.limits)),
                                         **_dicomweb(case.dicomweb, pacs))  # fmt: skip
    return _VALIDATORS[key]


def _dicomweb(name: str | None, pacs) -> dict:
    """--dicomweb for a case: the test PACS, a plain folder it serves (not a DICOMweb service), or
    a port nobody listens on (`down`)."""
    if name is None:
        return {}
    from pacs import free_port

    from validator.net.client import ClientSettings

    if name == "down":
        return {"dicomweb": f"http://127.0.0.1:{free_port()}/dicom-web", "dicomweb_settings": ClientSettings(retries=0)}
    url = pacs.url if name == "pacs" else f"{pacs.static}/{name}"
    return {"dicomweb": url, "dicomweb_settings": ClientSettings(user_env="PACS_USER", password_env="PACS_PASSWORD")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fixture_case_reports_exactly_the_expected_issues(case: Case, validator, tmp_path, request) -> None:
    pacs = request.getfixturevalue("pacs") if case.dicomweb else None
    path = write_case(case, tmp_path)
    if pacs is not None:  # the payload names the server by a placeholder: the running one takes its place
        from pacs import PLACEHOLDER

        path.write_text(path.read_text().replace(PLACEHOLDER, pacs.origin))
    results = _validator_for(case, validator, pacs).validate_paths([str(path)]).results
    found = sorted((i.rule, i.expression) for r in results for i in r.issues if i.rule not in case.ignore)
    expected = sorted((e["rule"], e.get("expression", "")) for e in case.expect)
    assert found == expected, "\n".join(
        f"{i.severity.label} {i.rule} {i.expression}: {i.message}" for r in results for i in r.issues
    )


def test_every_rule_has_a_passing_and_a_failing_fixture(validator) -> None:
    passing, failing = set(), set()
    for case in CASES:
        found = {family(e["rule"]) for e in case.expect}
        failing.update(found)
        # a case passes a rule of its file when it expects no issue of that rule
        passing.update(r for r in case.rules if r not in found)
    keys = {family(r.id) for v in ("R4", "R5", "R6", "R6-ballot3") for r in Validator(fhir_version=v).rules.values()}
    missing_pass = sorted(keys - passing)
    # A defect of the validator has no payload to trigger it; tests/test_never_lose_a_run.py injects some.
    missing_fail = sorted(keys - failing - {"engine:internal-error"})
    assert not missing_pass, f"rules without a passing fixture: {missing_pass}"
    assert not missing_fail, f"rules without a failing fixture: {missing_fail}"
