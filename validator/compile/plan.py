"""Compiling rule packs into a plan: every structure, element, rule and invariant, resolved once.

The engine walks a resource with the plan and never looks at a pack again; FHIRPath is parsed
here, once per process, never per resource.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from validator.compile.packs import Pack, PackError
from validator.compile.terminology import ValueSet, canonical
from validator.fhir.primitives import PrimitiveType
from validator.fhirpath import natives as native
from validator.fhirpath.expressions import compile_expression
from validator.fhirpath.subset import Compiled, compile_subset
from validator.model import RuleInfo, Severity

# FHIR issue-type codes per kind of declared rule (OperationOutcome.issue.code).
_KIND_CODES = {
    "card": "required",
    "type": "structure",
    "binding": "code-invalid",
    "target": "structure",
    "format": "value",
    "invariant": "invariant",
}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: str  # card | type | binding | target | format | invariant | native
    path: str  # the element (or type) the rule is about
    severity: Severity
    code: str
    description: str
    source: str
    pack: str
    # Kinds of rule (e.g. binding) whose finding at the same place this rule's finding replaces:
    # the DICOM rules say more about a sopClass or modality coding than "not in the value set",
    # and one fact is reported once.
    replaces: frozenset[str] = frozenset()


def rule_infos(rules: dict[str, Rule]) -> dict[str, RuleInfo]:
    """The rules as a RunResult carries them to reports, which never see the plan."""
    return {rid: RuleInfo(r.id, r.kind, r.severity, r.code, r.description, r.source) for rid, r in rules.items()}


@dataclass(slots=True)
class Binding:
    strength: str
    url: str
    value_set: ValueSet | None  # None: not bundled
    rule: Rule
    # Extensible only: codes the element's definition admits where the value set has no suitable
    # concept (R4 series.modality: the non-acquisition modalities of CID 33, such as KO or SR).
    extension: ValueSet | None = None


@dataclass(slots=True)
class Invariant:
    key: str
    context: str
    severity: Severity
    human: str
    expression: str
    rule: Rule
    native: native.NativeCheck | None
    subset: Compiled | None  # the expression compiled to Python (fhirpath_subset), when it can be
    model: str

    @property
    def evaluator(self) -> str:
        """Which evaluator runs it, in words (for rules show and the rule table)."""
        if self.native is not None:
            return "native Python implementation of this expression (fhirpath/natives.py)"
        if self.subset is not None:
            return "FHIRPath, compiled to Python"
        return "FHIRPath, evaluated by fhirpathpy"

    @property
    def compiled(self) -> object:
        """fhirpathpy's compiled expression, parsed on first use (most invariants never need it)."""
        return compile_expression(self.expression, self.model)


@dataclass(slots=True, eq=False)
class ElementDef:
    path: str  # definition path, e.g. ImagingStudy.series.uid or Coding.system
    name: str  # JSON name without [x]
    min: int
    max: int | None  # None = *
    types: tuple[str, ...]
    choice: bool
    short: str
    targets: frozenset[str] | None = None
    binding: Binding | None = None
    children: Structure | None = None  # inline (BackboneElement / Element) content
    invariants: list[Invariant] = field(default_factory=list)
    card_rule: Rule | None = None
    type_rule: Rule | None = None
    target_rule: Rule | None = None

    @property
    def repeats(self) -> bool:
        return self.max is None or self.max > 1

    @property
    def card(self) -> str:
        return f"{self.min}..{'*' if self.max is None else self.max}"


@dataclass(slots=True, eq=False)
class Structure:
    name: str  # ImagingStudy, Coding, ImagingStudy.series
    kind: str  # resource | complex-type | backbone
    elements: list[ElementDef] = field(default_factory=list)
    # JSON property name -> (element, type code); choice elements appear once per allowed type
    props: dict[str, tuple[ElementDef, str]] = field(default_factory=dict)
    invariants: list[Invariant] = field(default_factory=list)
    binding: Binding | None = None
    required: list[ElementDef] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    fhir_version: str
    model: str
    structures: dict[str, Structure]
    primitives: dict[str, PrimitiveType]
    value_sets: dict[str, ValueSet]
    rules: dict[str, Rule]
    resource_types: frozenset[str]
    element_invariants: list[Invariant]  # context Element: every element (ele-1)
    packs: tuple[str, ...]
    sop_class_modalities: dict[str, frozenset[str]] = field(default_factory=dict)


