"""Payloads written from the constraints of each IG's ImagingStudy and Endpoint profiles (in
../shared/reference/igs/): one conforming payload per profile, which the tests mutate once per
construct. No IG example instance is used."""

from __future__ import annotations

DCM = "http://dicom.nema.org/resources/ontology/DCM"
CT_IMAGE = {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}
TEXT = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">test payload</div>'}
CONNECTION = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
UCUM = "http://unitsofmeasure.org"

IDR = "https://profiles.ihe.net/RAD/IDR/StructureDefinition/idr-imaging-study-in-imaging-report"
IDR_COMPARISON = "https://profiles.ihe.net/RAD/IDR/StructureDefinition/idr-comparison-study"
IDR_ENDPOINT = "https://profiles.ihe.net/RAD/IDR/StructureDefinition/imaging-study-endpoint"
IRA = "https://profiles.ihe.net/RAD/IRA/StructureDefinition/imagingstudycontext"
MADO = "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoImagingStudy"
MADO_WADO = "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoWadoEndpoint"
MADO_VIEWER = "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoWebViewerEndpoint"
MADO_SD = "https://profiles.ihe.net/RAD/MADO/StructureDefinition/"
JP_RADIOLOGY = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_ImagingStudy_Radiology"
JP_ENDOSCOPY = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_ImagingStudy_Endoscopy"
MII = "https://www.medizininformatik-initiative.de/fhir/ext/modul-bildgebung/StructureDefinition/mii-pr-bildgebung-bildgebungsstudie"
MII_SD = "https://www.medizininformatik-initiative.de/fhir/ext/modul-bildgebung/StructureDefinition/"


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"https://pacs.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in resources]}  # fmt: skip


def r5_study(meta: str) -> dict:
    """An R5 study (CodeableConcept modalities) with a Study UID identifier and a WADO-RS endpoint."""
    return {
        "resourceType": "ImagingStudy", "id": "s1", "meta": {"profile": [meta]}, "text": TEXT,
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.826.0.1.3680043.10.1.1"}],
        "status": "available",
        "modality": [{"coding": [{"system": DCM, "code": "CT"}]}],
        "subject": {"reference": "Patient/p1"},
        "started": "2024-01-01T10:00:00Z",
        "endpoint": [{"reference": "Endpoint/ep1"}],
        "numberOfSeries": 1, "numberOfInstances": 1,
        "series": [{"uid": "1.2.826.0.1.3680043.10.1.1.1", "modality": {"coding": [{"system": DCM, "code": "CT"}]},
                    "numberOfInstances": 1,
                    "instance": [{"uid": "1.2.826.0.1.3680043.10.1.1.1.1", "sopClass": CT_IMAGE}]}],
    }  # fmt: skip


def idr_endpoint() -> dict:
    return {
        "resourceType": "Endpoint", "id": "ep1", "meta": {"profile": [IDR_ENDPOINT]}, "text": TEXT,
        "status": "active",
        "connectionType": [{"coding": [{"system": CONNECTION, "code": "dicom-wado-rs"}]}],
        "payload": [{"type": [{"coding": [{"system": DCM, "code": "113014"}]}]}],
        "address": "https://pacs.example.org/dicomweb",
    }  # fmt: skip


def ira_study() -> dict:
    study = r5_study(IRA)
    study["identifier"] = [
        {"type": {"coding": [{"system": DCM, "code": "110180"}]}, "system": "urn:dicom:uid",
         "value": "urn:oid:1.2.826.0.1.3680043.10.1.1"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]},
         "system": "http://hospital.example.org/accession", "value": "A1"},
    ]  # fmt: skip
    del study["endpoint"]
    return study


def r4_study(meta: str) -> dict:
    return {
        "resourceType": "ImagingStudy", "id": "s1", "meta": {"profile": [meta]}, "text": TEXT,
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.826.0.1.3680043.10.1.1"}],
        "status": "available",
        "modality": [{"system": DCM, "code": "CT"}],
        "subject": {"reference": "Patient/p1"},
        "started": "2024-01-01T10:00:00Z",
        "numberOfSeries": 1, "numberOfInstances": 1,
        "series": [{"uid": "1.2.826.0.1.3680043.10.1.1.1", "number": 1, "modality": {"system": DCM, "code": "CT"},
                    "numberOfInstances": 1,
                    "instance": [{"uid": "1.2.826.0.1.3680043.10.1.1.1.1", "sopClass": CT_IMAGE, "number": 1}]}],
    }  # fmt: skip


