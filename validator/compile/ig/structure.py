"""One StructureDefinition's differential -> the constraints of a profile pack.

Each differential element is placed by its id (`ImagingStudy.identifier:studyUID.system`): the
part before a colon is an element, the part after it a slice. What the pack format holds is
written into the pack (cardinality, type narrowing of value[x], fixed and pattern values,
reference targets and target profiles, datatype and extension profiles, bindings, mustSupport,
slicing and slices, invariants); what it cannot hold is named in `notChecked` (element and
reason), and the rest of the profile still applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from validator.compile.plan import ElementDef, Plan, Structure

CORE_SD = "http://hl7.org/fhir/StructureDefinition/"
SIMPLE_QUANTITY = CORE_SD + "SimpleQuantity"
_VALUE_KEY = re.compile(r"^(fixed|pattern)([A-Z][A-Za-z0-9]*)$")
_DISCRIMINATORS = {"value", "pattern", "exists", "type", "profile"}
# Element properties that change nothing the validator checks (documentation, mappings, tooling).
_QUIET = {"id", "path", "short", "definition", "comment", "requirements", "alias", "mapping", "label", "code",
          "example", "isSummary", "isModifier", "isModifierReason", "meaningWhenMissing", "orderMeaning",
          "condition", "extension", "representation", "sliceIsConstraining", "base", "maxLength",
          "mustHaveValue", "valueAlternatives"}


def versionless(url: str) -> str:
    return url.split("|", 1)[0]


@dataclass(slots=True)
class Known:
    """What the importer knows beyond this SD: the other SDs loaded (by canonical), and whether a
    value set can be checked."""

    sd_type: Callable[[str], str | None]  # canonical -> the type an SD constrains, or None if not loaded


@dataclass(slots=True)
class Converted:
    constraints: dict = field(default_factory=dict)
    invariants: list[dict] = field(default_factory=list)
    not_checked: list[dict] = field(default_factory=list)
    value_sets: set[str] = field(default_factory=set)  # bindings met (for the value set packs)


class _Place:
    """Where an element id leads in the plan: the element and the structure its children are in."""

    def __init__(self, element: ElementDef | None, type_code: str | None, struct: Structure | None) -> None:
        self.element = element
        self.type_code = type_code
        self.struct = struct


def _child(plan: Plan, place: _Place, name: str) -> _Place:
    struct = place.struct
    if struct is None:
        return _Place(None, None, None)
    choice = name.endswith("[x]")
    base_name = name[:-3] if choice else name
    for el in struct.elements:
        if el.name == base_name:
            tcode = el.types[0] if len(el.types) == 1 else None
            return _Place(el, tcode, _struct_of(plan, el, tcode))
    # A typed choice key (valueQuantity): the element, narrowed to that type.
    if name in struct.props:
        el, tcode = struct.props[name]
        return _Place(el, tcode, _struct_of(plan, el, tcode))
    return _Place(None, None, None)


def _struct_of(plan: Plan, el: ElementDef, tcode: str | None) -> Structure | None:
    if el.children is not None:
        return el.children
    return plan.structures.get(tcode) if tcode else None


def _card(el: dict, base: ElementDef | None, is_slice: bool) -> str | None:
    if "min" not in el and "max" not in el:
        return None
    lo = el.get("min")
    hi = el.get("max")
    if lo is None:
        lo = 0 if is_slice or base is None else base.min
    if hi is None:
        hi = "*" if base is None or base.max is None else str(base.max)
    return f"{lo}..{hi}"


class Differential:
    """Converts one SD (its differential) against the base plan of its FHIR version."""

    def __init__(self, sd: dict, plan: Plan, known: Known) -> None:
        self.sd = sd
        self.plan = plan
        self.known = known
        self.out = Converted()
        self.root_type = sd["type"]
        self.url = sd["url"]
        self.base_keys = {r.id.split(":", 1)[1] for r in plan.rules.values() if r.kind == "invariant"}

    def note(self, element: str, reason: str) -> None:
        entry = {"element": element, "reason": reason}
        if entry not in self.out.not_checked:
            self.out.not_checked.append(entry)

    def convert(self) -> Converted:
        root = _Place(None, self.root_type, self.plan.structures.get(self.root_type))
        # node: the pack mapping a constraint's fields go into; slices keep their own mapping.
        nodes: dict[str, tuple[dict, _Place]] = {self.root_type: ({}, root)}
        # The differential says what the profile changes; an SD published with a snapshot only is
        # read from its snapshot (restating the base is allowed: it loosens nothing).
        elements = (self.sd.get("differential") or {}).get("element") or (self.sd.get("snapshot") or {}).get("element")
        for el in elements or []:
            eid = el.get("id") or el.get("path")
            if not isinstance(eid, str):
                continue
            self._element(eid, el, nodes)
        for ext in self.sd.get("extension") or []:
            url = str(ext.get("url", "")) if isinstance(ext, dict) else ""
            if url.endswith(("structuredefinition-imposeProfile", "/obligation")):
                what = ext.get("valueCanonical") or url
                self.note(self.root_type, f"{url.rsplit('/', 1)[-1]} {what} is not enforced")
        self.out.constraints = nodes[self.root_type][0].get("constraints", {})
        self._tidy(self.out.constraints)
        return self.out

    # -- placing an element ---------------------------------------------------------------------
    def _element(self, eid: str, el: dict, nodes: dict[str, tuple[dict, _Place]]) -> None:
        parts = eid.split(".")
        if parts[0] != self.root_type:
            self.note(eid, f"the id does not start with the profiled type {self.root_type}")
            return
        if len(parts) == 1:  # the root: its invariants
            self._invariants(eid, el, self.root_type)
            return
        parent_id = ".".join(parts[:-1])
        if parent_id not in nodes:
            self._ensure(parts[:-1], nodes)
        if parent_id not in nodes:
            if not any(n["element"] == parent_id for n in self.out.not_checked):
                self.note(eid, "its parent element is not in the base definition")
            return
        parent, parent_place = nodes[parent_id]
        last = parts[-1]
        name, _, slice_name = last.partition(":")
        place = _child(self.plan, parent_place, name)
        if place.element is None:
            if parent_place.struct is None and parent_place.element is not None:
                self.note(eid, f"{name} of a primitive value ({parent_id}) is not checked")
            else:
                where = parent_place.struct.name if parent_place.struct else parent_id
                self.note(eid, f"{name} is not an element of {where}")
            return
        body = parent.setdefault("constraints", {}).setdefault(name, {})
        if slice_name:
            if "/" in slice_name:
                self.note(eid, "re-slicing is not supported: the re-slice was not checked")
                return
            if name.endswith("[x]") and slice_name.startswith(name[:-3]) and slice_name[len(name) - 3:][:1].isupper():
                # A type slice of a choice (value[x]:valueCodeableConcept): the typed key itself.
                typed = slice_name
                tplace = _child(self.plan, parent_place, typed)
                node = parent["constraints"].setdefault(typed, {})
                self._fields(eid, el, node, tplace, is_slice=False)
                node.pop("types", None)  # the key is the type
                nodes[eid] = (node, tplace)
                return
            slicing = body.setdefault("slicing", {})
            if not slicing.get("discriminator") and name in ("extension", "modifierExtension"):
                slicing.update({"discriminator": [{"type": "value", "path": "url"}], "rules": "open"})
            node = slicing.setdefault("slices", {}).setdefault(slice_name, {})
            self._fields(eid, el, node, place, is_slice=True)
            nodes[eid] = (node, place)
            return
        place = self._narrowed(place, el)
        self._fields(eid, el, body, place, is_slice=False)
        nodes[eid] = (body, place)

    def _ensure(self, parts: list[str], nodes: dict[str, tuple[dict, _Place]]) -> None:
        """An element whose parent has no differential entry of its own (ImagingStudy.series.uid alone)."""
        for i in range(2, len(parts) + 1):
            pid = ".".join(parts[:i])
            if pid not in nodes:
                self._element(pid, {"id": pid}, nodes)

    def _narrowed(self, place: _Place, el: dict) -> _Place:
        types = [t.get("code") for t in el.get("type") or [] if isinstance(t, dict)]
        if place.element is not None and len(types) == 1 and isinstance(types[0], str):
            return _Place(place.element, types[0], _struct_of(self.plan, place.element, types[0]))
        return place

    # -- the fields of one element (or slice) ---------------------------------------------------
    def _fields(self, eid: str, el: dict, node: dict, place: _Place, is_slice: bool) -> None:
        base = place.element
        card = _card(el, base, is_slice)
        if card is not None:
            node["card"] = card
        elif is_slice and "card" not in node:
            node["card"] = "0..*" if base is None or base.max is None else f"0..{base.max}"
        if el.get("mustSupport") is True:
            node["mustSupport"] = True
        for key, value in el.items():
            m = _VALUE_KEY.match(key)
            if m:
                node[m.group(1)] = value
        if "type" in el:
            self._types(eid, el["type"], node, place, is_slice)
        if isinstance(el.get("binding"), dict):
            self._binding(eid, el["binding"], node)
        if isinstance(el.get("slicing"), dict):
            self._slicing(eid, el["slicing"], node)
        self._invariants(eid, el, eid.replace(":", "."))
        obligations = [x for x in el.get("extension") or []
                       if isinstance(x, dict) and "obligation" in str(x.get("url", ""))]  # fmt: skip
        if obligations:
            self.note(eid, f"{len(obligations)} obligation(s) are not enforced")
        for key in el:
            if key in _QUIET or key.startswith("_") or _VALUE_KEY.match(key):
                continue
            if key in ("min", "max", "mustSupport", "type", "binding", "slicing", "constraint", "sliceName"):
                continue
            if key == "contentReference":
                self.note(eid, "contentReference is not supported")
            elif key == "defaultValue" or key.startswith("defaultValue") or key.startswith("minValue") \
                    or key.startswith("maxValue"):
                self.note(eid, f"{key} is not checked")

    def _types(self, eid: str, types: list, node: dict, place: _Place, is_slice: bool) -> None:
        codes = [t.get("code") for t in types if isinstance(t, dict) and isinstance(t.get("code"), str)]
        base = place.element
        if is_slice and codes:
            node["types"] = codes  # what a type discriminator selects by
        if base is not None and base.choice and not is_slice:
            allowed = [c for c in codes if c in base.types]
            dropped = [c for c in codes if c not in base.types]
            if dropped:
                self.note(eid, f"type {', '.join(dropped)} is not allowed by the base: not checked")
            if allowed and set(allowed) != set(base.types):
                node["types"] = allowed
        profiles: list[str] = []
        target_types: set[str] = set()
        target_profiles: list[str] = []
        unknown_targets: list[str] = []
        extension_slice = is_slice and base is not None and base.name in ("extension", "modifierExtension")
        for t in types:
            if not isinstance(t, dict):
                continue
            for prof in t.get("profile") or []:
                if not isinstance(prof, str):
                    continue
                url = versionless(prof)
                if extension_slice:
                    # What puts an extension in this slice is its url: the extension's canonical.
                    node.setdefault("constraints", {}).setdefault("url", {}).setdefault("fixed", url)
                if url == SIMPLE_QUANTITY:
                    node.setdefault("constraints", {}).setdefault("comparator", {})["card"] = "0..0"
                elif self.known.sd_type(url) is not None:
                    profiles.append(url)
                else:
                    self.note(eid, f"profile {prof} is not loaded: values were not checked against it")
            for tp in t.get("targetProfile") or []:
                if not isinstance(tp, str):
                    continue
                url = versionless(tp)
                core = url[len(CORE_SD):] if url.startswith(CORE_SD) else ""
                if core and (core in self.plan.resource_types or core == "Resource"
                             or (base is not None and base.targets is not None and core in base.targets)):
                    target_types.add(core)
                elif (kind := self.known.sd_type(url)) is not None:
                    target_types.add(kind)
                    if kind in self.plan.structures:
                        target_profiles.append(url)
                    else:  # a Patient profile: the type is checked, the profile's content cannot be
                        self.note(eid, f"target profile {tp} constrains {kind}, which the validator has no rules "
                                  "for: only the target type was checked")  # fmt: skip
                else:
                    unknown_targets.append(tp)
        if profiles:
            node["profiles"] = profiles
        if unknown_targets:
            self.note(eid, f"target profile {', '.join(unknown_targets)} is not loaded: neither the target type "
                      "nor the target's conformance was checked")  # fmt: skip
        elif target_types and "Resource" not in target_types:
            base_targets = base.targets if base is not None else None
            outside = sorted(target_types - base_targets) if base_targets is not None else []
            if outside:
                self.note(eid, f"target {', '.join(outside)} is not allowed by the base: targets were not narrowed")
            elif base_targets is None or target_types != set(base_targets):
                node["targets"] = sorted(target_types)
        if target_profiles:
            node["targetProfiles"] = target_profiles

    def _binding(self, eid: str, binding: dict, node: dict) -> None:
        strength, vs = binding.get("strength"), binding.get("valueSet")
        if strength not in ("required", "extensible", "preferred", "example"):
            self.note(eid, f"binding without a known strength ({strength!r}): not checked")
            return
        if not isinstance(vs, str):
            if strength in ("required", "extensible"):
                self.note(eid, "binding without a value set: not checked")
            return
        node["binding"] = {"strength": strength, "valueSet": versionless(vs)}
        self.out.value_sets.add(versionless(vs))

    def _slicing(self, eid: str, slicing: dict, node: dict) -> None:
        discs = []
        for d in slicing.get("discriminator") or []:
            dtype, dpath = d.get("type"), d.get("path")
            if dtype not in _DISCRIMINATORS or not isinstance(dpath, str):
                self.note(eid, f"discriminator {dtype}:{dpath} is not supported: slices were not told apart")
                return
            dpath = dpath.replace("$this.", "") if dpath.startswith("$this.") else dpath
            if not re.fullmatch(r"(\$this|resolve\(\)|[a-z][A-Za-z0-9]*)(\.(resolve\(\)|[a-z][A-Za-z0-9]*))*", dpath):
                self.note(eid, f"discriminator path {d.get('path')} is not supported: slices were not told apart")
                return
            discs.append({"type": dtype, "path": dpath})
        target = node.setdefault("slicing", {})
        if discs:
            target["discriminator"] = discs
        target["rules"] = slicing.get("rules") if slicing.get("rules") in ("open", "closed", "openAtEnd") else "open"
        if slicing.get("ordered") is True:
            target["ordered"] = True
        if isinstance(slicing.get("description"), str):
            target["description"] = slicing["description"]

    def _invariants(self, eid: str, el: dict, context: str) -> None:
        for inv in el.get("constraint") or []:
            if not isinstance(inv, dict):
                continue
            key, expr = inv.get("key"), inv.get("expression")
            if not isinstance(key, str) or not isinstance(expr, str) or not inv.get("severity"):
                continue
            if (inv.get("source") and versionless(inv["source"]) != self.url) or key in self.base_keys:
                continue  # inherited from the base (a snapshot restates them): checked by the base rules
            if ":" in eid:
                self.note(eid, f"invariant {key} on a slice is not checked")
                continue
            self.out.invariants.append({
                "key": key, "context": context.replace("[x]", ""), "severity": inv["severity"],
                "human": inv.get("human") or key, "expression": expr, "source": self.url,
            })  # fmt: skip

    # -- after all elements ---------------------------------------------------------------------
    def _tidy(self, constraints: dict) -> None:
        """Drop empty constraints; slicing that the differential never described (a slice of an
        element other than extension without a slicing entry) becomes a note."""
        for name in list(constraints):
            body = constraints[name]
            slicing = body.get("slicing")
            if slicing is not None:
                if not slicing.get("discriminator") or not slicing.get("slices"):
                    if slicing.get("slices"):
                        self.note(f"{self.root_type}.{name}", "sliced without a discriminator in the differential: "
                                  "slices were not checked")  # fmt: skip
                    body.pop("slicing")
                else:
                    slicing.setdefault("rules", "open")
                    self._profile_selectors(f"{self.root_type}.{name}", body)
                for sl in (body.get("slicing") or {}).get("slices", {}).values():
                    self._tidy(sl.get("constraints", {}))
                    if "constraints" in sl and not sl["constraints"]:
                        sl.pop("constraints")
            if "constraints" in body:
                self._tidy(body["constraints"])
                if not body["constraints"]:
                    body.pop("constraints")
            if not body:
                constraints.pop(name)

    def _profile_selectors(self, where: str, body: dict) -> None:
        """A profile discriminator selects by the profiles of each slice: of its type on $this, of
        its reference targets on resolve(). A slice without a loaded one cannot be told apart."""
        slicing = body["slicing"]
        on_profile = [d for d in slicing["discriminator"] if d["type"] == "profile"]
        if not on_profile:
            return
        resolved = any("resolve()" in d["path"] for d in on_profile)
        for sname, sl in slicing["slices"].items():
            chosen = sl.get("targetProfiles") if resolved else sl.get("profiles")
            if not chosen:
                self.note(f"{where}:{sname}", "sliced by profile, but the slice's profile is not loaded: "
                          "the slicing was not checked")  # fmt: skip
                body.pop("slicing")
                return
            sl["profiles"] = list(chosen)
