"""The probe's pytest mode: a `*.fhir-probe.yaml` file is one test per check of the server."""

from __future__ import annotations

import pytest
from probe_fake import Behaviour, fake_server


def test_each_check_is_a_test_and_a_deviation_fails_with_what_came_back(pytester: pytest.Pytester,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_server(Behaviour(unknown_empty=True)) as base:
        monkeypatch.setenv("PACS_FHIR_URL", base)  # the server's URL may come from the environment
        pytester.makefile(".fhir-probe.yaml", pacs="serverEnv: PACS_FHIR_URL\npatient: p1\n")
        result = pytester.runpytest("-p", "no:cacheprovider", "-q", "-m", "fhir_probe")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed", 0) > 20
    result.stdout.fnmatch_lines(["*check 'unknown parameter is ignored*failed:*",
                                 "*expected the unknown parameter ignored (the same 3 studies)*got 0 studies*"])


def test_a_probe_file_without_a_patient_is_an_error_naming_the_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".fhir-probe.yaml", pacs="server: http://127.0.0.1:9\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error, as for a broken suite file
    result.stdout.fnmatch_lines(["*pacs.fhir-probe.yaml: needs `server` (or `serverEnv`) and `patient` or "
                                 "`identifier`*"])  # fmt: skip
