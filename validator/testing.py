"""Helpers for integrators' own tests:

from validator.testing import assert_conforms
def test_our_export_conforms_to_imr(fhir_validator):
    assert_conforms(build_study(), profile="imr")
"""

from validator.pytest_plugin import assert_conforms, issue_table

__all__ = ["assert_conforms", "issue_table"]
