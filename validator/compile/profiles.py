"""Profile packs: constraints layered on a base resource, compiled into constraint trees.

A profile may only tighten its base: a narrower cardinality, fewer reference targets, a pattern
or fixed value, a binding at least as strong, must-support flags, and slicing. Anything that
loosens the base, or names an element the base does not have, is refused when the pack loads.

A profile may constrain a resource or a datatype (an Identifier profile, an extension
definition); an element (or slice) that names datatype or extension profiles is checked against
them wherever it occurs. A profile whose base is another profile is layered on it: the base's
constraints apply too. Packs of every FHIR version sit in one set; each profile is compiled
against the base plan of its own version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from validator import rule_ids as R
from validator.compile.packs import Pack, PackError, load_pack
from validator.compile.plan import Binding, ElementDef, Invariant, Plan, Rule, Structure
from validator.compile.terminology import ValueSet, canonical
from validator.fhirpath.subset import compile_subset
from validator.model import Severity

_KIND_CODES = {
    "card": "required",
    "type": "structure",
    "invariant": "invariant",
    "context": "structure",
    "target": "structure",
    "target-profile": "structure",
    "pattern": "value",
    "fixed": "value",
    "binding": "code-invalid",
    "must-support": "informational",
    "slicing": "structure",
}


@dataclass(eq=False)
class Slice:
    name: str
    min: int
    max: int | None
    must_support: bool
    types: tuple[str, ...]
    profiles: tuple[str, ...]
    constraint: Constraint  # the slice's own constraints (on each matched item and its children)
    card_rule: Rule


@dataclass(eq=False)
class Slicing:
    discriminators: tuple[tuple[str, str], ...]  # (type, path)
    rules: str  # open | closed | openAtEnd
    ordered: bool
    slices: list[Slice]
    rule: Rule | None  # unmatched items (closed, openAtEnd), several slices, order; None: it cannot fail

    def describe(self, sl: Slice) -> str:
        """The discriminator values that select a slice, e.g. 'system = urn:dicom:uid'."""
        parts = []
        for dtype, path in self.discriminators:
            target = sl.constraint.find(path)
            if dtype in ("value", "pattern") and target is not None and target.match_value is not None:
                parts.append(f"{path} = {_shown(target.match_value)}")
            elif dtype in ("value", "pattern") and target is not None and target.binding is not None:
                parts.append(f"{path} in {target.binding.url}")
            elif dtype == "exists" and target is not None:
                parts.append(f"{path} {'exists' if (target.min or 0) > 0 else 'absent'}")
            elif dtype == "type":
                parts.append(f"{path} is {' or '.join(sl.types)}")
            elif dtype == "profile":
                parts.append(f"{path} conforms to {' or '.join(sl.profiles)}")
        return ", ".join(parts) or "no discriminator value"


@dataclass(eq=False)
class Constraint:
    name: str  # JSON property name
    path: str  # e.g. ImagingStudy.identifier:studyUID.value (for messages and rule ids)
    base: ElementDef | None
    type_code: str | None
    min: int | None = None
    max: int | None = None
    max_set: bool = False
    targets: frozenset[str] | None = None
    target_profiles: tuple[str, ...] = ()
    pattern: object = None
    fixed: object = None
    binding: Binding | None = None
    must_support: bool = False
    children: dict[str, Constraint] = field(default_factory=dict)
    slicing: Slicing | None = None
    # A choice element (value[x]): its JSON names and their types; `types`: those still allowed.
    choices: dict[str, str] | None = None
    types: frozenset[str] | None = None
    type_rule: Rule | None = None
    # Datatype or extension profiles every value must conform to (compiled on first use).
    profile_urls: tuple[str, ...] = ()
    profile_refs: list[Profile] | None = None
    card_rule: Rule | None = None
    target_rule: Rule | None = None
    target_profile_rule: Rule | None = None
    value_rule: Rule | None = None
    must_support_rule: Rule | None = None

    @property
    def match_value(self) -> object:
        return self.fixed if self.fixed is not None else self.pattern

    @property
    def card(self) -> str:
        lo = self.min if self.min is not None else (self.base.min if self.base else 0)
        hi = self.max if self.max_set else (self.base.max if self.base else None)
        return f"{lo}..{'*' if hi is None else hi}"

    def find(self, path: str) -> Constraint | None:
        node: Constraint | None = self
        for part in path.split("."):
            if part == "$this" or node is None:
                continue
            found = node.children.get(part)
            if found is None and node.slicing is not None:
                # A value inside a slice of a child (coding:none.code): what that slice fixes.
                found = next((s.constraint.children[part] for s in node.slicing.slices
                              if part in s.constraint.children), None)  # fmt: skip
            node = found
        return node


@dataclass(eq=False)
class Profile:
    url: str
    name: str
    title: str
    resource_type: str
    fhir_version: str
    pack: str
    source: str
    root: Constraint  # children are the constrained top-level elements
    ig: str | None = None  # the Implementation Guide it was imported from
    base_url: str | None = None
    bases: tuple[Profile, ...] = ()  # the profiles it is layered on, nearest first
    invariants: list[Invariant] = field(default_factory=list)
    not_checked: tuple[tuple[str, str], ...] = ()  # (element, reason) the pack could not express
    not_checked_rule: Rule | None = None
    is_datatype: bool = False
    contexts: tuple[str, ...] = ()  # an extension definition's element contexts
    context_rule: Rule | None = None
    # Resource profiles of an IG: its extension definitions that say where they may be used, by url.
    extensions: dict[str, Profile] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.title} ({self.url})"

    def chain(self) -> list[Profile]:
        """This profile and every profile it is layered on, bases first."""
        return [*reversed(self.bases), self]


class _ProfileCompiler:
    def __init__(self, base: Plan, value_sets: dict[str, ValueSet], rules: dict[str, Rule],
                 resolve: Callable[[str], Profile | None] = lambda _url: None) -> None:  # fmt: skip
        self.base = base
        self.value_sets = value_sets
        self.rules = rules
        self.resolve = resolve  # another profile of the set, by canonical (compiled on demand)
        self.problems: list[str] = []
        self.notes: list[tuple[str, str]] = []  # (element, what was not checked) of the profile compiling

    def problem(self, pack: Pack, rule: str, fieldname: str, message: str) -> None:
        self.problems.append(f"{pack.path}: rule {rule}: field {fieldname}: {message}")

    def rule(self, pack: Pack, path: str, aspect: str, severity: Severity, description: str) -> Rule:
        rid = f"{pack.ruleset}:{path}:{aspect}"
        if rid in self.rules:
            self.problem(pack, rid, aspect, f"duplicate rule id (also defined in pack {self.rules[rid].pack})")
        rule = Rule(rid, aspect, path, severity, _KIND_CODES[aspect], description, pack.data["source"], pack.id)
        self.rules[rid] = rule
        return rule

    def compile(self, pack: Pack) -> Profile | None:
        header = pack.data["profile"]
        rtype = header["type"]
        struct = self.base.structures.get(rtype)
        if struct is None or struct.kind not in ("resource", "complex-type"):
            self.problem(pack, header["url"], "profile.type", f"no base rule pack for type {rtype}")
            return None
        root = Constraint(name=rtype, path=rtype, base=None, type_code=rtype)
        outer_notes, self.notes = self.notes, []  # a profile named inside compiles in the middle of this one
        self._children(pack, root, struct, pack.data["constraints"], "constraints")
        own_notes, self.notes = self.notes, outer_notes
        bases: tuple[Profile, ...] = ()
        base_url = header.get("base")
        if base_url and not base_url.startswith("http://hl7.org/fhir/StructureDefinition/"):
            found = self.resolve(canonical(base_url))
            if found is None:
                self.problem(pack, header["url"], "profile.base", f"base profile {base_url} is not loaded")
            elif found.resource_type != rtype:
                self.problem(pack, header["url"], "profile.base", f"base profile {base_url} constrains "
                             f"{found.resource_type}, not {rtype}")  # fmt: skip
            else:
                bases = (found, *found.bases)
        prof = Profile(
            url=header["url"],
            name=header["name"],
            title=header["title"],
            resource_type=rtype,
            fhir_version=pack.data["fhirVersion"],
            pack=pack.id,
            source=pack.data["source"],
            root=root,
            ig=header.get("ig"),
            base_url=base_url,
            bases=bases,
            is_datatype=struct.kind != "resource",
        )
        if header.get("context"):
            prof.contexts = tuple(header["context"])
            where = ", ".join(prof.contexts)
            prof.context_rule = self.rule(pack, rtype, "context", Severity.ERROR,
                                          f"{header['url']} may only be used on {where}")  # fmt: skip
        for i, inv in enumerate(pack.data.get("invariants") or []):
            compiled = self._invariant(pack, inv, f"invariants[{i}]")
            if compiled is not None:
                prof.invariants.append(compiled)
        notes = tuple((n["element"], n["reason"]) for n in pack.data.get("notChecked") or []) + tuple(own_notes)
        if notes:
            prof.not_checked = notes
            prof.not_checked_rule = self.base.rules.get(R.PROFILE_NOT_CHECKED)
        return prof

    def _invariant(self, pack: Pack, inv: dict, where: str) -> Invariant | None:
        rule = self.rule(pack, inv["key"], "invariant", Severity.parse(inv["severity"]),
                         f"{inv['key']}: {inv['human']} ({inv['context']}: {inv['expression']})")  # fmt: skip
        subset = compile_subset(inv["expression"], _choice_names(self.base))
        return Invariant(key=inv["key"], context=inv["context"], severity=rule.severity, human=inv["human"],
                         expression=inv["expression"], rule=rule, native=None, subset=subset,
                         model=self.base.model)  # fmt: skip

    def _structure_of(self, el: ElementDef, type_code: str) -> Structure | None:
        if el.children is not None:
            return el.children
        return self.base.structures.get(type_code)

    def _children(self, pack: Pack, parent: Constraint, struct: Structure | None, raw: dict, where: str) -> None:
        # Dotted keys (payloadType.coding) are nested: the first part must be a constraint or an element.
        for key in sorted(raw, key=lambda k: k.count(".")):
            first, _, rest = key.partition(".")
            body = raw[key] if not rest else {"constraints": {rest: raw[key]}}
            self._one(pack, parent, struct, first, body, f"{where}.{key}")

    def _one(self, pack: Pack, parent: Constraint, struct: Structure | None, name: str, body: dict, where: str) -> None:
        base_el = None
        tcode = None
        choices = None
        if struct is not None:
            for el in struct.elements:
                if not el.choice and el.name == name:
                    base_el, tcode = el, el.types[0]
                elif el.choice and name == f"{el.name}[x]":
                    base_el, tcode = el, (el.types[0] if len(el.types) == 1 else None)
                    choices = {k: t for k, (e, t) in struct.props.items() if e is el}
            if base_el is None and name in struct.props and struct.props[name][0].choice:
                base_el, tcode = struct.props[name]  # a typed key of a choice (valueQuantity)
        path = f"{parent.path}.{name}"
        if base_el is None:
            self.problem(pack, path, where, f"{name!r} is not an element of {struct.name if struct else parent.path}")
            return
        c = parent.children.get(name)
        if c is None:
            c = Constraint(name=name, path=path, base=base_el, type_code=tcode, choices=choices)
            parent.children[name] = c
        if "types" in body and choices is not None:
            allowed = frozenset(body["types"])
            if not allowed <= set(base_el.types):
                self.problem(pack, path, f"{where}.types", f"{', '.join(sorted(allowed - set(base_el.types)))} "
                             "not allowed by the base")  # fmt: skip
            c.types = allowed
            if len(allowed) == 1:
                c.type_code = next(iter(allowed))
            words = " or ".join(sorted(allowed))
            c.type_rule = self.rule(pack, path, "type", Severity.ERROR,
                                    f"{path} must be of type {words} in this profile")
        elif "types" in body:
            self.problem(pack, path, f"{where}.types", "types narrows a choice element (value[x]) only")
        self._apply(pack, c, body, where)
        child_struct = self._structure_of(base_el, c.type_code) if c.type_code else None
        if "constraints" in body:
            if child_struct is None:
                self.problem(pack, path, f"{where}.constraints", "constraints inside a choice element need one type: "
                             "narrow it with types, or constrain a typed key such as valueQuantity")  # fmt: skip
            else:
                self._children(pack, c, child_struct, body["constraints"], f"{where}.constraints")
        if "slicing" in body:
            c.slicing = self._slicing(pack, c, child_struct, body["slicing"], f"{where}.slicing")

    def _apply(self, pack: Pack, c: Constraint, body: dict, where: str) -> None:
        base = c.base
        assert base is not None
        if "card" in body:
            lo, hi = body["card"].split("..")
            c.min, c.max, c.max_set = int(lo), (None if hi == "*" else int(hi)), True
            if c.min < base.min:
                self.problem(pack, c.path, f"{where}.card", f"{body['card']} loosens the base minimum {base.card}")
            if base.max is not None and (c.max is None or c.max > base.max):
                self.problem(pack, c.path, f"{where}.card", f"{body['card']} loosens the base maximum {base.card}")
            if c.max is not None and c.min > c.max:
                self.problem(pack, c.path, f"{where}.card", f"min {c.min} is greater than max {c.max}")
            c.card_rule = self.rule(
                pack,
                c.path,
                "card",
                Severity.ERROR,
                f"{c.path} must occur {body['card']} in this profile (base {base.card})",
            )
        self._value_fields(pack, c, body, where)

    def _value_fields(self, pack: Pack, c: Constraint, body: dict, where: str) -> None:
        """What a constraint or a slice says of each value: targets, target profiles, pattern or
        fixed value, binding, datatype and extension profiles, must-support."""
        base = c.base
        assert base is not None
        if "targets" in body:
            c.targets = frozenset(body["targets"])
            if base.targets is not None and not c.targets <= base.targets:
                extra = sorted(c.targets - base.targets)
                self.problem(pack, c.path, f"{where}.targets", f"{', '.join(extra)} not allowed by the base")
            c.target_rule = self.rule(
                pack,
                c.path,
                "target",
                Severity.ERROR,
                f"{c.path} may only refer to {', '.join(sorted(c.targets))} in this profile",
            )
        if "targetProfiles" in body:
            c.target_profiles = tuple(body["targetProfiles"])
            c.target_profile_rule = self.rule(
                pack,
                c.path,
                "target-profile",
                Severity.ERROR,
                f"{c.path} must refer to a resource conforming to "
                f"{', '.join(c.target_profiles)} (checked when the target is resolvable)",
            )
        for aspect in ("pattern", "fixed"):
            if aspect in body:
                setattr(c, aspect, body[aspect])
                c.value_rule = self.rule(
                    pack,
                    c.path,
                    aspect,
                    Severity.ERROR,
                    f"{c.path} must {'equal' if aspect == 'fixed' else 'match'} {body[aspect]!r}",
                )
        if "binding" in body:
            b = body["binding"]
            if base.binding is not None and base.binding.strength == "required" and b["strength"] != "required":
                self.problem(pack, c.path, f"{where}.binding", "weakens the base's required binding")
            url = canonical(b["valueSet"])
            vs = self.value_sets.get(url)
            # Preferred and example bindings are guidance, never an issue (as in the base packs). A
            # value set that is not bundled is noted when a value meets it (binding-not-checked).
            if b["strength"] in ("required", "extensible"):
                sev = Severity.ERROR if b["strength"] == "required" else Severity.WARNING
                rule = self.rule(pack, c.path, "binding", sev, f"{c.path} has a {b['strength']} binding to {url}"
                                 + ("" if vs else " (value set not bundled: codes are not checked)"))  # fmt: skip
                c.binding = Binding(strength=b["strength"], url=url, value_set=vs, rule=rule)
        if body.get("profiles"):
            c.profile_urls = tuple(canonical(u) for u in body["profiles"])
            c.profile_refs = []
            for url in c.profile_urls:
                found = self.resolve(url)
                if found is None:
                    self.notes.append((c.path, f"profile {url} is not loaded: values were not checked against it"))
                elif found.is_datatype:
                    c.profile_refs.append(found)
        if body.get("mustSupport"):
            c.must_support = True
            lo = c.min if c.min is not None else base.min
            if lo == 0:  # a required element that is missing is already an error
                c.must_support_rule = self.rule(
                    pack,
                    c.path,
                    "must-support",
                    Severity.INFORMATION,
                    f"{c.path} is must-support: receivers expect it when the data exist",
                )

    def _slicing(self, pack: Pack, c: Constraint, struct: Structure | None, raw: dict, where: str) -> Slicing:
        discs = tuple((d["type"], d["path"]) for d in raw["discriminator"])
        # The slicing rule can only be broken by an unmatched item (closed, openAtEnd), by order,
        # or by an item matching several slices: open, unordered slicing with one slice has none.
        rule = None
        if raw["rules"] != "open" or raw.get("ordered") or len(raw["slices"]) > 1:
            rule = self.rule(
                pack, c.path, "slicing", Severity.ERROR,
                f"{c.path} is sliced by {', '.join(f'{t}:{p}' for t, p in discs)} "
                f"({raw['rules']}{', ordered' if raw.get('ordered') else ''})",
            )  # fmt: skip
        slices = [self._slice(pack, c, struct, sname, sraw, discs, f"{where}.slices.{sname}")
                  for sname, sraw in raw["slices"].items()]  # fmt: skip
        return Slicing(discriminators=discs, rules=raw["rules"], ordered=bool(raw.get("ordered")), slices=slices,
                       rule=rule)  # fmt: skip

    def _slice(self, pack: Pack, c: Constraint, struct: Structure | None, sname: str, sraw: dict,
               discs: tuple[tuple[str, str], ...], where: str) -> Slice:  # fmt: skip
        spath = f"{c.path}:{sname}"
        holder = Constraint(name=c.name, path=spath, base=c.base, type_code=c.type_code)
        on_this = any(p in ("$this", "resolve()") for _t, p in discs)
        on_target = any("resolve()" in p for t, p in discs if t == "profile")
        skip = ("mustSupport", "profiles") if on_target else ("mustSupport",)
        self._value_fields(pack, holder, {k: v for k, v in sraw.items() if k not in skip}, where)
        if on_this and holder.value_rule is not None:
            # A pattern or fixed value on $this is what puts an item in the slice: a selector, not
            # a check of its own; a profile discriminator on resolve() selects by target profiles.
            self.rules.pop(holder.value_rule.id, None)
            holder.value_rule = None
        if "constraints" in sraw:
            self._children(pack, holder, struct, sraw["constraints"], f"{where}.constraints")
        lo, hi = sraw["card"].split("..")
        smax = None if hi == "*" else int(hi)
        elmax = c.max if c.max_set else (c.base.max if c.base else None)
        if elmax is not None and (smax is None or smax > elmax):
            self.problem(pack, spath, f"{where}.card", f"{sraw['card']} exceeds the element's maximum {elmax}")
        card_rule = self.rule(
            pack, spath, "card", Severity.ERROR, f"slice {sname} of {c.path} must occur {sraw['card']}"
        )
        sl = Slice(name=sname, min=int(lo), max=smax, must_support=bool(sraw.get("mustSupport")),
                   types=tuple(sraw.get("types") or ()), profiles=tuple(sraw.get("profiles") or ()),
                   constraint=holder, card_rule=card_rule)  # fmt: skip
        needs = {
            # A required binding on $this also tells slices apart (membership of its value set).
            "value": lambda t: t is not None and (t.match_value is not None or _required(t)),
            "pattern": lambda t: t is not None and (t.match_value is not None or _required(t)),
            "exists": lambda t: t is not None and (t.min is not None or t.max_set),
            "type": lambda _t: bool(sl.types),
            "profile": lambda _t: bool(sl.profiles),
        }
        what = {"value": "a fixed or pattern value at the path", "pattern": "a fixed or pattern value at the path",
                "exists": "a cardinality at the path", "type": "types", "profile": "profiles"}  # fmt: skip
        if holder.match_value is None and any(p == "$this" for t, p in discs if t in ("value", "pattern")):
            # Nothing fixed on the item itself: the values its children fix select it (a
            # payloadType whose coding has a fixed system and code).
            holder.pattern = _derived_pattern(holder)
        for dtype, dpath in discs:
            target = holder.find(dpath)
            if not needs[dtype](target):
                self.problem(pack, spath, where, f"a {dtype} discriminator on {dpath} needs {what[dtype]}")
            if target is not None and target is not holder and dtype in ("value", "pattern", "exists"):
                # The value (or presence) at a discriminator path is what puts an item in the slice:
                # it is a selector, not a check of its own, so it has no rule that could fire.
                for attr in ("value_rule", "card_rule"):
                    selector = getattr(target, attr)
                    if selector is not None:
                        self.rules.pop(selector.id, None)
                        setattr(target, attr, None)
        return sl


def _shown(value: object) -> str:
    """A slice's selecting value in a message: codings as system#code, anything else compact."""
    if isinstance(value, dict):
        codings = value.get("coding") if isinstance(value.get("coding"), list) else [value]
        if all(isinstance(c, dict) and "code" in c for c in codings):
            return " + ".join(f"{c['system']}#{c['code']}" if c.get("system") else str(c["code"]) for c in codings)
        import json

        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _choice_names(plan: Plan) -> frozenset[str]:
    """Names of choice elements ([x]) in the plan: compiled invariants defer to fhirpathpy there."""
    names: set[str] = set()
    stack = list(plan.structures.values())
    while stack:
        struct = stack.pop()
        for el in struct.elements:
            if el.choice:
                names.add(el.name)
            if el.children is not None:
                stack.append(el.children)
    return frozenset(names)


