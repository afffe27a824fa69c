"""DICOM-level checks of an ImagingStudy: UIDs, SOP Classes, modalities, counts, endpoints, and a
cross-check against DICOM files. The DICOM tables come from pydicom."""
