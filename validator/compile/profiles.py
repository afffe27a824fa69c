"""Profile packs: constraints layered on a base resource, compiled into constraint trees.

A profile may only tighten its base: a narrower cardinality, fewer reference targets, a pattern
or fixed value, a binding at least as strong, must-support flags, and slicing. Anything that
loosens the base, or names an element the base does not have, is refused when the pack loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from validator.compile.packs import Pack, PackError, load_pack
from validator.compile.plan import Binding, ElementDef, Plan, Rule, Structure
from validator.compile.terminology import ValueSet, canonical
from validator.model import Severity

_KIND_CODES = {
    "card": "required",
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
    constraint: Constraint  # the slice's own element constraints (children of each matched item)
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
                parts.append(f"{path} = {target.match_value}")
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
            if part == "$this":
                continue
            node = node.children.get(part) if node else None
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

    @property
    def label(self) -> str:
        return f"{self.title} ({self.url})"


class _ProfileCompiler:
    def __init__(self, base: Plan, value_sets: dict[str, ValueSet], rules: dict[str, Rule]) -> None:
        self.base = base
        self.value_sets = value_sets
        self.rules = rules
        self.problems: list[str] = []

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
        if struct is None or struct.kind != "resource":
            self.problem(pack, header["url"], "profile.type", f"no base rule pack for resource type {rtype}")
            return None
        root = Constraint(name=rtype, path=rtype, base=None, type_code=rtype)
        self._children(pack, root, struct, pack.data["constraints"], "constraints")
        return Profile(
            url=header["url"],
            name=header["name"],
            title=header["title"],
            resource_type=rtype,
            fhir_version=pack.data["fhirVersion"],
            pack=pack.id,
            source=pack.data["source"],
            root=root,
        )

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
        if struct is not None:
            for el in struct.elements:
                if el.name == name and not el.choice:
                    base_el, tcode = el, el.types[0]
        path = f"{parent.path}.{name}"
        if base_el is None:
            self.problem(pack, path, where, f"{name!r} is not an element of {struct.name if struct else parent.path}")
            return
        c = parent.children.get(name)
        if c is None:
            c = Constraint(name=name, path=path, base=base_el, type_code=tcode)
            parent.children[name] = c
        self._apply(pack, c, body, where)
        child_struct = self._structure_of(base_el, tcode)
        if "constraints" in body:
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
            if vs is None and b["strength"] in ("required", "extensible"):
                self.problem(pack, c.path, f"{where}.binding", f"value set {url} is not bundled with any pack")
            sev = Severity.ERROR if b["strength"] == "required" else Severity.WARNING
            rule = self.rule(pack, c.path, "binding", sev, f"{c.path} has a {b['strength']} binding to {url}")
            c.binding = Binding(strength=b["strength"], url=url, value_set=vs, rule=rule)
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
        holder = Constraint(name=c.name, path=spath, base=c.base, type_code=c.type_code,
                            pattern=sraw.get("pattern"), fixed=sraw.get("fixed"))  # fmt: skip
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
            "value": lambda t: t is not None and t.match_value is not None,
            "pattern": lambda t: t is not None and t.match_value is not None,
            "exists": lambda t: t is not None and (t.min is not None or t.max_set),
            "type": lambda _t: bool(sl.types),
            "profile": lambda _t: bool(sl.profiles),
        }
        what = {"value": "a fixed or pattern value at the path", "pattern": "a fixed or pattern value at the path",
                "exists": "a cardinality at the path", "type": "types", "profile": "profiles"}  # fmt: skip
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


class ProfileSet:
    """The profile packs of one FHIR version, by canonical URL and by short name.

    Every pack is read and checked against the meta-schema when the set is made (a broken pack is
    a PackError before anything runs); a profile is compiled against the base plan only when a
    run first needs it (--profile, a meta.profile, a target profile), so a large collection of
    profiles costs a run only the ones it uses."""

    def __init__(self, packs: list[Pack], base: Plan) -> None:
        self._base = base
        problems: list[str] = []
        value_sets = dict(base.value_sets)
        for pack in packs:
            for vs in pack.data.get("valueSets") or []:
                url = canonical(vs["url"])
                if url in value_sets:
                    problems.append(f"{pack.path}: rule {url}: field url: duplicate value set")
                value_sets[url] = ValueSet.from_pack(vs)
        self._packs: dict[str, Pack] = {}  # url -> its pack
        self._names: dict[str, str] = {}  # short name -> url
        for pack in packs:
            header = pack.data.get("profile")
            if header is None:
                continue
            for key, index in ((header["url"], self._packs), (header["name"], self._names)):
                if key in index:
                    other = index[key] if isinstance(index[key], Pack) else self._packs[index[key]]
                    problems.append(f"{pack.path}: rule {key}: field profile: also defined in pack {other.id}")
            self._packs[header["url"]] = pack
            self._names[header["name"]] = header["url"]
        if problems:
            raise PackError(problems)
        self._compiler = _ProfileCompiler(base, value_sets, {})
        self._compiled: dict[str, Profile | None] = {}

    def find(self, key: str) -> Profile | None:
        """A profile by canonical URL (a |version suffix is ignored) or short name, compiled on first use."""
        url = key.split("|", 1)[0]
        if url not in self._packs:
            url = self._names.get(key, "")
        if url not in self._packs:
            return None
        if url not in self._compiled:
            self._compiled[url] = self._compiler.compile(self._packs[url])
            if self._compiler.problems:
                problems, self._compiler.problems = self._compiler.problems, []
                raise PackError(problems)
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
        return self._compiler.rules

    @property
    def compiled_rules(self) -> dict[str, Rule]:
        """The rules of the profiles compiled so far."""
        return self._compiler.rules

    def header(self, url: str) -> dict | None:
        """A profile's header (url, name, title, type, ...) without compiling it."""
        pack = self._packs.get(url.split("|", 1)[0])
        return pack.data["profile"] if pack else None

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


def compile_profiles(files: list[Path], base: Plan) -> ProfileSet:
    """The profile packs (and value-set packs beside them) of the base plan's FHIR version."""
    packs = [load_pack(f) for f in files]
    packs = [
        p
        for p in packs
        if p.data.get("fhirVersion") in (None, base.fhir_version)
        or p.data.get("fhirVersion", "").split(".")[0] == base.fhir_version.split(".")[0]
    ]
    return ProfileSet(packs, base)
