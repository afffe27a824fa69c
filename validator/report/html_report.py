"""One self-contained HTML file: no network, inline CSS and JS, readable with JS off.

Summary (files, resources, issues by severity, top rules as a bar chart), a table of resources,
then per resource its issues with the rule (linked to its description), expression, position,
message and the JSON around the line; a suite run opens with a table of its cases. JS only adds
filters (severity, rule, file). Every piece of payload text is escaped: a payload cannot inject
markup or script.
"""

from __future__ import annotations

from collections import Counter
from html import escape

from validator.model import VERSION, Issue, ResourceResult, RuleInfo, RunResult, Severity
from validator.report.reporter import Reporter

_CSS = """
:root{--fatal:#7b1fa2;--error:#c62828;--warning:#ef6c00;--information:#1565c0;--ok:#2e7d32;--line:#ddd}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header,main{max-width:1200px;margin:0 auto;padding:0 16px}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:0}
.status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600;white-space:nowrap}
.status.pass{background:var(--ok)}.status.fail{background:var(--error)}.status.not-validated{background:#6b7280}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f0f0}
.sev{font-weight:600;text-transform:uppercase;font-size:12px;white-space:nowrap}
.sev.fatal{color:var(--fatal)}.sev.error{color:var(--error)}.sev.warning{color:var(--warning)}
.sev.information{color:var(--information)}
.bars{display:grid;grid-template-columns:minmax(200px,max-content) 1fr max-content;gap:4px 10px;align-items:center}
.bar{height:12px;background:#90a4ae;border-radius:3px}
.resource{background:#fff;border:1px solid var(--line);border-radius:6px;margin:12px 0;padding:10px 12px}
.resource.fail{border-left:5px solid var(--error)}.resource.pass{border-left:5px solid var(--ok)}
pre.snippet{margin:4px 0 0;background:#f6f8fa;border:1px solid #e1e4e8;padding:4px 6px;font-size:12px;
  overflow-x:auto}
pre.snippet .hit{background:#fff3cd;display:inline-block;min-width:100%}
.resource table{table-layout:fixed}.resource th:nth-child(1){width:86px}.resource th:nth-child(2){width:22%}
.resource th:nth-child(3){width:20%}.resource th:nth-child(4){width:64px}
code{font-size:12px;overflow-wrap:anywhere}pre.snippet{white-space:pre-wrap;overflow-wrap:anywhere}.filters{display:flex;flex-wrap:wrap;gap:14px;align-items:center;background:#fff;
  border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.hidden{display:none}.muted{color:#666}dl.rules dt{font-weight:600;margin-top:8px}dl.rules dd{margin-left:16px}
"""

# No network at all: the report works offline and cannot leak what it shows.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_JS = """
(function(){
  var boxes=document.querySelectorAll('input[data-filter-severity]');
  var rule=document.getElementById('filter-rule'), file=document.getElementById('filter-file');
  function apply(){
    var sev={};boxes.forEach(function(b){sev[b.value]=b.checked;});
    var r=rule.value, f=file.value;
    document.querySelectorAll('tr.issue').forEach(function(tr){
      var show=sev[tr.dataset.severity]&&(!r||tr.dataset.rule===r)&&(!f||tr.dataset.file===f);
      tr.classList.toggle('hidden',!show);
    });
    document.querySelectorAll('section.resource').forEach(function(s){
      var fileOk=!f||s.dataset.file===f;
      var anyIssue=s.querySelectorAll('tr.issue').length>0;
      var visible=s.querySelectorAll('tr.issue:not(.hidden)').length>0;
      var filtering=r||Object.keys(sev).some(function(k){return !sev[k];});
      s.classList.toggle('hidden',!fileOk||(anyIssue&&filtering&&!visible)||(!anyIssue&&!!r));
    });
    document.querySelectorAll('tr.row').forEach(function(tr){
      tr.classList.toggle('hidden',!!f&&tr.dataset.file!==f);
    });
  }
  boxes.forEach(function(b){b.addEventListener('change',apply);});
  rule.addEventListener('change',apply);file.addEventListener('change',apply);
  document.getElementById('filters').classList.remove('hidden');
})();
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _anchor(rule_id: str) -> str:
    return "rule-" + "".join(c if c.isalnum() else "-" for c in rule_id)


def _snippet(i: Issue) -> str:
    if not i.snippet:
        return ""
    lines = []
    for n, text in i.snippet:
        row = f"{n:>5} | {_e(text)}"
        lines.append(f'<span class="hit">{row}</span>' if n == i.line else row)
    return '<pre class="snippet">' + "\n".join(lines) + "</pre>"


def _issue_row(i: Issue, source: str) -> str:
    where = f"{i.line}:{i.column}" if i.line is not None else "-"
    return (
        f'<tr class="issue" data-severity="{i.severity.label}" data-rule="{_e(i.rule)}" data-file="{_e(source)}">'
        f'<td class="sev {i.severity.label}">{i.severity.label}</td>'
        f'<td><a href="#{_anchor(i.rule)}"><code>{_e(i.rule)}</code></a></td>'
        f"<td><code>{_e(i.expression or '(input)')}</code></td><td>{where}</td>"
        f"<td>{_e(i.message)}{_snippet(i)}</td></tr>"
    )


def _resource(n: int, r: ResourceResult, run: RunResult) -> str:
    status = r.status(run.fail_on)
    profiles = f' <span class="muted">profiles: {_e(", ".join(r.profiles))}</span>' if r.profiles else ""
    head = (
        f'<section class="resource {status}" id="res-{n}" data-file="{_e(r.source)}">'
        f'<h3><span class="status {status}">{status.upper()}</span> {_e(r.label)} '
        f'<span class="muted">in {_e(r.source)} · FHIR {_e(r.fhir_version or "-")}</span>{profiles}</h3>'
    )
    if not r.issues:
        return head + '<p class="muted">No issues.</p></section>'
    rows = "".join(_issue_row(i, r.source) for i in r.issues)
    heads = "".join(f"<th>{h}</th>" for h in ("Severity", "Rule", "Expression", "Line:col", "Message"))
    return f"{head}<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table></section>"


