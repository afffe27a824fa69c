"""Configuration files: `[tool.imaging-validator]` in pyproject.toml, or a standalone
imaging-validator.toml (the same keys at its top level), found by walking up from the current
folder; the nearest wins, and in one folder imaging-validator.toml before pyproject.toml (a
pyproject.toml without the table is passed over, as ruff does).

Keys are the command line's long option names (`fail-on = "warning"`, `profile = ["imr"]`,
`severity = {"dicom:*" = "warning"}`, `output = {sarif = "reports/v.sarif"}`), plus `paths` (what
to validate when none is named) and `[[ignore]]` tables (`paths`, `rules`). Which keys exist and
what type each takes is told by the caller (the command line derives it from its options), so
this module knows no option itself. Paths are relative to the file's folder. A key the command
line does not know, or a value of the wrong type, is a ConfigError naming the key and the file.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from validator.run.waivers import Ignore

STANDALONE = "imaging-validator.toml"
PYPROJECT = "pyproject.toml"
TABLE = "imaging-validator"


class ConfigError(ValueError):
    """A configuration file that cannot be used (usage error); the message names file and key."""


@dataclass(frozen=True, slots=True)
class Key:
    """What a key takes: bool, int, str, a list of str, or a table of str (`pairs`: given to the
    option as KEY=VALUE strings, as --severity and --output take them)."""

    param: str  # the parameter it sets
    kind: str  # bool | int | str | list | pairs
    path: bool = False  # a file or folder: relative to the configuration file
    choices: tuple[str, ...] = ()


@dataclass(slots=True)
class Config:
    path: Path | None  # None: no configuration file was found
    values: dict[str, object] = field(default_factory=dict)  # parameter -> value
    ignores: list[Ignore] = field(default_factory=list)


def find_config(start: Path) -> tuple[Path, dict] | None:
    """The nearest configuration at or above `start`, with its table of settings."""
    here = start.resolve()
    for folder in (here, *here.parents):
        standalone = folder / STANDALONE
        if standalone.is_file():
            return standalone, _read(standalone)
        pyproject = folder / PYPROJECT
        if pyproject.is_file():
            table = _read(pyproject).get("tool", {}).get(TABLE)
            if table is not None:
                if not isinstance(table, dict):
                    raise ConfigError(f"{pyproject}: [tool.{TABLE}] must be a table")
                return pyproject, table
    return None


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_config(start: Path, keys: Mapping[str, Key], explicit: Path | None = None) -> Config:
    """The configuration that applies in `start` (or the file `explicit` names), checked against
    `keys`; an empty Config when there is none."""
    if explicit is not None:
        table = _read(explicit)
        if explicit.name == PYPROJECT:
            table = table.get("tool", {}).get(TABLE, {})
        found: tuple[Path, dict] | None = (explicit, table)
    else:
        found = find_config(start)
    if found is None:
        return Config(None)
    path, table = found
    config = Config(path)
    folder = path.parent
    where = f"[tool.{TABLE}] of {path}" if path.name == PYPROJECT else str(path)
    for name, value in table.items():
        if name == "ignore":
            config.ignores = _ignores(value, where)
            continue
        key = keys.get(name)
        if key is None:
            close = difflib.get_close_matches(name, [*keys, "ignore"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {name!r}{hint}; keys are the long options of `validate`")
        config.values[key.param] = _value(name, key, value, where, folder)
    return config


def _value(name: str, key: Key, value: object, where: str, folder: Path) -> object:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}: {name} = {value!r}: expected {expected}")

    if key.kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if key.kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        if key.choices and value not in key.choices:
            raise bad("one of " + ", ".join(key.choices))
        return _path(value, folder) if key.path else value
    if key.kind == "list":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise bad("a list of strings")
        return [_path(v, folder) for v in items] if key.path else items
    # pairs: a table (or a list of KEY=VALUE strings), handed on as KEY=VALUE
    if isinstance(value, dict):
        if not all(isinstance(v, str) for v in value.values()):
            raise bad("a table of strings")
        return [f"{k}={_path(v, folder) if key.path else v}" for k, v in value.items()]
    if isinstance(value, list) and all(isinstance(v, str) and "=" in v for v in value):
        return [_pair_path(v, folder) if key.path else v for v in value]
    raise bad('a table such as {"KEY" = "VALUE"}')


def _path(value: str, folder: Path) -> str:
    """A path of the configuration, relative to its folder, as the current folder reaches it
    (so messages and reports name it as the user would); `-` (standard output) stays."""
    if value == "-" or os.path.isabs(value):
        return value
    return os.path.relpath(folder / value)


def _pair_path(pair: str, folder: Path) -> str:
    name, _, value = pair.partition("=")
    return f"{name}={_path(value, folder)}"


def _ignores(value: object, where: str) -> list[Ignore]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: ignore must be an array of tables ([[ignore]] with paths and rules)")
    out = []
    for n, entry in enumerate(value):
        unknown = sorted(set(entry) - {"paths", "rules"})
        if unknown:
            raise ConfigError(f"{where}: ignore[{n}]: unknown key {unknown[0]!r} (expected paths, rules)")
        paths, rules = entry.get("paths"), entry.get("rules", [])
        if not paths:  # an ignore for every file is a rule switched off: --severity RULE=off says so
            raise ConfigError(f"{where}: ignore[{n}] names no paths")
        for name, items in (("paths", paths), ("rules", rules)):
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise ConfigError(f"{where}: ignore[{n}].{name} must be a list of strings")
        out.append(Ignore(tuple(paths), tuple(rules), f"{where} ignore[{n}]"))
    return out
