"""Packs that extend packs: `extends: ../r5/imagingstudy.yaml`, then only what differs.

An extending pack is resolved against its base when it is loaded (packs.load_pack), so the
compiler only ever sees complete packs. Resolution runs in this order:

1. rebaseSources: every source the base cites that starts with `from` starts with `to` instead;
2. remove: the base entries listed there are taken out (each must exist in the base);
3. this pack's own entries are laid over what is left. An entry the base has is an override and
   merges field by field: a field restated replaces the base's whole (lists and bindings too), a
   field restated as null is dropped; a structure's elements and invariants merge entry by entry
   the same way. An entry the base lacks is an addition and must be complete: a partial one is
   refused, since restating part of an entry that does not exist is surely a typo;
4. top-level fields restated (pack, title, source, versionMarkers, ...) replace the base's.

Every key of a collection names its entries: structures, elements, primitives, constraints and
sopClassModalities by their mapping key, invariants by `key`, value sets by `url`, rules by `id`.
"""

from __future__ import annotations

import copy
from typing import Any

# (rule, field, message), reported by packs.py as "<file>: rule <rule>: field <field>: <message>"
Problem = tuple[str, str, str]

# The fields that say how a pack extends its base; they are consumed, never part of the result.
EXTENSION_FIELDS = ("extends", "rebaseSources", "remove")

# Collections that are lists, with the field that names an entry (the others are mappings).
_LIST_KEYS = {"valueSets": "url", "rules": "id", "invariants": "key"}
# The schema definition ($defs) of each collection's entries: its `required` fields are what an
# addition must state. sopClassModalities entries are lists: restating one replaces it.
_ENTRY_DEFS = {
    "structures": "structure",
    "elements": "element",
    "invariants": "invariant",
    "primitives": "primitive",
    "valueSets": "valueSet",
    "rules": "nativeRule",
    "constraints": "constraint",
}
# Collections inside an entry that merge entry by entry instead of being replaced whole.
_NESTED = {"structures": ("elements", "invariants")}
_NOUNS = {
    "structures": "a structure",
    "elements": "an element",
    "invariants": "an invariant",
    "primitives": "a primitive",
    "valueSets": "a value set",
    "rules": "a rule",
    "constraints": "a constraint",
    "sopClassModalities": "a SOP Class",
}


def resolve(child: dict, base: dict, base_name: str, defs: dict) -> tuple[dict, list[Problem]]:
    """The complete pack `child` describes over `base` (not modified), and the problems found.

    `child` has passed the schema's checks of its extension fields (extends, rebaseSources, remove);
    its content is checked by the caller on the result, where it is complete."""
    resolver = _Resolver(base_name, defs)
    data = copy.deepcopy(base)
    if "rebaseSources" in child:
        _rebase(data, child["rebaseSources"]["from"], child["rebaseSources"]["to"])
    for name, keys in (child.get("remove") or {}).items():
        resolver.remove(data, name, keys)
    for name, value in child.items():
        if name in EXTENSION_FIELDS:
            continue
        if name in _NOUNS:
            data[name] = resolver.collection(name, data.get(name), value, name, "")
        elif name == "profile" and isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = resolver.entry(name, data[name], value, name, "")
        else:
            data[name] = value
    return data, resolver.problems


def _rebase(data: dict, old: str, new: str) -> None:
    """Cite `new...` wherever the base cites `old...`: the pack itself, invariants, value sets, rules."""
    structures = (data.get("structures") or {}).values()
    entries = [data, *(inv for s in structures for inv in s.get("invariants") or [])]
    for entry in [*entries, *(data.get("valueSets") or []), *(data.get("rules") or [])]:
        source = entry.get("source")
        if isinstance(source, str) and source.startswith(old):
            entry["source"] = new + source[len(old) :]


def _rule(name: str, owner: str, key: str) -> str:
    """An entry named as the existing pack errors name it: ImagingStudy.status, ImagingStudy ist-1."""
    if name == "elements":
        return f"{owner}.{key}"
    return f"{owner} {key}" if owner else key


def _key(entry: Any, field: str) -> str | None:
    key = entry.get(field) if isinstance(entry, dict) else None
    return key if isinstance(key, str) else None


