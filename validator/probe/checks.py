"""Judging one search answer: the Bundle the spec asks for, and every match against the criteria.

Each function returns the problems it found (empty: the check passes), worded as "expected X;
got Y" so a report reads on its own. Where the spec leaves a comparison to the server, the match
is counted as not judged, never as passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from validator.net.client import Answer
from validator.probe.matchers import (
    date_matches,
    reference_matches,
    string_matches,
    token_matches,
    uri_matches,
    values_at,
)
from validator.probe.plan import Criterion

FHIR_JSON = ("application/fhir+json", "application/json", "application/json+fhir")


@dataclass
class Page:
    """One answer of a search: the HTTP answer, the Bundle when it is one, and why not otherwise."""

    url: str
    answer: Answer | None
    body: object = None
    problems: list[str] = field(default_factory=list)

    @property
    def bundle(self) -> dict | None:
        return self.body if isinstance(self.body, dict) and self.body.get("resourceType") == "Bundle" else None


def read_page(url: str, answer: Answer) -> Page:
    """HTTP status, content type and JSON: the basics before any Bundle check."""
    page = Page(url, answer)
    if answer.content_type not in FHIR_JSON:
        page.problems.append(f"expected a FHIR JSON content type; got {answer.content_type or 'none'!r}")
    try:
        page.body = json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        page.problems.append(f"expected JSON; got {len(answer.body)} byte(s) that are not ({exc})")
    except RecursionError:  # a hostile answer nested past what a parser can hold
        page.problems.append(f"expected JSON a reader can hold; got {len(answer.body)} byte(s) nested too deep")
    return page


def links(bundle: dict | None) -> list[dict]:
    """Bundle.link as objects (a hostile answer's other shapes give none)."""
    found = (bundle or {}).get("link")
    return [link for link in found if isinstance(link, dict)] if isinstance(found, list) else []


def link(bundle: dict | None, relation: str) -> str | None:
    url = next((x.get("url") for x in links(bundle) if x.get("relation") == relation), None)
    return url if isinstance(url, str) and url else None


def entries(bundle: dict | None) -> list:
    """Bundle.entry as it came (a list), or none; bundle_problems names entries of other shapes."""
    found = (bundle or {}).get("entry")
    return found if isinstance(found, list) else []


def study_id(resource: dict) -> str:
    return str(resource.get("id"))


def is_operation_outcome(page: Page) -> bool:
    return isinstance(page.body, dict) and page.body.get("resourceType") == "OperationOutcome"


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "value")


def bundle_problems(page: Page, total_required: bool, search_mode_required: bool) -> list[str]:
    """A searchset Bundle (search.html, bundle.html): status 200, type, self link, fullUrl,
    search.mode, total (when the profile requires it, or when present: a non-negative integer)."""
    problems = list(page.problems)
    answer = page.answer
    if answer is not None and answer.status != 200:
        problems.append(f"expected HTTP 200; got {answer.status}{_outcome_text(page)}")
    b = page.bundle
    if b is None:
        if answer is None:  # no answer at all: the problem above says why, nothing more to judge
            return problems
        body = page.body
        kind = (f"a {body.get('resourceType') or 'JSON object without resourceType'}" if isinstance(body, dict)
                else "no JSON" if body is None else f"a JSON {_json_kind(body)}")  # fmt: skip
        return [*problems, f"expected a Bundle; got {kind}"]
    if b.get("type") != "searchset":
        problems.append(f"expected Bundle.type searchset; got {b.get('type')!r}")
    total = b.get("total")
    if total is None:
        if total_required:
            problems.append("expected Bundle.total (the server profile requires it); got none")
    elif not isinstance(total, int) or isinstance(total, bool) or total < 0:
        problems.append(f"expected Bundle.total to be a non-negative integer; got {total!r}")
    if link(b, "self") is None:
        problems.append("expected a self link (search.html: the server SHALL return the parameters it used); got none")
    no_full_url: list[str] = []
    if "entry" in b and not isinstance(b["entry"], list):
        problems.append(f"expected Bundle.entry to be an array; got {type(b['entry']).__name__}")
    for n, entry in enumerate(entries(b)):
        if not isinstance(entry, dict):
            problems.append(f"entry[{n}]: expected an object; got {type(entry).__name__}")
            continue
        resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else {}
        who = f"entry[{n}] {resource.get('resourceType', '?')}/{resource.get('id', '?')}"
        if not entry.get("fullUrl"):
            no_full_url.append(who)
        mode = (entry.get("search") or {}).get("mode") if isinstance(entry.get("search"), dict) else None
        expected = ("match",) if resource.get("resourceType") == "ImagingStudy" else ("include", "outcome")
        if mode is None:
            if search_mode_required:
                problems.append(f"{who}: expected entry.search.mode (the server profile requires it); got none")
        elif mode not in expected:
            problems.append(f"{who}: expected entry.search.mode {' or '.join(expected)}; got {mode!r}")
    if no_full_url:
        problems.append(f"expected entry.fullUrl (bundle.html: SHALL have a value for a resource with an id); "
                        f"missing in {len(no_full_url)} entr{'y' if len(no_full_url) == 1 else 'ies'}: "
                        f"{', '.join(no_full_url[:3])}{' ...' if len(no_full_url) > 3 else ''}")
    return problems


def _outcome_text(page: Page) -> str:
    if not is_operation_outcome(page):
        return ""
    texts = [i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code", "")
             for i in page.body.get("issue") or [] if isinstance(i, dict)]  # type: ignore[union-attr]
    return f" ({'; '.join(t for t in texts if t)[:300]})" if texts else ""


def matches(entries: object) -> list[dict]:
    """The ImagingStudy resources of entries whose search.mode is match (or absent); entries of
    any other shape are skipped here (bundle_problems names them)."""
    out = []
    for e in entries if isinstance(entries, list) else []:
        resource = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "ImagingStudy":
            continue
        search = e.get("search")
        if (search.get("mode", "match") if isinstance(search, dict) else "match") == "match":
            out.append(resource)
    return out


def meets(study: dict, c: Criterion, patients: Callable[[str], dict | None], zone: timedelta | None = None
          ) -> bool | None:  # fmt: skip
    """Whether a study meets one criterion (None: not judged)."""
    name, _, modifier = c.name.partition(":")
    if name == "patient.identifier" or c.param is None:
        refs = values_at(study, "subject")
        ref = refs[0].get("reference") if refs and isinstance(refs[0], dict) else None
        patient = patients(ref.split("/")[-1]) if isinstance(ref, str) else None
        return None if patient is None else token_matches(values_at(patient, "identifier"), c.value)
    p = c.param
    values = [v for path in p.paths for v in values_at(study, path)]
    if modifier == "missing":
        return (not values) == (c.value == "true")
    if p.type == "token":
        hit = any(token_matches(values, v) for v in c.value.split(","))
        return not hit if modifier == "not" else hit
    if p.type == "reference":
        return any(reference_matches(values, v, p.targets) for v in c.value.split(","))
    if p.type == "date":
        verdicts = [date_matches(values, v, zone) for v in c.value.split(",")]
        return True if any(verdicts) else (None if None in verdicts else False)
    if p.type == "string":
        return any(string_matches(values, v) for v in c.value.split(","))
    if p.type == "uri":
        return any(uri_matches(values, v) for v in c.value.split(","))
    return None


def meets_all(study: dict, criteria: list[Criterion], patients: Callable[[str], dict | None],
              zone: timedelta | None = None) -> bool | None:  # fmt: skip
    verdicts = [meets(study, c, patients, zone) for c in criteria]
    return False if False in verdicts else (None if None in verdicts else True)
