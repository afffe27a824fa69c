"""GitHub Actions workflow commands: one `::error`/`::warning`/`::notice` line per finding, which
GitHub shows as an annotation on the file and line in the pull request (as ruff and Spectral do),
with no code-scanning upload needed.

Escaping follows GitHub's runner (actions/toolkit, command.ts): in the message `%`, CR and LF
are percent-encoded; in a property (file, title) `:` and `,` too, since they separate the
properties. Payload text is made terminal-safe first: the log is a terminal for whoever reads it.
"""

from __future__ import annotations

from validator.model import RunResult, Severity
from validator.report.reporter import Reporter
from validator.report.safe_text import terminal
from validator.report.text import summary_line

_COMMANDS = {Severity.FATAL: "error", Severity.ERROR: "error", Severity.WARNING: "warning",
             Severity.INFORMATION: "notice"}  # fmt: skip


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(run: RunResult) -> str:
    lines = []
    for r in run.results:
        path = run.repo_path(r.source)
        for i in r.issues:
            props = [] if r.source == "-" else [f"file={escape_property(terminal(path))}"]
            if i.line is not None:
                props.append(f"line={i.line}")
                if i.column is not None:
                    props.append(f"col={i.column}")
            props.append(f"title={escape_property(terminal(i.rule))}")
            where = f"{i.expression}: " if i.expression else ""
            message = terminal(f"{where}{i.message} ({r.label}) [{i.rule}]")
            lines.append(f"::{_COMMANDS[i.severity]} {','.join(props)}::{escape_data(message)}")
    lines.extend(terminal(f"note: {note}") for note in run.notes)
    lines.append(summary_line(run))
    return "\n".join(lines) + "\n"


REPORTER = Reporter(
    "github",
    render,
    "Write GitHub Actions workflow commands (annotations) to FILE.",
    "text/plain",
    file_name=None,
)