def _severity(text: str) -> Severity:
    return Severity.parse(text)


def _cap(name: str) -> str:
    return name[0].upper() + name[1:]


class _Compiler:
    def __init__(self, packs: list[Pack], fhir_version: str, model: str) -> None:
        self.packs = packs
        self.fhir_version = fhir_version
        self.model = model
        self.rules: dict[str, Rule] = {}
        self.problems: list[str] = []
        self.structures: dict[str, Structure] = {}
        self.primitives: dict[str, PrimitiveType] = {}
        self.value_sets: dict[str, ValueSet] = {}
        self.element_invariants: list[Invariant] = []
        self.sop_class_modalities: dict[str, frozenset[str]] = {}
        self._raw: dict[str, tuple[Pack, dict]] = {}
        self._invariant_expressions: dict[str, str] = {}  # rule id -> FHIRPath
        self.choice_names: frozenset[str] = frozenset()

    def problem(self, pack: Pack, rule: str, fieldname: str, message: str) -> None:
        self.problems.append(f"{pack.path}: rule {rule}: field {fieldname}: {message}")

    def add_rule(self, pack: Pack, rule: Rule, fieldname: str) -> Rule:
        if rule.id in self.rules:
            other = self.rules[rule.id]
            self.problem(pack, rule.id, fieldname, f"duplicate rule id (also defined in pack {other.pack})")
        self.rules[rule.id] = rule
        return rule

    # -- pass 1: value sets, primitives, native rules; collect structures -------------------------
    def collect(self) -> None:
        for pack in self.packs:
            d = pack.data
            for vs in d.get("valueSets") or []:
                url = canonical(vs["url"])
                if url in self.value_sets:
                    self.problem(pack, url, "url", "duplicate value set")
                self.value_sets[url] = ValueSet.from_pack(vs)
            for name, prim in (d.get("primitives") or {}).items():
                rid = f"{pack.ruleset}:{name}:format"
                checked = any(k in prim for k in ("regex", "minValue", "maxValue", "maxLength", "check"))
                rule = Rule(
                    rid,
                    "format",
                    name,
                    Severity.ERROR,
                    "value",
                    f"{name} values must match the {name} format: {prim['description']}",
                    f"{_base(d['source'])}/datatypes.html#{name}",
                    pack.id,
                )
                if checked:  # a type whose JSON form is its whole format has no format rule
                    self.add_rule(pack, rule, f"primitives.{name}")
                self.primitives[name] = PrimitiveType(
                    name=name,
                    json=prim["json"],
                    regex=re.compile(prim["regex"]) if "regex" in prim else None,
                    min_value=prim.get("minValue"),
                    max_value=prim.get("maxValue"),
                    max_length=prim.get("maxLength"),
                    check=prim.get("check"),
                    rule=rule.id,
                    description=prim["description"],
                )
            for nr in d.get("rules") or []:
                self.add_rule(
                    pack,
                    Rule(
                        nr["id"],
                        "native",
                        "",
                        _severity(nr["severity"]),
                        nr["code"],
                        nr["description"],
                        nr["source"],
                        pack.id,
                        frozenset(nr.get("replaces") or ()),
                    ),
                    "rules",
                )
            for keyword, modalities in (d.get("sopClassModalities") or {}).items():
                self.sop_class_modalities[keyword] = frozenset(modalities)
            for sname, struct in (d.get("structures") or {}).items():
                if sname in self._raw:
                    self.problem(
                        pack, sname, "structures", f"structure defined twice (also in {self._raw[sname][0].path})"
                    )
                self._raw[sname] = (pack, struct)

    # -- pass 2: structures -----------------------------------------------------------------------
    def build(self) -> None:
        for sname, (_pack, raw) in self._raw.items():
            self.structures[sname] = Structure(name=sname, kind=raw["kind"])
        # Names of choice elements ([x]) anywhere in the model: compiled invariants defer to
        # fhirpathpy where a payload has such an element (see fhirpath_subset).
        self.choice_names = frozenset(
            rel.rpartition(".")[2][:-3]
            for _pack, raw in self._raw.values()
            for rel in raw["elements"]
            if rel.endswith("[x]")
        )
        for sname, (pack, raw) in self._raw.items():
            self._build_structure(pack, sname, raw)

    def _definition_url(self, pack: Pack, raw: dict, path: str) -> str:
        page = raw.get("definitions")
        base = _base(pack.data["source"])
        return f"{base}/{page}.html#{path}" if page else pack.data["source"]

    def _build_structure(self, pack: Pack, sname: str, raw: dict) -> None:
        top = self.structures[sname]
        by_path: dict[str, Structure] = {"": top}
        # Every path some element lies under (k[:i] for each dot of k): an element has children
        # when its path is one, as a scan of all the keys for `rel + "."` found at each element.
        below = {k[:i] for k in raw["elements"] for i, c in enumerate(k) if c == "."}
        for rel, el in raw["elements"].items():
            parent_rel, _, name = rel.rpartition(".")
            parent = by_path.get(parent_rel)
            path = f"{sname}.{rel}"
            if parent is None:
                self.problem(pack, path, "elements", f"parent element {sname}.{parent_rel} is not declared before it")
                continue
            lo, hi = el["card"].split("..")
            types = (el["type"],) if isinstance(el["type"], str) else tuple(el["type"])
            choice = name.endswith("[x]")
            base_name = name[:-3] if choice else name
            ed = ElementDef(
                path=path,
                name=base_name,
                min=int(lo),
                max=None if hi == "*" else int(hi),
                types=types,
                choice=choice,
                short=el.get("short", ""),
            )
            url = self._definition_url(pack, raw, path)
            rs = pack.ruleset
            if ed.min > 0 or ed.max is not None:
                ed.card_rule = self.add_rule(
                    pack,
                    Rule(
                        f"{rs}:{path}:card",
                        "card",
                        path,
                        Severity.ERROR,
                        _KIND_CODES["card"],
                        f"{path} must occur {_card_words(ed)} ({ed.short})".replace(" ()", ""),
                        url,
                        pack.id,
                    ),
                    f"elements.{rel}.card",
                )
            ed.type_rule = self.add_rule(
                pack,
                Rule(
                    f"{rs}:{path}:type",
                    "type",
                    path,
                    Severity.ERROR,
                    _KIND_CODES["type"],
                    f"{path} is of type {' | '.join(types)}",
                    url,
                    pack.id,
                ),
                f"elements.{rel}.type",
            )
            if "targets" in el:
                ed.targets = frozenset(el["targets"])
                ed.target_rule = self.add_rule(
                    pack,
                    Rule(
                        f"{rs}:{path}:target",
                        "target",
                        path,
                        Severity.ERROR,
                        _KIND_CODES["target"],
                        f"{path} may only refer to {', '.join(el['targets'])}",
                        url,
                        pack.id,
                    ),
                    f"elements.{rel}.targets",
                )
            if "binding" in el:
                ed.binding = self._binding(pack, path, el["binding"], url, f"elements.{rel}.binding")
            has_children = rel in below
            if has_children:
                ed.children = Structure(name=path, kind="backbone")
                by_path[rel] = ed.children
            for t in types:
                known = t in self.primitives or t in self.structures or t in ("Resource", "BackboneElement")
                if not known and not has_children:
                    self.problem(pack, path, f"elements.{rel}.type", f"unknown type {t!r}")
            parent.elements.append(ed)
            for t in types:
                key = base_name + _cap(t) if choice else base_name
                parent.props[key] = (ed, t)
            if ed.min > 0:
                parent.required.append(ed)
        if "binding" in raw:
            top.binding = self._binding(pack, sname, raw["binding"], self._definition_url(pack, raw, sname), "binding")
        for i, inv in enumerate(raw.get("invariants") or []):
            self._invariant(pack, sname, by_path, inv, f"structures.{sname}.invariants[{i}]")

    def _binding(self, pack: Pack, path: str, raw: dict, url: str, fieldname: str) -> Binding | None:
        strength = raw["strength"]
        if strength not in ("required", "extensible"):
            return None  # preferred and example bindings are guidance, never an issue
        vs_url = canonical(raw["valueSet"])
        vs = self.value_sets.get(vs_url)
        sev = Severity.ERROR if strength == "required" else Severity.WARNING
        rule = self.add_rule(
            pack,
            Rule(
                f"{pack.ruleset}:{path}:binding",
                "binding",
                path,
                sev,
                _KIND_CODES["binding"],
                f"{path} has a {strength} binding to {vs_url}"
                + ("" if vs else " (value set not bundled: codes are not checked)"),
                url,
                pack.id,
            ),
            fieldname,
        )
        extension = None
        if "extensibleWith" in raw:
            ext_url = canonical(raw["extensibleWith"])
            extension = self.value_sets.get(ext_url)
            if strength != "extensible" or extension is None:
                why = "only an extensible binding admits more codes" if extension else f"{ext_url} is not bundled"
                self.problem(pack, path, f"{fieldname}.extensibleWith", why)
        return Binding(strength=strength, url=vs_url, value_set=vs, rule=rule, extension=extension)

    def _invariant(self, pack: Pack, sname: str, by_path: dict[str, Structure], inv: dict, fieldname: str) -> None:
        key = inv["key"]
        ctx = inv["context"]
        rid = f"{pack.ruleset}:{key}"
        # One invariant may constrain several types (qty-3 on Quantity, Age, Count, ...): the same
        # key with the same expression is one rule; the same key with another expression, a clash.
        shared = self._invariant_expressions.get(rid) == inv["expression"]
        self._invariant_expressions.setdefault(rid, inv["expression"])
        rule = (
            self.rules[rid]
            if shared
            else self.add_rule(
                pack,
                Rule(
                    f"{pack.ruleset}:{key}",
                    "invariant",
                    ctx,
                    _severity(inv["severity"]),
                    _KIND_CODES["invariant"],
                    f"{key}: {inv['human']} ({ctx}: {inv['expression']})",
                    inv.get("source") or pack.data["source"],
                    pack.id,
                ),
                fieldname,
            )
        )
        # The FHIRPath itself was checked when the pack was read (packs.py). The pack says which
        # evaluator runs it: a native implementation only where it asks for one, and only the one
        # written for this very expression, so editing an expression cannot silently change it.
        impl = None
        if inv.get("evaluator") == "native":
            impl = native.lookup(key, inv["expression"])
            if impl is None:
                written = [e for k, e in native.native_pairs() if k == key]
                why = f"it implements {' / '.join(written)}" if written else "there is none for this key"
                message = f"native asked for, but no native implementation matches this expression ({why})"
                self.problem(pack, rid, f"{fieldname}.evaluator", message)
        subset = None if impl is not None else compile_subset(inv["expression"], self.choice_names)
        invariant = Invariant(
            key=key,
            context=ctx,
            severity=rule.severity,
            human=inv["human"],
            expression=inv["expression"],
            rule=rule,
            native=impl,
            subset=subset,
            model=self.model,
        )
        if ctx == "Element":
            self.element_invariants.append(invariant)
            return
        if ctx == sname:
            self.structures[sname].invariants.append(invariant)
            return
        if not ctx.startswith(sname + "."):
            self.problem(pack, f"{sname} {key}", f"{fieldname}.context", f"context {ctx} is not inside {sname}")
            return
        rel = ctx[len(sname) + 1 :]
        parent_rel, _, name = rel.rpartition(".")
        parent = by_path.get(parent_rel)
        target = next((e for e in parent.elements if e.name == name.removesuffix("[x]")), None) if parent else None
        if target is None:
            self.problem(pack, f"{sname} {key}", f"{fieldname}.context", f"no element {ctx}")
            return
        target.invariants.append(invariant)