def mado_study() -> dict:
    study = r4_study(MADO)
    region = {"coding": [{"system": "http://snomed.info/sct", "code": "51185008"}]}
    study["extension"] = [{"url": MADO_SD + "MadoAnatomicalRegionExtension", "valueCodeableConcept": region}]
    study["identifier"][0]["type"] = {"coding": [{"system": DCM, "code": "110180"}]}
    study["procedureCode"] = [{"text": "CT chest"}]
    study["basedOn"] = [{"identifier": {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"},
                            {"system": DCM, "code": "121022"}]},
        "system": "http://hospital.example.org/accession", "value": "A1"}}]
    study["endpoint"] = [{"reference": "Endpoint/viewer"}]
    series = study["series"][0]
    series["endpoint"] = [{"reference": "Endpoint/wado"}]
    series["instance"][0]["extension"] = [
        {"url": MADO_SD + "MadoNumberOfFrames", "valueInteger": 1},
        {"url": MADO_SD + "MadoKeyObjectDocumentTitle",
         "valueCodeableConcept": {"coding": [{"system": DCM, "code": "113000"}]}},
    ]
    return study  # fmt: skip


def mado_wado() -> dict:
    return {
        "resourceType": "Endpoint", "id": "wado", "meta": {"profile": [MADO_WADO]}, "text": TEXT,
        "extension": [{"url": MADO_SD + "MadoRetrieveLocationUIDExtension", "valueString": "1.2.826.0.1.3680043.10.9"}],
        "status": "active",
        "connectionType": {"system": CONNECTION, "code": "dicom-wado-rs"},
        "payloadType": [{"text": "DICOM WADO-RS",
                         "coding": [{"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                                     "code": "none"}]}],
        "address": "https://pacs.example.org/dicomweb",
    }  # fmt: skip


def mado_viewer() -> dict:
    return {
        "resourceType": "Endpoint", "id": "viewer", "meta": {"profile": [MADO_VIEWER]}, "text": TEXT,
        "status": "active",
        "connectionType": {"system": CONNECTION, "code": "hl7-fhir-rest"},
        "payloadType": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                                     "code": "none"}]}],
        "payloadMimeType": ["text/html"],
        "address": "https://viewer.example.org/study/1",
    }  # fmt: skip


def jp_study(meta: str) -> dict:
    study = r4_study(meta)
    study["procedureCode"] = [{"coding": [{"system": "http://www.radlex.org", "code": "RPID16"}]}]
    return study


def mii_study() -> dict:
    study = r4_study(MII)
    study["extension"] = [{"url": MII_SD + "mii-ex-bildgebung-bildgebungsgrund", "valueString": "Verlaufskontrolle"}]
    series = study["series"][0]
    series["laterality"] = {"system": "http://snomed.info/sct", "code": "7771000"}
    series["extension"] = [
        {"url": MII_SD + "mii-ex-bildgebung-modalitaet-ct", "extension": [
            {"url": "CTDIvol", "valueQuantity": {"value": 10, "unit": "milligray", "system": UCUM, "code": "mGy"}},
            {"url": "KVP", "valueQuantity": {"value": 120, "unit": "kilovolt", "system": UCUM, "code": "kV"}}]},
        {"url": MII_SD + "mii-ex-bildgebung-kontrastmittel",
         "extension": [{"url": "contrastBolus", "valueBoolean": True}]},
        {"url": MII_SD + "mii-ex-bildgebung-serie-schichtdicke",
         "valueQuantity": {"value": 1.5, "unit": "millimeter", "system": UCUM, "code": "mm"}},
    ]
    series["instance"][0]["extension"] = [{"url": MII_SD + "mii-ex-bildgebung-instanz-details", "extension": [
        {"url": "sliceThickness", "valueQuantity": {"value": 1.5, "unit": "millimeter", "system": UCUM, "code": "mm"}},
        {"url": "burnedInAnnotation", "valueBoolean": False}]}]
    return study  # fmt: skip
