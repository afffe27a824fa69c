from __future__ import annotations

from pathlib import Path

import pytest

from validator import Validator

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator()


def require_shared() -> Path:
    """The specification reference folder beside the repository (read by tests, never by the product)."""
    if not SHARED.is_dir():
        raise RuntimeError("the tests need the reference folder ../shared/reference beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    return require_shared()


def junit_schema():
    """The shared JUnit XSD (Surefire's, which Jenkins follows) with the two testcase attributes
    that pytest, GitLab and the junit-xml library write and read beside it, `file` and `line`
    (optional): everything else in a report is held to the XSD as it is."""
    from lxml import etree

    doc = etree.parse(str(require_shared() / "schemas" / "junit-10.xsd"))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    testcase = doc.find(f"{xs}element[@name='testcase']/{xs}complexType")
    for name, kind in (("file", "xs:string"), ("line", "xs:nonNegativeInteger")):
        testcase.append(etree.Element(f"{xs}attribute", name=name, type=kind))
    return etree.XMLSchema(doc)


@pytest.fixture(scope="session")
def pacs(tmp_path_factory):
    """Orthanc with the DICOMweb plugin, loaded with the generated studies (tests/pacs.py); started
    once for the session, in its own temporary folder, and stopped at its end."""
    from pacs import Pacs

    server = Pacs.start(tmp_path_factory.mktemp("pacs"))
    try:
        yield server
    finally:
        server.stop()