class _Resolver:
    def __init__(self, base_name: str, defs: dict) -> None:
        self.base_name = base_name
        self.defs = defs
        self.problems: list[Problem] = []

    def remove(self, data: dict, name: str, keys: Any) -> None:
        if name == "codes":
            for url, codes in keys.items():
                self._remove_codes(data, url, codes)
        elif name in ("elements", "invariants"):
            structures = data.get("structures") or {}
            for sname, entry_keys in keys.items():
                if sname not in structures:
                    self.problems.append((sname, f"remove.{name}", f"{self.base_name} has no structure {sname}"))
                    continue
                self._take(name, structures[sname], entry_keys, f"remove.{name}.{sname}", sname)
        else:
            self._take(name, data, keys, f"remove.{name}", "")

    def _take(self, name: str, container: dict, keys: list[str], where: str, owner: str) -> None:
        entries = container.get(name) or ([] if name in _LIST_KEYS else {})
        for key in keys:
            if name in _LIST_KEYS:
                kept = [e for e in entries if e[_LIST_KEYS[name]] != key]
                found, entries = len(kept) < len(entries), kept
            else:
                # An element's children go with it: removing `series` removes `series.uid` too.
                gone = [k for k in entries if k == key or (name == "elements" and k.startswith(key + "."))]
                found, entries = bool(gone), {k: v for k, v in entries.items() if k not in gone}
            if not found:
                self.problems.append(
                    (_rule(name, owner, key), where, f"removes {_NOUNS[name]} that {self.base_name} does not have")
                )
        if name in container:
            container[name] = entries

    def _remove_codes(self, data: dict, url: str, codes: list[str]) -> None:
        value_set = next((vs for vs in data.get("valueSets") or [] if vs["url"] == url), None)
        if value_set is None:
            self.problems.append((url, "remove.codes", f"{self.base_name} has no value set {url}"))
            return
        includes = value_set.get("include") or []
        for code in codes:
            holders = [inc for inc in includes if code in inc.get("codes", ()) or code in inc.get("concepts", {})]
            if not holders:
                self.problems.append((url, f"remove.codes.{url}", f"removes code {code!r}, which it does not list"))
            for inc in holders:
                if "codes" in inc:
                    inc["codes"] = [c for c in inc["codes"] if c != code]
                inc.get("concepts", {}).pop(code, None)
        # An include whose last code was removed goes too (an empty one would not be a valid pack).
        value_set["include"] = [inc for inc in includes if inc.get("codes", True) and inc.get("concepts", True)]

    def collection(self, name: str, base: Any, patch: Any, where: str, owner: str) -> Any:
        """`patch` laid over the base's collection `name`. A shape that is not the collection's
        (a list for a mapping, ...) replaces it, and the schema check of the result reports it."""
        key_field = _LIST_KEYS.get(name)
        kind = list if key_field else dict
        if not isinstance(patch, kind) or not isinstance(base, kind):
            return patch
        entries: dict[Any, Any] = {e[key_field]: e for e in base} if key_field else dict(base)
        items = [(_key(e, key_field), e) for e in patch] if key_field else patch.items()
        added: list[Any] = []  # list entries without a usable key: left for the schema check
        seen: set[Any] = set()
        for key, entry in items:
            if key is None:
                added.append(entry)
                continue
            rule = _rule(name, owner, str(key))
            if key in seen:
                self.problems.append((rule, where, f"{_NOUNS[name]} stated twice in this pack"))
            seen.add(key)
            if key in entries and isinstance(entry, dict) and isinstance(entries[key], dict):
                entries[key] = self.entry(name, entries[key], entry, f"{where}.{key}", rule)
                continue
            missing = [f for f in self._required(name) if f not in entry] if isinstance(entry, dict) else []
            if key not in entries and missing:
                needs = ", ".join(missing)
                message = f"overrides {_NOUNS[name]} that {self.base_name} does not have (adding one needs {needs})"
                self.problems.append((rule, f"{where}.{key}", message))
            entries[key] = entry
        return [*entries.values(), *added] if key_field else entries

    def entry(self, name: str, base: dict, patch: dict, where: str, rule: str) -> dict:
        """One entry restated over the base's: field by field, null drops a field."""
        merged = dict(base)
        for field, value in patch.items():
            if value is None:
                merged.pop(field, None)
            elif field in _NESTED.get(name, ()):
                merged[field] = self.collection(field, base.get(field), value, f"{where}.{field}", rule)
            else:
                merged[field] = value
        return merged

    def _required(self, name: str) -> list[str]:
        definition = _ENTRY_DEFS.get(name)
        return list(self.defs[definition].get("required", ())) if definition else []
