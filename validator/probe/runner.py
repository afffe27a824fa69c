"""A probe run: CapabilityStatement, anchor search, harvested searches, the fixed checks, the cases.

Every request goes through the shared read-only client (POST only for `_search`); a request that
gets no answer is a failed case naming the URL and the cause, and the run goes on with the rest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import urlencode, urljoin

import httpx

from validator.api import Validator
from validator.model import CaseResult, Issue, ResourceResult, RunResult, Severity
from validator.net.client import ClientSettings, HttpClient, NetworkError
from validator.probe import checks
from validator.probe.checks import Page
from validator.probe.matchers import parse_zone, references
from validator.probe.params import Param, table_for
from validator.probe.plan import Criterion, Search, other_code, study_with, variants
from validator.probe.profiles import ServerProfile, load_profile
from validator.rule_ids import INTERNAL_ERROR
from validator.run.faults import describe

ACCEPT = {"accept": "application/fhir+json"}
T = TypeVar("T")
UNKNOWN_PARAMETER = "x-imaging-validator-unknown"
# CapabilityStatement.fhirVersion -> the version whose parameter table and rules apply.
VERSION_PREFIXES = (("4.0", "R4"), ("4.3", "R4B"), ("5.0", "R5"))


@dataclass(frozen=True)
class ProbeOptions:
    base_url: str
    patient: str | None = None
    identifier: str | None = None
    server_profile: str = "default"
    fhir_version: str | None = None  # None: from the CapabilityStatement
    profiles: tuple[str, ...] = ()  # validation profiles for the returned studies
    fail_on: Severity | None = Severity.ERROR  # None: returned studies' findings never fail a case
    client: ClientSettings = field(default_factory=ClientSettings)
    max_pages: int = 20  # pages followed per search
    max_studies: int = 50  # studies the anchor search harvests from
    server_zone: str | None = None  # the zone the server reads dates without one in (Z, +01:00); None: unknown


def probe(options: ProbeOptions, transport: httpx.BaseTransport | None = None) -> RunResult:
    """Probe a server; raises UnknownServerProfile, UnknownVersion, UnknownProfile (usage errors)
    before any request; every server problem is a failed case."""
    profile = load_profile(options.server_profile)
    # Made before any request, so a bad --fhir-version or --profile is a usage error; replaced by
    # the CapabilityStatement's version when none was asked for.
    validator = Validator(fhir_version=options.fhir_version or profile.fhir_version, profiles=options.profiles,
                          fail_on=options.fail_on)  # fmt: skip
    with HttpClient(options.client, transport=transport) as client:
        return _Probe(options, profile, client, validator).run()


class _Probe:
    def __init__(self, options: ProbeOptions, profile: ServerProfile, client: HttpClient, validator: Validator) -> None:
        self.o = options
        self.profile = profile
        self.client = client
        self.validator = validator
        self.base = options.base_url.rstrip("/")
        self.suite = f"probe {self.base} ({profile.name})"
        self.cases: list[CaseResult] = []
        self.validated: dict[str, ResourceResult] = {}
        self.patients: dict[str, dict | None] = {}
        self.zone = parse_zone(options.server_zone) if options.server_zone else None

    # -- plumbing ---------------------------------------------------------------------------------
    def case(self, title: str, problems: list[str], results: tuple[ResourceResult, ...] = (), started: float = 0.0
             ) -> None:  # fmt: skip
        elapsed = time.perf_counter() - started if started else 0.0
        self.cases.append(CaseResult(self.suite, title, self.o.fail_on or Severity.FATAL, results, tuple(problems),
                                     elapsed))  # fmt: skip

    def get(self, url: str, method: str = "GET", data: dict[str, str] | None = None) -> Page:
        try:
            answer = self.client.fetch(url, method=method, headers=ACCEPT, data=data, allow_post=method == "POST")
        except NetworkError as exc:
            return Page(url, None, problems=[f"no answer: {exc}"])
        return checks.read_page(url, answer)

    def url(self, query: list[tuple[str, str]], path: str = "ImagingStudy") -> str:
        return f"{self.base}/{path}" + (f"?{urlencode(query, safe='|,:/')}" if query else "")

    def search_all(self, url: str) -> tuple[list[Page], list[str]]:
        """The pages of a search, following `next` links within the bound; paging problems."""
        pages, problems, seen = [], [], {url}
        current = url
        while True:
            page = self.get(current)
            pages.append(page)
            b = page.bundle
            if b is None or (page.answer is not None and page.answer.status != 200):
                break
            nxt = checks.link(b, "next")
            if nxt is None:
                break
            nxt = urljoin(current, nxt)
            if nxt in seen:
                problems.append(f"expected paging to end; the next link of page {len(pages)} repeats an earlier "
                                f"page ({nxt}): a paging loop")  # fmt: skip
                break
            if len(pages) >= self.o.max_pages:
                problems.append(f"stopped after {self.o.max_pages} pages (--max-pages); later pages not checked")
                break
            seen.add(nxt)
            current = nxt
        entries = [e for p in pages for e in checks.entries(p.bundle) if isinstance(e, dict)]
        ids = [checks.study_id(m) for m in checks.matches(entries)]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes and len(pages) > 1:
            problems.append(f"expected each match once across pages; repeated: {', '.join(map(str, dupes))}")
        first = pages[0].bundle
        total = first.get("total") if first else None
        if isinstance(total, int) and not problems and len(set(ids)) < total and len(pages) < self.o.max_pages:
            problems.append(f"expected {total} match(es) (Bundle.total) across the pages; got {len(set(ids))} "
                            "and no further next link")  # fmt: skip
        return pages, problems

    def patient(self, pid: str) -> dict | None:
        if pid not in self.patients:
            page = self.get(f"{self.base}/Patient/{pid}")
            body = page.body if isinstance(page.body, dict) and page.body.get("resourceType") == "Patient" else None
            self.patients[pid] = body
        return self.patients[pid]

    def validate(self, resource: dict, where: str) -> tuple[ResourceResult, bool]:
        """The validator's result for a returned resource (once per version of it); True when new."""
        key = hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()
        if key in self.validated:
            return self.validated[key], False
        result = replace(self.validator.validate_resource(resource, source=where), source=where)
        self.validated[key] = result
        return result, True

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> RunResult:
        declared, includes = self.capabilities()
        table = table_for(self.validator.version.name)
        offered = list(self.profile.parameters or [*table, "patient.identifier"])
        self.declared_case(declared, table, offered)
        anchor = self.anchor_query()
        studies = self.anchor_search(anchor)
        if studies:
            for search in self.guarded("planning the searches", self.plan, studies, anchor, table, offered,
                                       declared) or []:  # fmt: skip
                self.guarded(search.label, self.run_search, search)
            self.guarded("_include", self.include_case, anchor, studies, includes)
            self.guarded("paging", self.paging_case, anchor, studies)
            self.guarded("POST _search", self.post_case, anchor, studies)
            self.guarded("unknown parameter", self.unknown_parameter_case, anchor, studies)
        self.guarded("required parameters", self.required_case, studies, table)
        results = tuple(r for c in self.cases for r in c.results)
        rules = self.validator.run(()).rules  # the rules of what was validated, for SARIF and HTML
        return RunResult(results, self.o.fail_on, rules=rules, cases=tuple(self.cases))

    def guarded(self, what: str, check: Callable[..., T], *args: object) -> T | None:
        """A defect of the probe on one check is a failed case and an engine:internal-error finding
        (exit 3), and the other checks still run: the engine never stops on a server's answer."""
        try:
            return check(*args)
        except Exception as exc:
            message = f"probe failed on {what}: {describe(exc, False)}"
            issue = Issue(Severity.FATAL, "exception", INTERNAL_ERROR, "", message)
            result = ResourceResult(source=self.base, entry=None, resource_type=None, id=None, fhir_version=None,
                                    profiles=(), issues=(issue,))  # fmt: skip
            self.case(f"{what}: not checked, the probe failed", [issue.message], (result,))
            return None

    def capabilities(self) -> tuple[dict[str, str] | None, list[str]]:
        started = time.perf_counter()
        url = f"{self.base}/metadata"
        page = self.get(url)
        problems = list(page.problems)
        body = page.body if isinstance(page.body, dict) else {}
        cs = body if body.get("resourceType") == "CapabilityStatement" else None
        if page.answer is not None and page.answer.status != 200:
            problems.append(f"expected HTTP 200; got {page.answer.status}")
        if cs is None and not any(p.startswith("no answer") for p in problems):
            problems.append("expected a CapabilityStatement; got "
                            + (str(page.body.get("resourceType")) if isinstance(page.body, dict) else "no resource"))
        title = f"CapabilityStatement: GET {url}"
        if cs is not None and not self.validator.version_requested:
            title += self.adopt_version(str(cs.get("fhirVersion", "")))
        self.case(title, problems, started=started)
        if cs is None:
            return None, []
        for rest in cs.get("rest") or []:
            for res in (rest.get("resource") or []) if isinstance(rest, dict) else []:
                if isinstance(res, dict) and res.get("type") == "ImagingStudy":
                    params = {p.get("name"): p.get("type") for p in res.get("searchParam") or [] if isinstance(p, dict)}
                    declared = {k: str(v) for k, v in params.items() if isinstance(k, str)}
                    return declared, list(res.get("searchInclude") or [])
        self.cases[-1] = replace(self.cases[-1], problems=(*self.cases[-1].problems, (
            "expected ImagingStudy among the CapabilityStatement's resources with its search parameters "
            "(search.html: servers SHALL declare the searches they support); it is not there")))
        return {}, []

    def adopt_version(self, number: str) -> str:
        """Use the server's FHIR version for the parameter table and the rules; what was chosen."""
        name = next((n for prefix, n in VERSION_PREFIXES if number.startswith(prefix)), None)
        if name is None:
            used = self.validator.version.name
            return f" (fhirVersion {number or 'missing'}: no parameter table for it, {used}'s used)"
        if name != self.validator.version.name:
            self.validator = Validator(fhir_version=name, profiles=self.o.profiles, fail_on=self.o.fail_on)
        return f" (FHIR {name})"

    def declared_case(self, declared: dict[str, str] | None, table: dict[str, Param], offered: list[str]) -> None:
        if declared is None:
            self.case("declared parameters: not judged (no CapabilityStatement); every profile parameter is tried", [])
            return
        problems = []
        missing = [p for p in offered if p.split(".")[0] not in declared]
        for name in self.profile.required:
            if name.split(".")[0] not in declared:
                problems.append(f"expected the CapabilityStatement to declare ImagingStudy search parameter {name!r} "
                                f"(server profile {self.profile.name}); it does not")  # fmt: skip
        for name, kind in sorted(declared.items()):
            if name in table and kind != table[name].type:
                problems.append(f"expected {name!r} to be declared as type {table[name].type} (the spec's "
                                f"{self.validator.version.name} parameter); declared as {kind!r}")  # fmt: skip
        title = f"declared parameters: {len(offered) - len(missing)} of {len(offered)} of profile {self.profile.name}"
        if missing:
            title += f" (not declared, not searched: {', '.join(missing)})"
        self.case(title, problems)

    def anchor_query(self) -> list[tuple[str, str]]:
        if self.o.patient:
            return [("patient", self.o.patient.split("/")[-1])]
        return [("identifier", self.o.identifier or "")]

    def anchor_search(self, anchor: list[tuple[str, str]]) -> list[dict]:
        name, value = anchor[0]
        criterion = Criterion(name, value, table_for(self.validator.version.name)[name])
        search = Search(f"anchor {name}={value}", anchor, [criterion])
        studies = self.run_search(search)[: self.o.max_studies]
        if not studies:
            self.case(f"anchor search finds studies to harvest from: GET {self.url(anchor)}",
                      ["expected at least one ImagingStudy; got none, so no parameter could be searched"])  # fmt: skip
        return studies

    def plan(self, studies: list[dict], anchor: list[tuple[str, str]], table: dict[str, Param], offered: list[str],
             declared: dict[str, str] | None) -> list[Search]:  # fmt: skip
        out: list[Search] = []
        anchored = {"patient", "subject", "identifier", "patient.identifier"}
        for name in offered:
            if declared is not None and name.split(".")[0] not in declared:
                continue
            if name == "patient.identifier":
                out.extend(self.chain_searches(studies))
                continue
            param = table.get(name)
            if param is None:
                continue
            study = study_with(param, studies)
            if study is None:
                continue
            base = [] if name in anchored else list(anchor)
            for label, value in variants(param, study):
                out.append(Search(f"{name} ({label}) = {value}", [*base, (name, value)],
                                  [Criterion(name, value, param)], study))  # fmt: skip
            if param.type == "token":
                other = other_code(param, study, studies)
                mine = next((v for lbl, v in variants(param, study) if lbl == "code"), None)
                if other and mine:
                    value = f"{mine},{other}"
                    out.append(Search(f"{name} (comma OR) = {value}", [*base, (name, value)],
                                      [Criterion(name, value, param)], study))  # fmt: skip
            code = next((v for lbl, v in variants(param, study) if lbl == "code"), "")
            for modifier in self.profile.modifiers.get(name, ()):
                value = {"missing": "false", "not": code}.get(modifier, "")
                key = f"{name}:{modifier}"
                out.append(Search(f"{key} = {value}", [*base, (key, value)], [Criterion(key, value, param)], study))
        return out

    def chain_searches(self, studies: list[dict]) -> list[Search]:
        for study in studies:
            ref = next(iter(references(study, "subject")), "")
            patient = self.patient(ref.split("/")[-1]) if isinstance(ref, str) and ref else None
            for ident in (patient or {}).get("identifier") or []:
                if isinstance(ident, dict) and ident.get("value"):
                    value = f"{ident['system']}|{ident['value']}" if ident.get("system") else ident["value"]
                    c = Criterion("patient.identifier", value, None)
                    label = f"patient.identifier (chained) = {value}"
                    return [Search(label, [("patient.identifier", value)], [c], study)]
        return []

    def run_search(self, search: Search) -> list[dict]:
        started = time.perf_counter()
        url = self.url(search.query)
        pages, paging = self.search_all(url)
        problems = [f"page {n + 1}: {p}" if len(pages) > 1 else p
                    for n, page in enumerate(pages)
                    for p in checks.bundle_problems(page, self.profile.total_required,
                                                    self.profile.search_mode_required)]  # fmt: skip
        self.case(f"{search.label}: answer is a searchset Bundle: GET {url}", problems + paging, started=started)
        if any(p.bundle is None for p in pages):
            return []
        entries = [e for p in pages for e in checks.entries(p.bundle) if isinstance(e, dict)]
        found = checks.matches(entries)
        wrong, unjudged = [], 0
        for study in found:
            verdict = checks.meets_all(study, search.criteria, self.patient, self.zone)
            if verdict is False:
                wrong.append(f"ImagingStudy/{study.get('id')} does not meet {_criteria(search)}")
            unjudged += verdict is None
        title = f"{search.label}: every match meets {_criteria(search)} ({len(found)} match(es)"
        title += f", {unjudged} not judged: the spec leaves it to the server)" if unjudged else ")"
        self.case(f"{title}: GET {url}", wrong)
        if search.source is not None and checks.meets_all(search.source, search.criteria, self.patient, self.zone):
            sid = checks.study_id(search.source)
            missing = [] if any(checks.study_id(s) == sid for s in found) else [
                f"expected ImagingStudy/{sid} (it meets {_criteria(search)}); it is not among the "
                f"{len(found)} match(es)"]
            self.case(f"{search.label}: the source study ImagingStudy/{sid} is found: GET {url}", missing)
        self.validate_entries(entries, url)
        return found

    def validate_entries(self, entries: list[dict], url: str) -> None:
        for e in entries:
            resource = e.get("resource")
            if not isinstance(resource, dict) or resource.get("resourceType") not in ("ImagingStudy", "Endpoint"):
                continue
            result, new = self.validate(resource, url)
            if new:
                bad = [f"{i.severity.label} {i.rule} {i.expression}: {i.message}" for i in result.issues
                       if self.o.fail_on is not None and i.severity >= self.o.fail_on]  # fmt: skip
                self.case(f"{result.label} (returned by GET {url}) conforms", bad, (result,))

    def include_case(self, anchor: list[tuple[str, str]], studies: list[dict], includes: list[str]) -> None:
        wanted = [i for i in ("ImagingStudy:patient", "ImagingStudy:endpoint") if i in includes or "*" in includes]
        if not wanted:
            self.case("_include: not tested (the CapabilityStatement declares neither ImagingStudy:patient nor "
                      "ImagingStudy:endpoint)", [])  # fmt: skip
            return
        url = self.url([*anchor, *(("_include", w) for w in wanted)])
        pages, paging = self.search_all(url)
        problems = [p for page in pages for p in checks.bundle_problems(page, self.profile.total_required,
                                                                            self.profile.search_mode_required)]
        entries = [e for p in pages for e in checks.entries(p.bundle) if isinstance(e, dict)]
        got = {f"{r.get('resourceType')}/{r.get('id')}" for e in entries if isinstance(r := e.get("resource"), dict)}
        expected: set[str] = set()
        for study in checks.matches(entries):
            refs = []
            if "ImagingStudy:patient" in wanted:
                refs += references(study, "subject")
            if "ImagingStudy:endpoint" in wanted:
                refs += references(study, "endpoint")
            expected |= {"/".join(r.split("/")[-2:]) for r in refs if isinstance(r, str) and "/" in r}
        problems += [f"expected {ref} included (referenced by a match); it is not" for ref in sorted(expected - got)]
        self.case(f"_include {' and '.join(wanted)}: the referenced resources come along: GET {url}",
                  problems + paging)  # fmt: skip
        self.validate_entries(entries, url)

    def paging_case(self, anchor: list[tuple[str, str]], studies: list[dict]) -> None:
        url = self.url([*anchor, ("_count", "1")])
        if len(studies) < 2:
            self.case(f"paging: not tested (the anchor search found {len(studies)} study): GET {url}", [])
            return
        pages, problems = self.search_all(url)
        entries = [e for p in pages for e in checks.entries(p.bundle) if isinstance(e, dict)]
        got = {checks.study_id(s) for s in checks.matches(entries)}
        want = {checks.study_id(s) for s in studies}
        if len(pages) == 1 and len(got) < len(want):
            problems.append(f"expected a next link (_count=1, {len(want)} matches); got one page of {len(got)} "
                            "and no next link")  # fmt: skip
        elif got != want and not problems:
            problems.append(f"expected the anchor search's {len(want)} studies across the pages; got {len(got)} "
                            f"(missing: {', '.join(sorted(map(str, want - got))) or '-'}; "
                            f"extra: {', '.join(sorted(map(str, got - want))) or '-'})")
        self.case(f"paging with _count=1 reaches every match once ({len(pages)} page(s)): GET {url}", problems)

    def post_case(self, anchor: list[tuple[str, str]], studies: list[dict]) -> None:
        url = f"{self.base}/ImagingStudy/_search"
        page = self.get(url, "POST", dict(anchor))
        problems = checks.bundle_problems(page, self.profile.total_required, self.profile.search_mode_required)
        if page.bundle is not None:  # compared even when the Bundle has other defects
            got = {checks.study_id(s) for s in checks.matches(checks.entries(page.bundle))}
            want = {checks.study_id(s) for s in studies}
            paged = checks.link(page.bundle, "next") is not None
            if not paged and got != want:
                problems.append(f"expected the same studies as GET {self.url(anchor)} ({len(want)}); got {len(got)}")
        self.case(f"POST _search equals GET: POST {url} with {urlencode(anchor)}", problems)

    def unknown_parameter_case(self, anchor: list[tuple[str, str]], studies: list[dict]) -> None:
        url = self.url([*anchor, (UNKNOWN_PARAMETER, "1")])
        page = self.get(url)
        problems: list[str] = []
        if page.answer is None:
            problems = page.problems
        elif page.answer.status == 400 or 400 < page.answer.status < 500:
            if not checks.is_operation_outcome(page):
                problems.append(f"a refusal ({page.answer.status}) must carry an OperationOutcome; got "
                                + (str(page.body.get("resourceType")) if isinstance(page.body, dict) else "none"))
        elif page.bundle is not None and page.answer.status == 200:
            got = {checks.study_id(s) for s in checks.matches(checks.entries(page.bundle))}
            want = {checks.study_id(s) for s in studies}
            paged = checks.link(page.bundle, "next") is not None
            if got != want and not (paged and got < want):  # a first page of a paged answer holds fewer
                problems.append(f"expected the unknown parameter ignored (the same {len(want)} studies) or refused "
                                f"(400 + OperationOutcome); got {len(got)} studies")  # fmt: skip
            self_link = checks.link(page.bundle, "self")
            if self_link is not None and UNKNOWN_PARAMETER in self_link:
                problems.append("expected the self link to leave out the ignored parameter (search.html: it shows "
                                f"what was used); got {self_link}")  # fmt: skip
        else:
            problems.append(f"expected 200 with the parameter ignored or 400 + OperationOutcome; got "
                            f"{page.answer.status}")  # fmt: skip
        self.case(f"unknown parameter is ignored (self link without it) or refused: GET {url}", problems)

    def required_case(self, studies: list[dict], table: dict[str, Param]) -> None:
        if not self.profile.require_one_of:
            return
        status = next((s.get("status") for s in studies if s.get("status")), "available")
        url = self.url([("status", str(status))])
        page = self.get(url)
        problems = list(p for p in page.problems if p.startswith("no answer"))
        if page.answer is not None:
            if page.answer.status != 400:
                problems.append(f"expected 400 (a search needs one of {', '.join(self.profile.require_one_of)}); got "
                                f"{page.answer.status}")  # fmt: skip
            if not checks.is_operation_outcome(page):
                problems.append("expected an OperationOutcome saying why; got "
                                + (str(page.body.get("resourceType")) if isinstance(page.body, dict) else "none"))
        self.case(f"a search without {' or '.join(self.profile.require_one_of)} is refused with 400 + "
                  f"OperationOutcome: GET {url}", problems)  # fmt: skip


def _criteria(search: Search) -> str:
    return " & ".join(f"{c.name}={c.value}" for c in search.criteria)