def _base(source: str) -> str:
    return source.rsplit("/", 1)[0] if source.startswith("http") else source


def _card_words(ed: ElementDef) -> str:
    if ed.max is None:
        return f"at least {ed.min} time{'s' if ed.min != 1 else ''}"
    if ed.min == ed.max:
        return f"exactly {ed.min} time{'s' if ed.min != 1 else ''}"
    if ed.min == 0:
        return f"at most {ed.max} time{'s' if ed.max != 1 else ''}"
    return f"{ed.min} to {ed.max} times"


def compile_plan(packs: list[Pack], fhir_version: str, model: str) -> Plan:
    """Compile packs into a Plan; raise PackError naming file, rule and field on any problem."""
    c = _Compiler(packs, fhir_version, model)
    c.collect()
    c.build()
    if c.problems:
        raise PackError(c.problems)
    rt_vs = c.value_sets.get("http://hl7.org/fhir/ValueSet/resource-types")
    return Plan(
        fhir_version=fhir_version,
        model=model,
        structures=c.structures,
        primitives=c.primitives,
        value_sets=c.value_sets,
        rules=c.rules,
        resource_types=rt_vs.codes if rt_vs else frozenset(),
        element_invariants=c.element_invariants,
        packs=tuple(p.id for p in packs),
        sop_class_modalities=c.sop_class_modalities,
    )


def pack_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.yaml") if p.is_file())
