"""Server profiles: what a server promises about ImagingStudy search, as data (servers/*.yaml).

A profile names the parameters the server offers (`all`: the FHIR version's table), those it
must declare, parameters of which a search must carry one (else 400 and an OperationOutcome),
what its Bundles must carry beyond the spec (`total`, `entry.search.mode`), and the modifiers it
supports (`:missing`, `:not`) per parameter, which the probe then tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from validator.probe.params import TABLES

SERVERS = Path(__file__).resolve().parent / "servers"


class UnknownServerProfile(ValueError):
    """No bundled profile by that name and no such file (usage error)."""


@dataclass(frozen=True)
class ServerProfile:
    name: str
    title: str
    parameters: tuple[str, ...] | None  # None: the version's whole table
    required: tuple[str, ...] = ()
    require_one_of: tuple[str, ...] = ()
    total_required: bool = False
    search_mode_required: bool = False
    modifiers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fhir_version: str | None = None
    source: str = ""


def bundled() -> list[str]:
    return sorted(p.stem for p in SERVERS.glob("*.yaml"))


def load_profile(name: str) -> ServerProfile:
    """A bundled profile by name, or a YAML file by path."""
    path = SERVERS / f"{name}.yaml" if (SERVERS / f"{name}.yaml").is_file() else Path(name)
    if not path.is_file():
        raise UnknownServerProfile(f"no server profile {name!r} (bundled: {', '.join(bundled())}; or a YAML file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UnknownServerProfile(f"{path}: cannot read the server profile: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise UnknownServerProfile(f"{path}: a server profile is a mapping with at least a `name`")
    params = data.get("parameters", "all")
    bundle = data.get("bundle") or {}
    known = {name for table in TABLES.values() for name in table} | {"patient.identifier"}
    named = [*(params if isinstance(params, list) else []), *(data.get("required") or []),
             *(data.get("requireOneOf") or []), *(data.get("modifiers") or {})]  # fmt: skip
    unknown = sorted({str(n) for n in named} - known)
    if unknown:
        raise UnknownServerProfile(f"{path}: no ImagingStudy search parameter {', '.join(map(repr, unknown))} in "
                                   "any FHIR version's table (chains: patient.identifier)")  # fmt: skip
    try:
        return ServerProfile(
            name=data["name"],
            title=str(data.get("title", data["name"])),
            parameters=None if params == "all" else tuple(str(p) for p in params),
            required=tuple(str(p) for p in data.get("required") or ()),
            require_one_of=tuple(str(p) for p in data.get("requireOneOf") or ()),
            total_required=bundle.get("total") == "required",
            search_mode_required=bundle.get("searchMode") == "required",
            modifiers={str(k): tuple(str(m) for m in v) for k, v in (data.get("modifiers") or {}).items()},
            fhir_version=data.get("fhirVersion"),
            source=str(path),
        )
    except (TypeError, AttributeError) as exc:
        raise UnknownServerProfile(f"{path}: malformed server profile ({exc})") from None