def _derived_pattern(c: Constraint) -> dict | None:
    """The pattern the fixed and pattern values of a constraint's children make, or None."""
    out: dict = {}
    for name, child in c.children.items():
        value = child.match_value if child.match_value is not None else _derived_pattern(child)
        if value is not None:
            out[name] = [value] if child.base is not None and child.base.repeats else value
    return out or None


def _required(c: Constraint) -> bool:
    return c.binding is not None and c.binding.strength == "required" and c.binding.value_set is not None


class ProfileSet:
    """The profile packs, by canonical URL and by short name, and the value sets beside them.

    Every pack is read and checked against the meta-schema when the set is made (a broken pack is
    a PackError before anything runs); a profile is compiled against the base plan of its FHIR
    version only when a run first needs it (--profile, a meta.profile, a target profile), so a
    large collection of profiles costs a run only the ones it uses. Packs imported from an IG
    (`ig_packs`) come after the bundled ones: a profile or value set with the URL of a bundled one
    replaces it (the user asked for that IG), and a short name already taken is left out."""

    def __init__(self, packs: list[Pack], base: Plan, ig_packs: list[Pack] = (),
                 plans: Callable[[str], Plan] | None = None) -> None:  # fmt: skip
        self._base = base
        self._plans = plans or (lambda _version: base)
        problems: list[str] = []
        self._value_sets: dict[str, ValueSet] = {}
        ig_urls = {canonical(vs["url"]) for p in ig_packs for vs in p.data.get("valueSets") or []}
        ig_profiles = {p.data["profile"]["url"] for p in ig_packs if p.data.get("profile")}
        for pack in [*packs, *ig_packs]:
            from_ig = pack in ig_packs
            for vs in pack.data.get("valueSets") or []:
                url = canonical(vs["url"])
                if not from_ig and url in ig_urls:
                    continue
                if url in self._value_sets:
                    if from_ig:
                        continue  # the same value set from two IGs (a DICOM context group): the first
                    problems.append(f"{pack.path}: rule {url}: field url: duplicate value set")
                self._value_sets[url] = ValueSet.from_pack(vs)
        self._packs: dict[str, Pack] = {}  # url -> its pack
        self._names: dict[str, str] = {}  # short name -> url
        self._rulesets: dict[str, str] = {}  # ruleset -> url of the profile that uses it
        replaced: dict[str, str] = {}  # short names of bundled profiles an IG's replace
        for pack in [*packs, *ig_packs]:
            header = pack.data.get("profile")
            if header is None:
                continue
            from_ig = pack in ig_packs
            if not from_ig and header["url"] in ig_profiles:
                replaced[header["name"]] = header["url"]  # its short name stays, for the IG's profile
                continue
            if header["url"] in self._packs:
                other = self._packs[header["url"]]
                problems.append(f"{pack.path}: rule {header['url']}: field profile: also defined in pack {other.id}")
            if header["name"] in self._names:
                if not from_ig:
                    other = self._packs[self._names[header["name"]]]
                    problems.append(f"{pack.path}: rule {header['name']}: field profile: also defined in pack "
                                    f"{other.id}")  # fmt: skip
                    continue
            else:
                self._names[header["name"]] = header["url"]
            self._packs[header["url"]] = pack
        for name, url in replaced.items():
            self._names.setdefault(name, url)
        if problems:
            raise PackError(problems)
        self._rules: dict[str, Rule] = {}
        self._rule_versions: dict[str, str] = {}  # rule id -> the FHIR version of its profile
        self._compilers: dict[str, _ProfileCompiler] = {}
        self._compiled: dict[str, Profile | None] = {}

    def _compiler(self, fhir_version: str) -> _ProfileCompiler:
        if fhir_version not in self._compilers:
            plan = self._plans(fhir_version)
            value_sets = {**plan.value_sets, **self._value_sets}
            self._compilers[fhir_version] = _ProfileCompiler(plan, value_sets, self._rules, self._find_url)
        return self._compilers[fhir_version]

    def _find_url(self, url: str) -> Profile | None:
        return self.find(url) if url in self._packs else None

    def _by_tail(self, key: str) -> str:
        """The one profile whose short name or canonical's last segment is `key`, case aside (an
        IG names its profile MadoImagingStudy, its short name is madoimagingstudy); '' when none
        or several are."""
        folded = key.casefold()
        found = {u for n, u in self._names.items() if n.casefold() == folded}
        found |= {u for u in self._packs if u.rsplit("/", 1)[-1].casefold() == folded}
        return found.pop() if len(found) == 1 else ""

    def find(self, key: str) -> Profile | None:
        """A profile by canonical URL (a |version suffix is ignored) or short name, compiled on first use."""
        url = key.split("|", 1)[0]
        if url not in self._packs:
            url = self._names.get(key, "") or self._by_tail(key)
        if url not in self._packs:
            return None
        if url not in self._compiled:
            pack = self._packs[url]
            compiler = self._compiler(pack.data["fhirVersion"])
            self._compiled[url] = None  # while it compiles: a profile that names itself finds nothing
            # Rule ids are ruleset-prefixed: two imported profiles with one id (the same SD id in two
            # IGs) get the second a numbered ruleset.
            ruleset = pack.data["ruleset"]
            imported = "ig" in pack.data["profile"]
            if imported and self._rulesets.setdefault(ruleset, url) != url:
                n = 2
                while f"{ruleset}-{n}" in self._rulesets:
                    n += 1
                self._rulesets[f"{ruleset}-{n}"] = url
                pack = Pack(pack.path, {**pack.data, "ruleset": f"{ruleset}-{n}", "pack": f"{pack.id}-{n}"})
            self._compiled[url] = compiler.compile(pack)
            # An imported profile whose definition the pack format cannot hold in places (a slice
            # without a discriminating value, a cardinality that loosens its base) loses only
            # those places, named as not checked; a hand-written pack is refused.
            attempts = 0
            while compiler.problems and imported and attempts < 50:
                from validator.compile.ig.importer import prune

                data = copy.deepcopy(pack.data)
                problems, compiler.problems = compiler.problems, []
                if not prune(data, problems):
                    compiler.problems = problems
                    break
                for rid in [rid for rid, r in self._rules.items() if r.pack == pack.id]:
                    del self._rules[rid]
                pack = Pack(pack.path, data)
                self._compiled[url] = compiler.compile(pack)
                attempts += 1
            if compiler.problems:
                problems, compiler.problems = compiler.problems, []
                raise PackError(problems)
            for rid, rule in self._rules.items():
                if rule.pack == pack.id:
                    self._rule_versions.setdefault(rid, pack.data["fhirVersion"])
            compiled = self._compiled[url]
            ig = pack.data["profile"].get("ig")
            if compiled is not None and not compiled.is_datatype:  # hand-written packs: ig None
                for other, other_pack in self._packs.items():
                    header = other_pack.data["profile"]
                    if header.get("ig") == ig and header.get("context") and (ext := self.find(other)) is not None:
                        compiled.extensions[other] = ext
        return self._compiled[url]

    @property
    def profiles(self) -> dict[str, Profile]:
        """Every profile, compiled (for listings and rule tables, which show them all)."""
        found = {url: self.find(url) for url in self._packs}
        return {url: prof for url, prof in found.items() if prof is not None}

    @property
    def by_name(self) -> dict[str, Profile]:
        return {name: prof for name, url in self._names.items() if (prof := self.find(url)) is not None}

    @property
    def rules(self) -> dict[str, Rule]:
        self.profiles  # noqa: B018 - every profile's rules, so every profile compiled
        return self._rules

    def rules_for(self, number: str) -> dict[str, Rule]:
        """The rules of the profiles written for a FHIR version's family (4.0.1: R4 and R4B)."""
        self.profiles  # noqa: B018 - every profile compiled
        family = number.split(".")[0]
        return {rid: r for rid, r in self._rules.items()
                if self._rule_versions.get(rid, number).split(".")[0] == family}  # fmt: skip

    @property
    def compiled_rules(self) -> dict[str, Rule]:
        """The rules of the profiles compiled so far."""
        return self._rules

    def header(self, url: str) -> dict | None:
        """A profile's header (url, name, title, type, ...) without compiling it."""
        pack = self._packs.get(url.split("|", 1)[0])
        return pack.data["profile"] if pack else None

    def fhir_version_of(self, url: str) -> str | None:
        """The FHIR version a profile is written for, without compiling it."""
        pack = self._packs.get(url.split("|", 1)[0])
        return pack.data["fhirVersion"] if pack else None

    def target_profile_sets(self) -> tuple[tuple[str, ...], ...]:
        """Every list of target profiles some constraint asks for, read from the packs as written."""
        found: dict[tuple[str, ...], None] = {}
        stack: list[object] = [p.data.get("constraints") for p in self._packs.values()]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("targetProfiles"), list):
                    found[tuple(node["targetProfiles"])] = None
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return tuple(sorted(found))


def compile_profiles(files: list[Path], base: Plan, ig_packs: list[Pack] = (),
                     plans: Callable[[str], Plan] | None = None) -> ProfileSet:  # fmt: skip
    """The profile packs (and value-set packs beside them): each profile is compiled against the
    plan of its FHIR version (`plans`: version number -> plan; without it, only `base`'s version)."""
    packs = [load_pack(f) for f in files]
    if plans is None:
        packs = [p for p in packs if p.data.get("fhirVersion") in (None, base.fhir_version)
                 or p.data.get("fhirVersion", "").split(".")[0] == base.fhir_version.split(".")[0]]  # fmt: skip
        ig_packs = [p for p in ig_packs if p.data.get("fhirVersion") in (None, base.fhir_version)]
    return ProfileSet(packs, base, list(ig_packs), plans)