def _table_row(n: int, r: ResourceResult, run: RunResult) -> str:
    status = r.status(run.fail_on)
    counts = "".join(f"<td>{sum(i.severity is sev for i in r.issues)}</td>" for sev in sorted(Severity, reverse=True))
    entry = "" if r.entry is None else r.entry
    return (
        f'<tr class="row" data-file="{_e(r.source)}"><td>{_e(r.source)}</td><td>{entry}</td>'
        f'<td><a href="#res-{n}">{_e(r.label)}</a></td>'
        f'<td><span class="status {status}">{status.upper()}</span></td>{counts}</tr>'
    )


def _rule_entry(rid: str, rule: RuleInfo | None) -> str:
    desc = _e(rule.description) if rule else "(no description)"
    src = ""
    if rule is not None:
        first = rule.source.split(" ")[0]
        shown = (
            f'<a href="{_e(first)}">{_e(rule.source)}</a>'
            if first.startswith(("http://", "https://"))
            else _e(rule.source)
        )
        src = f'<br><span class="muted">Source: {shown}</span>'
    sev = rule.severity.label if rule else "-"
    return (
        f'<dt id="{_anchor(rid)}"><code>{_e(rid)}</code> <span class="sev {sev}">{sev}</span></dt><dd>{desc}{src}</dd>'
    )


def _cases(run: RunResult) -> str:
    """A suite run opens with its cases: status and what made each one fail."""
    if run.cases is None:
        return ""
    rows = "".join(
        f"<tr><td>{_e(c.suite)}</td><td>{_e(c.title)}</td>"
        f'<td><span class="status {"pass" if c.passed else "fail"}">{"PASS" if c.passed else "FAIL"}</span></td>'
        f"<td>{'<br>'.join(_e(p) for p in c.problems) or '-'}</td></tr>"
        for c in run.cases
    )
    return ('<h2>Conformance cases</h2><table><thead><tr><th>Suite</th><th>Case</th><th>Status</th>'
            f"<th>Problems</th></tr></thead><tbody>{rows}</tbody></table>\n")  # fmt: skip


def render(run: RunResult) -> str:
    s = run.summary()
    by_rule = Counter(i.rule for r in run.results for i in r.issues)
    top = by_rule.most_common(10)
    peak = max((n for _, n in top), default=1)
    bars = "".join(
        f'<a href="#{_anchor(rid)}"><code>{_e(rid)}</code></a>'
        f'<div class="bar" style="width:{max(2, round(100 * n / peak))}%"></div><span>{n}</span>'
        for rid, n in top
    )
    cards = [("Files", s["files"]), ("Resources", s["resources"]), ("Failed", s["failedResources"])]
    if run.cases is not None:  # a suite run is about its cases first; its resources come after
        failed = sum(not c.passed for c in run.cases)
        cards = [("Cases", len(run.cases)), ("Passed cases", len(run.cases) - failed), ("Failed cases", failed),
                 ("Resources", s["resources"])]  # fmt: skip
    cards += [(name.capitalize(), n) for name, n in s["issues"].items()]
    card_html = "".join(f'<div class="card">{_e(k)}<b>{v}</b></div>' for k, v in cards)
    table_rows = "".join(_table_row(n, r, run) for n, r in enumerate(run.results))
    severities = "".join(
        f'<label><input type="checkbox" data-filter-severity value="{sev.label}" checked> {sev.label}</label>'
        for sev in sorted(Severity, reverse=True)
    )
    rule_options = "".join(f'<option value="{_e(rid)}">{_e(rid)} ({n})</option>' for rid, n in sorted(by_rule.items()))
    files = sorted({r.source for r in run.results})
    file_options = "".join(f'<option value="{_e(f)}">{_e(f)}</option>' for f in files)
    resources = "".join(_resource(n, r, run) for n, r in enumerate(run.results))
    described = [_rule_entry(rid, run.rules.get(rid)) for rid in sorted(by_rule)]
    sev_heads = "".join(f"<th>{sev.label}</th>" for sev in sorted(Severity, reverse=True))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>imaging-validator report: {s["status"].upper()}</title>
<style>{_CSS}</style></head>
<body><header>
<h1>imaging-validator report <span class="status {s["status"]}">{s["status"].upper()}</span></h1>
<p class="muted">imaging-validator {_e(VERSION)} · fails on {_e(s["failOn"])} and above</p>
<div class="cards">{card_html}</div>
</header><main>
{_cases(run)}<h2>Top rules</h2>
<div class="bars">{bars or '<span class="muted">No issues.</span>'}</div>
<h2>Resources</h2>
<div id="filters" class="filters hidden">
<strong>Filter</strong> {severities}
<label>Rule <select id="filter-rule"><option value="">all rules</option>{rule_options}</select></label>
<label>File <select id="filter-file"><option value="">all files</option>{file_options}</select></label>
</div>
<table><thead><tr><th>File</th><th>Entry</th><th>Resource</th><th>Status</th>{sev_heads}</tr></thead>
<tbody>{table_rows}</tbody></table>
{resources}
<h2>Rules</h2>
<dl class="rules">{"".join(described) or '<dd class="muted">No rule was triggered.</dd>'}</dl>
</main>
<script>{_JS}</script>
</body></html>
"""


REPORTER = Reporter(
    "html",
    render,
    "Write a self-contained HTML report to FILE.",
    "text/html",
    file_name="report.html",
    suites=True,
)
