"""The HTML report in a real headless browser (Debian's chromium driven by Playwright): it opens
without console errors, the severity filter works, payload text cannot run as script, and the
report is readable with JavaScript off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_payloads import HOSTILE
from playwright.sync_api import sync_playwright

from validator import Validator
from validator.report import html_report

CHROMIUM = "/usr/bin/chromium"
# Chromium as root in a sandboxed CI machine with no network beyond package registries.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    (folder / "hostile.json").write_text(json.dumps(HOSTILE, indent=1))
    examples = Path(__file__).resolve().parent.parent / "examples" / "payloads"
    run = Validator().validate_paths([str(examples), str(folder / "hostile.json")])
    path = folder / "report.html"
    path.write_text(html_report.render(run))
    return path


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is required (make test installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, report: Path, javascript: bool = True):
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    return context, page, errors


def test_the_report_opens_without_console_errors(browser, report) -> None:
    context, page, errors = _open(browser, report)
    assert page.title().startswith("imaging-validator report")
    assert errors == []
    context.close()


def test_the_severity_filter_hides_and_shows_issue_rows(browser, report) -> None:
    context, page, _ = _open(browser, report)
    errors = page.locator('tr.issue[data-severity="error"]')
    warnings = page.locator('tr.issue[data-severity="warning"]')
    assert errors.count() > 0 and warnings.count() > 0
    assert errors.first.is_visible()
    page.uncheck('input[data-filter-severity][value="error"]')
    assert all(not errors.nth(i).is_visible() for i in range(errors.count()))
    assert warnings.first.is_visible()
    page.check('input[data-filter-severity][value="error"]')
    assert errors.first.is_visible()
    context.close()


def test_the_rule_and_file_filters_narrow_the_rows(browser, report) -> None:
    context, page, _ = _open(browser, report)
    page.select_option("#filter-rule", "json:duplicate-key")
    visible = [r for r in page.locator("tr.issue").all() if r.is_visible()]
    assert len(visible) == 1 and visible[0].get_attribute("data-rule") == "json:duplicate-key"
    page.select_option("#filter-rule", "")
    files = page.locator("#filter-file option").all_inner_texts()
    target = next(f for f in files if f.endswith("studies.ndjson"))
    page.select_option("#filter-file", target)
    shown = [s for s in page.locator("section.resource").all() if s.is_visible()]
    assert shown and all(s.get_attribute("data-file") == target for s in shown)
    context.close()


def test_payload_text_never_runs_as_script(browser, report) -> None:
    context, page, errors = _open(browser, report)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("text=window.__pwned = 1").count() >= 1  # shown as text
    assert errors == []
    context.close()


def test_the_report_is_readable_without_javascript(browser, report) -> None:
    context, page, _ = _open(browser, report, javascript=False)
    assert page.locator("section.resource").first.is_visible()
    assert page.locator('tr.issue[data-severity="error"]').first.is_visible()
    assert not page.locator("#filters").is_visible()  # filters need JS, so they stay hidden
    context.close()
