"""Reading an IG's conformance resources: a package.tgz, an unpacked folder, or `id#version` from
the FHIR package cache (`~/.fhir/packages`, shared by the HL7 validator, SUSHI and Firely;
IMAGING_VALIDATOR_FHIR_PACKAGES points at another cache).

Only StructureDefinition, ValueSet and CodeSystem resources are read. A tarball is read member by
member without extracting anything: no path of the archive is ever written, links and devices are
skipped, and sizes are bounded so a hostile archive cannot exhaust memory.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_BYTES = 32 * 1024 * 1024  # one resource (the largest core SDs are under 2 MB)
MAX_TOTAL_BYTES = 512 * 1024 * 1024  # everything read from one package
MAX_MEMBERS = 100_000
KINDS = ("StructureDefinition", "ValueSet", "CodeSystem")
_SKIPPED = ("example/", "examples/", "other/", "openapi/")  # instances and tooling, not definitions
_PACKAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PACKAGE_REF = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)#([A-Za-z0-9][A-Za-z0-9._+-]*)$")


class IgError(Exception):
    """An IG that cannot be read (usage error: the path, archive or package is named wrongly or broken)."""


@dataclass(slots=True)
class Ig:
    """The conformance resources of one IG, and where they came from."""

    source: str  # as given (path or id#version)
    package_id: str | None  # from package.json, when there is one
    version: str | None
    fhir_versions: tuple[str, ...]
    resources: list[tuple[str, dict]] = field(default_factory=list)  # (file name, resource)
    problems: list[str] = field(default_factory=list)  # files that could not be read, and why

    @property
    def label(self) -> str:
        if self.package_id:
            return f"{self.package_id}#{self.version}" if self.version else self.package_id
        return Path(self.source).name or self.source

    def of_kind(self, kind: str) -> list[tuple[str, dict]]:
        return [(name, r) for name, r in self.resources if r.get("resourceType") == kind]


def cache_root() -> Path:
    configured = os.environ.get("IMAGING_VALIDATOR_FHIR_PACKAGES")
    return Path(configured) if configured else Path.home() / ".fhir" / "packages"


def read_ig(source: str) -> Ig:
    """The IG at `source`: a .tgz file, a folder (an unpacked package, or any folder of JSON
    resources), or `id#version` in the package cache. Raises IgError when it names nothing usable."""
    path = Path(source)
    if path.is_file():
        return _read_tgz(source, path)
    if path.is_dir():
        return _read_folder(source, path)
    m = _PACKAGE_REF.match(source)
    if m:
        cached = cache_root() / f"{m.group(1)}#{m.group(2)}"
        if cached.is_dir():
            return _read_folder(source, cached)
        raise IgError(f"{source}: no package {m.group(1)} version {m.group(2)} in the FHIR package cache ({cached})")
    if _PACKAGE_ID.match(source) and "." in source:
        # A package id alone: its highest version in the cache.
        found = sorted((p for p in cache_root().glob(f"{source}#*") if p.is_dir()), key=_version_key)
        if found:
            return _read_folder(source, found[-1])
    raise IgError(f"{source}: not a package.tgz, a folder or an id#version in the FHIR package cache")


def _version_key(folder: Path) -> list[int]:
    """1.10.0 after 1.9.0; a pre-release part (-ballot) sorts before the numbers."""
    return [int(x) if x.isdigit() else -1 for x in re.split(r"[.-]", folder.name.split("#", 1)[1])]


def _keep(name: str, data: bytes, ig: Ig) -> None:
    try:
        resource = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        ig.problems.append(f"{name}: not JSON ({exc})")
        return
    if isinstance(resource, dict) and resource.get("resourceType") in KINDS:
        ig.resources.append((name, resource))


def _manifest(ig: Ig, data: bytes, where: str) -> None:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IgError(f"{where}: package.json is not JSON ({exc})") from None
    if isinstance(manifest, dict):
        ig.package_id = manifest.get("name") if isinstance(manifest.get("name"), str) else None
        ig.version = manifest.get("version") if isinstance(manifest.get("version"), str) else None
        versions = manifest.get("fhirVersions") or manifest.get("fhir-version-list") or []
        ig.fhir_versions = tuple(v for v in versions if isinstance(v, str)) if isinstance(versions, list) else ()


def _read_folder(source: str, root: Path) -> Ig:
    ig = Ig(source, None, None, ())
    folder = root / "package" if (root / "package" / "package.json").is_file() else root
    if (folder / "package.json").is_file():
        _manifest(ig, (folder / "package.json").read_bytes(), str(folder))
    total = 0
    for file in sorted(folder.rglob("*.json")):
        rel = file.relative_to(folder).as_posix()
        if file.name == "package.json" or file.name.startswith(".") or rel.startswith(_SKIPPED) or not file.is_file():
            continue
        if file.is_symlink() and not file.resolve().is_relative_to(folder.resolve()):
            ig.problems.append(f"{file.name}: a link out of the package, skipped")
            continue
        size = file.stat().st_size
        total += size
        if size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
            ig.problems.append(f"{file.name}: larger than the limit for a package, skipped")
            continue
        _keep(rel, file.read_bytes(), ig)
    return ig


def _read_tgz(source: str, path: Path) -> Ig:
    import tarfile  # only when an archive is read: it is not needed to start

    ig = Ig(source, None, None, ())
    total = 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    ig.problems.append(f"more than {MAX_MEMBERS} entries: the rest was not read")
                    break
                name = member.name
                # Members are read into memory, never extracted: a name such as ../x or /etc/x is
                # only a label here, but it is still refused so the report never shows one.
                parts = Path(name).parts
                if not member.isfile() or name.startswith("/") or ".." in parts:
                    continue
                if not name.endswith(".json"):
                    continue
                if member.size > MAX_FILE_BYTES or total + member.size > MAX_TOTAL_BYTES:
                    ig.problems.append(f"{name}: larger than the limit for a package, skipped")
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                data = handle.read(MAX_FILE_BYTES + 1)
                total += len(data)
                base = name[len("package/"):] if name.startswith("package/") else name
                if base == "package.json":
                    _manifest(ig, data, source)
                elif not base.startswith(_SKIPPED):
                    _keep(base, data, ig)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise IgError(f"{source}: not a readable package archive ({exc})") from None
    return ig
