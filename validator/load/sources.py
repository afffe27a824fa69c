"""Inputs: files, directories, globs and stdin; each split into the resources it holds.

A single resource, a Bundle (every entry.resource) or NDJSON (one resource per line). A file that
cannot be read or parsed becomes a fatal finding for that file; the other inputs go on.
"""

from __future__ import annotations

import glob
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import islice
from pathlib import Path

from validator import rule_ids as R
from validator.compile.plan import Plan
from validator.fhir.jsontext import REFUSED, JsonSyntaxError, PositionIndex, parse, parse_checked
from validator.fhir.positions import STRING
from validator.limits import DEFAULT, Limits
from validator.rule_ids import implements

PAYLOAD_SUFFIXES = (".json", ".ndjson", ".jsonl", ".xml")
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
_BOM = b"\xef\xbb\xbf"
# The largest single document given to jiter. jiter reads bytes and the positions need the text, so
# both are held while the tree is built: one more copy of the input at the peak (6.2x its size
# instead of 5.2x for a 62 MB study, past the bound the README gives). Larger documents take the
# json path, which reads the text alone; at that size the parse is object creation, which both
# parsers take about as long for.
_JITER_MAX_BYTES = 8 << 20


class InputError(Exception):
    """A path argument that names nothing (usage error, not a conformance finding)."""


@dataclass(slots=True)
class LoadProblem:
    """A fatal finding about an input before any FHIR rule could run."""

    rule: str
    message: str
    line: int | None = None
    column: int | None = None


@dataclass(slots=True)
class ResourceInput:
    source: str
    entry: int | None  # Bundle entry index, NDJSON line number, or None
    resource: object  # the parsed JSON (validated to be a resource by the engine)
    pointer: tuple  # where the resource sits in its document (for positions)
    positions: PositionIndex | None
    bundle: dict[str, dict] = field(default_factory=dict)  # fullUrl / Type/id -> resource
    warnings: list[LoadProblem] = field(default_factory=list)
    problem: LoadProblem | None = None  # fatal: nothing else is known about this input
    # The text of a resource parsed without keeping repeated keys (jsontext.parse(plain=True));
    # None when the tree is exact: parsed precisely, or by jiter (which refuses repeated keys).
    plain_text: str | None = None
    # The tree is known to hold no repeated key (its parser refuses them), so no object in it is
    # a DupDict with findings of its own: the native gate may judge it (evaluate/native_gate.py).
    unique_keys: bool = False
    # Whether the tree's numbers are all ints of at most 64 bits (True), not all (False), or not
    # known (None), as its parser found out (jsontext.parse_checked): the native gate's schema.
    plain_numbers: bool | None = None
    # FHIR XML is read with one version's element table (which elements repeat, which are
    # primitives): the version it was read with, and how to read it again with another version's.
    xml_version: str | None = None
    reread: Callable[[Plan], ResourceInput] | None = None

    def precise(self) -> ResourceInput:
        """This input, parsed precisely (repeated keys kept) if it was parsed plain. In place, so
        whoever holds the input afterwards sees the precise tree, and the text is parsed once."""
        if self.plain_text is not None:
            self.resource = None  # the plain tree goes before the precise one is built
            self.resource = parse(self.plain_text)
            self.plain_text = None
        return self

    def known_exact(self) -> None:
        """The plain parse was proved exact (no repeated key): nothing to parse again."""
        self.plain_text = None


def _only(source: str, problem: LoadProblem, entry: int | None = None,
          warnings: list[LoadProblem] | None = None) -> ResourceInput:  # fmt: skip
    """An input that is nothing but a finding (unreadable, malformed, too large, ...)."""
    return ResourceInput(source, entry, None, (), None, warnings=list(warnings or []), problem=problem)


@implements(R.TOO_LARGE)
def _too_large(source: str, limits: Limits) -> LoadProblem:
    return LoadProblem(R.TOO_LARGE, f"{source} is larger than the limit of {limits.max_bytes} bytes (--max-bytes)")


def expand_paths(paths: list[str], walk: Callable[[Path], list[str]] | None = None) -> list[str]:
    """Files named by the arguments, in a stable order; '-' stays '-' (stdin). A directory is
    searched by `walk` when given (load/discovery.py: what a repository's tools would skip).
    Raises InputError for a path or glob that names nothing."""
    out: list[str] = []
    for arg in paths:
        if arg == "-":
            out.append(arg)
            continue
        p = Path(arg)
        if _is_dir(p):
            found = walk(p) if walk is not None else sorted(_payloads_in(p))
            if not found:
                raise InputError(f"{arg}: directory holds no .json, .ndjson or .jsonl files")
            out.extend(found)
        elif _named(p):
            out.append(arg)
        elif glob.has_magic(arg):
            found = sorted(f for f in glob.glob(arg, recursive=True) if Path(f).is_file())
            if not found:
                raise InputError(f"{arg}: no file matches this pattern")
            out.extend(found)
        else:
            raise InputError(f"{arg}: no such file or directory")
    return list(dict.fromkeys(out))


def _named(path: Path) -> bool:
    """Whether the path names something, even something that cannot be looked at."""
    try:
        return path.exists() or path.is_symlink()
    except OSError:  # e.g. inside a folder that cannot be searched: it is there, unreadable
        return True


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # cannot be looked at: read as a file, which reports why
        return False


def _payloads_in(folder: Path) -> Iterator[str]:
    """The payload files under a folder, and what cannot be listed or is not a file: a folder
    that cannot be read, a FIFO, socket or device, a link that leads nowhere. Those stay in the
    list so that reading them reports them (a run never passes over what it could not see).
    Linked folders are not entered, so a link loop cannot make the walk endless."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError:
        yield str(folder)
        return
    for entry in entries:
        path = folder / entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _payloads_in(path)
                continue
        except OSError:
            pass
        if path.suffix.lower() in PAYLOAD_SUFFIXES:
            try:
                if entry.is_dir():  # a link to a folder, named like a payload: not entered
                    continue
            except OSError:
                pass
            yield str(path)


_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
            (stat.S_ISBLK, "a device"))


def _not_a_file(source: str) -> LoadProblem | None:
    """Why a path is not read as a file: it is a folder (named as an input only when it could not
    be listed), a FIFO, socket or device (reading one could block forever or never end).
    Checked before opening, since opening a FIFO blocks until a writer comes."""
    st = os.stat(source)
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        try:
            with os.scandir(source):
                pass
        except OSError as exc:
            return LoadProblem(R.UNREADABLE, f"cannot read the folder {source}: {exc.strerror or exc}; "
                               "its files were not validated")  # fmt: skip
        return LoadProblem(R.UNREADABLE, f"{source} is a folder, not a file")
    kind = next((name for test, name in _SPECIAL if test(st.st_mode)), "not a regular file")
    return LoadProblem(R.UNREADABLE, f"{source} is {kind}, not a file: it was not read")


def _read_at_most(handle, limit: int) -> bytes:
    """Up to `limit` bytes, read in pieces: a stream's size is not known in advance."""
    pieces, total = [], 0
    while total < limit:
        piece = handle.read(min(1 << 20, limit - total))
        if not piece:
            break
        pieces.append(piece)
        total += len(piece)
    return b"".join(pieces)


@implements(R.UNREADABLE)
def _read(source: str, limits: Limits) -> tuple[str | None, bytes, LoadProblem | None, list[LoadProblem]]:
    """The text of an input, and its bytes (what jiter reads; the BOM is left out of both), or
    the finding that says why it cannot be read (text None, no bytes)."""
    data, problem, warnings = _read_bytes(source, limits)
    if data is None:
        return None, b"", problem, warnings
    try:
        return data.decode("utf-8"), data, None, warnings
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return (
            None,
            b"",
            LoadProblem(
                R.UNREADABLE,
                f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be decoded",
                line,
            ),
            warnings,
        )


@implements(R.BYTE_ORDER_MARK, R.UNREADABLE)
def _read_bytes(source: str, limits: Limits) -> tuple[bytes | None, LoadProblem | None, list[LoadProblem]]:
    try:
        if source == "-":
            data = _read_at_most(sys.stdin.buffer, limits.max_bytes + 1)
        else:
            problem = _not_a_file(source)
            if problem is not None:
                return None, problem, []
            # Non-blocking, in case the file was replaced by a FIFO since: the open cannot hang.
            with open(os.open(source, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
                st = os.fstat(handle.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return None, LoadProblem(R.UNREADABLE, f"{source} is not a regular file: it was not read"), []
                if st.st_size > limits.max_bytes:
                    return None, _too_large(source, limits), []
                # Read at its size (+1 in case it grows); asking for the whole limit at once would
                # allocate it first.
                data = _read_at_most(handle, min(st.st_size + 1, limits.max_bytes + 1))
    except OSError as exc:
        return None, LoadProblem(R.UNREADABLE, f"cannot read {source}: {exc.strerror or exc}"), []
    if len(data) > limits.max_bytes:
        return None, _too_large(source, limits), []
    warnings = []
    if data.startswith(_BOM):
        warnings.append(LoadProblem(R.BYTE_ORDER_MARK, "the file starts with a UTF-8 byte order mark", 1, 1))
        data = data[3:]
    return data, None, warnings


@implements(R.STRING_TOO_LONG)
def _long_string(text: str, limits: Limits) -> LoadProblem | None:
    """A JSON string longer than the limit (looked for only in texts that could hold one)."""
    if len(text) <= limits.max_string or not _may_hold_long_string(text, limits.max_string):
        return None
    for m in STRING.finditer(text):
        if m.end() - m.start() - 2 > limits.max_string:
            line = text.count("\n", 0, m.start()) + 1
            return LoadProblem(R.STRING_TOO_LONG, f"a JSON string of {m.end() - m.start() - 2} characters exceeds the "
                               f"limit of {limits.max_string} (--max-string)", line)  # fmt: skip
    return None


def _may_hold_long_string(text: str, limit: int) -> bool:
    """Whether a JSON string of the text may be longer than `limit`; never wrong when it says no,
    and one pass in C where the scan of every string above takes 40 ns per string (2.5 s for a 62 MB
    study). Inside a string (as STRING matches it, in any text) a quote comes only after a
    backslash, so with those quotes blanked out a string's content lies within one stretch without
    quotes: the text's head, or the characters after a quote. Such a stretch longer than the limit
    is looked for; an escaped backslash before a closing quote only makes a stretch longer."""
    blanked = text.replace('\\"', "\\x")
    first = blanked.find('"')
    if (first if first >= 0 else len(blanked)) > limit:
        return True
    return _stretch_after_quote(limit).search(blanked) is not None


@lru_cache(maxsize=4)
def _stretch_after_quote(limit: int) -> re.Pattern[str]:
    return re.compile(f'"[^"]{{{limit + 1}}}')


def load_source(source: str, limits: Limits = DEFAULT, plan: Plan | None = None) -> Iterator[ResourceInput]:
    """Every resource of one input, in document order; an input without any resource yields one
    finding, so no input is ever missing from a report. FHIR XML needs the plan of its version to
    know which elements repeat and which primitives are numbers."""
    found = False
    for item in _load_source(source, limits, plan):
        found = True
        yield item
    if not found:
        yield no_resource(source)


@implements(R.NO_RESOURCE)
def no_resource(source: str) -> ResourceInput:
    """The finding for an input that holds no resource at all."""
    message = f"{source} holds no resource (empty NDJSON, or a Bundle without entry resources)"
    return _only(source, LoadProblem(R.NO_RESOURCE, message))


def is_ndjson_file(source: str) -> bool:
    return source != "-" and source.lower().endswith(NDJSON_SUFFIXES) and Path(source).is_file()


def _load_source(source: str, limits: Limits, plan: Plan | None) -> Iterator[ResourceInput]:
    if is_ndjson_file(source):
        yield from _ndjson_file(source, limits)
        return
    text, data, problem, warnings = _read(source, limits)
    if text is None:
        yield _only(source, problem, warnings=warnings)  # type: ignore[arg-type]
        return
    # The bytes are only for jiter: let go before anything is yielded (a frame of this generator
    # lives while its resources are validated).
    if source.lower().endswith(".xml") or (source == "-" and text.lstrip().startswith("<")):
        del data
        yield from _xml(source, text, warnings, limits, plan)
        return
    long_string = _long_string(text, limits)
    if long_string is not None:
        del data
        yield _only(source, long_string, warnings=warnings)
        return
    doc, numbers = parse_checked(data) if len(data) <= _JITER_MAX_BYTES else (REFUSED, None)
    del data
    if doc is not REFUSED:  # exact as it stands: a Bundle is split, a resource needs no second parse
        yield from _split(source, doc, PositionIndex(text), warnings, unique_keys=True, plain_numbers=numbers)
        return
    # What jiter refused is read as without it: the json path reports, and keeps repeated keys.
    plain = _plain_candidate(text)
    try:
        doc = parse(text, plain=plain)
    except JsonSyntaxError as exc:
        if source == "-" and exc.message.startswith("Extra data") and "\n" in text.strip():
            # stdin has no file name to tell NDJSON apart
            yield from _ndjson(source, enumerate(text.split("\n"), start=1), warnings)
            return
        yield _only(source, _syntax_problem(exc, ""), warnings=warnings)
        return
    positions = PositionIndex(text)
    if plain and isinstance(doc, dict) and doc.get("resourceType") != "Bundle":
        item = ResourceInput(source, None, doc, (), positions, warnings=warnings, plain_text=text)
        del doc  # the plain tree must be freeable while the item is out (see ResourceInput.precise)
        yield item
        return
    if plain:
        doc = parse(text)  # precisely, to split a Bundle (written with escapes) or report a non-object
    yield from _split(source, doc, positions, warnings)


def _plain_candidate(text: str) -> bool:
    """A document that may be parsed plain: one resource, so the base rules can count its keys
    (a Bundle's wrapper is not visited by them)."""
    return "Bundle" not in text


@implements(R.TOO_DEEP, R.MALFORMED_XML)
def _xml(
    source: str, text: str, warnings: list[LoadProblem], limits: Limits, plan: Plan | None
) -> Iterator[ResourceInput]:
    from validator.load.xml import XmlInputError, load_xml

    if plan is None:
        raise ValueError("reading FHIR XML needs the plan of a FHIR version")
    try:
        doc, positions, problems = load_xml(text.encode("utf-8"), plan, limits.max_depth)
    except XmlInputError as exc:
        rule = R.TOO_DEEP if "--max-depth" in exc.message else R.MALFORMED_XML
        yield _only(source, LoadProblem(rule, exc.message, exc.line, exc.column), warnings=warnings)
        return
    # Each problem goes to the resource it is in: a Bundle entry's, or else the first resource.
    in_entries = doc.get("resourceType") == "Bundle"
    by_resource: dict[tuple, list[LoadProblem]] = {}
    for p in problems:
        key = p.pointer[:3] if in_entries and p.pointer[:1] == ("entry",) else ()
        by_resource.setdefault(key, []).append(LoadProblem(p.rule, p.message, p.line, p.column))
    read_before = list(warnings)  # the file's own findings, before this reading added any
    for n, item in enumerate(_split(source, doc, positions, warnings)):  # type: ignore[arg-type]
        item.warnings.extend(by_resource.pop(item.pointer, []))
        if n == 0:
            item.warnings.extend(by_resource.pop((), []))
        item.xml_version = plan.fhir_version
        item.reread = partial(_xml_again, source, text, read_before, limits, n)
        yield item


def _xml_again(source: str, text: str, warnings: list[LoadProblem], limits: Limits, n: int,
               plan: Plan) -> ResourceInput:  # fmt: skip
    """Resource n of an XML file, read again with the element table of another FHIR version."""
    return next(islice(_xml(source, text, list(warnings), limits, plan), n, None))


@implements(R.MALFORMED_JSON, R.TOO_DEEP)
def _syntax_problem(exc: JsonSyntaxError, where: str, line: int | None = None) -> LoadProblem:
    if exc.too_deep:
        return LoadProblem(R.TOO_DEEP, f"{where}the JSON nests too deep to read, far beyond --max-depth", line)
    return LoadProblem(R.MALFORMED_JSON, f"{where}malformed JSON: {exc.message}", line or exc.line, exc.column)


@implements(R.UNREADABLE)
def ndjson_size_problem(source: str, limits: Limits) -> ResourceInput | None:
    """An NDJSON file too large or unreadable, as its one finding; None when it can be read."""
    try:
        if Path(source).stat().st_size > limits.max_bytes:
            return _only(source, _too_large(source, limits))
    except OSError as exc:
        return _only(source, LoadProblem(R.UNREADABLE, f"cannot read {source}: {exc.strerror or exc}"))
    return None


@implements(R.UNREADABLE, R.BYTE_ORDER_MARK)
def _ndjson_file(source: str, limits: Limits) -> Iterator[ResourceInput]:
    """An NDJSON file read line by line, so memory stays bounded by the longest line, not the file."""
    problem = ndjson_size_problem(source, limits)
    if problem is not None:
        yield problem
        return
    try:
        handle = Path(source).open("rb")  # noqa: SIM115 - closed below; an open failure is a finding
    except OSError as exc:
        yield _only(source, LoadProblem(R.UNREADABLE, f"cannot read {source}: {exc.strerror or exc}"))
        return
    with handle:
        yield from ndjson_lines(source, enumerate(handle, start=1), limits)


def ndjson_lines(source: str, raw_lines: Iterable[tuple[int, bytes]], limits: Limits) -> Iterator[ResourceInput]:
    """The resources (and findings) of numbered raw NDJSON lines: the whole file, or a chunk of it
    (validated by a worker process with --jobs). One loop, no generator per stage: this runs once
    per line of files of millions of lines."""
    # A BOM's warning goes with the first line read as JSON (not with an unreadable first line).
    warnings: list[LoadProblem] = []
    for lineno, raw in raw_lines:
        if lineno == 1 and raw.startswith(_BOM):
            warnings.append(LoadProblem(R.BYTE_ORDER_MARK, "the file starts with a UTF-8 byte order mark", 1, 1))
            raw = raw[3:]
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            problem = LoadProblem(R.UNREADABLE, f"line {lineno} is not UTF-8 text (byte {exc.start})", lineno)
            yield _only(source, problem, entry=lineno)
            continue
        too_long = _long_string(line, limits)
        if too_long is not None:
            too_long.line = lineno
            yield _only(source, too_long, entry=lineno)
            continue
        item = _ndjson_line(source, lineno, line, raw, warnings)
        if item is not None:
            yield item
            if item.warnings:  # taken (a line that is not an object leaves them to the next)
                warnings = []


def _ndjson(source: str, lines: Iterable[tuple[int, str]], warnings: list[LoadProblem]) -> Iterator[ResourceInput]:
    """The resources of NDJSON text already decoded (stdin, told apart from one resource by its
    parse): lines are not checked again for long strings, the whole text was."""
    for lineno, line in lines:
        item = _ndjson_line(source, lineno, line, None, warnings)
        if item is not None:
            yield item
            if item.warnings:  # as in ndjson_lines
                warnings = []


@implements(R.NOT_A_RESOURCE)
def _ndjson_line(source: str, lineno: int, line: str, raw: bytes | None,
                 warnings: list[LoadProblem]) -> ResourceInput | None:  # fmt: skip
    """The resource (or finding) of one NDJSON line, None for a blank one. `raw` is the line's
    bytes when at hand (jiter reads bytes; else the text is encoded); the line's warnings are
    copied into the item that takes them."""
    if not line.strip():
        return None
    doc, numbers = parse_checked(line.encode("utf-8") if raw is None else raw)
    if doc is not REFUSED:
        if not isinstance(doc, dict):
            return _not_an_object(source, lineno, doc)
        return ResourceInput(source, lineno, doc, (), PositionIndex(line, line_offset=lineno - 1),
                             warnings=list(warnings), unique_keys=True, plain_numbers=numbers)  # fmt: skip
    plain = _plain_candidate(line)
    try:
        doc = parse(line, plain=plain)
    except JsonSyntaxError as exc:
        return _only(source, _syntax_problem(exc, f"line {lineno}: ", lineno), entry=lineno, warnings=warnings)
    if not isinstance(doc, dict):
        return _not_an_object(source, lineno, doc)
    item = ResourceInput(source, lineno, doc, (), PositionIndex(line, line_offset=lineno - 1),
                         warnings=list(warnings), plain_text=line if plain else None)  # fmt: skip
    return item


def _not_an_object(source: str, lineno: int, doc: object) -> ResourceInput:
    # Its warnings (a BOM) stay for the next line read as a resource.
    problem = LoadProblem(R.NOT_A_RESOURCE, f"line {lineno} is not a JSON object, so not a resource", lineno, 1)
    return ResourceInput(source, lineno, doc, (), None, problem=problem)


@implements(R.NOT_A_RESOURCE)
def _split(source: str, doc: object, positions: PositionIndex, warnings: list[LoadProblem],
           unique_keys: bool = False, plain_numbers: bool | None = None) -> Iterator[ResourceInput]:  # fmt: skip
    """The resources of a document (itself, or a Bundle's entries); `unique_keys`: its parser
    refused repeated keys (see ResourceInput.unique_keys); `plain_numbers`: what it found of its
    numbers (ResourceInput.plain_numbers; an entry's are plain if the document's are)."""
    if not isinstance(doc, dict):
        yield ResourceInput(
            source,
            None,
            doc,
            (),
            positions,
            warnings=warnings,
            problem=LoadProblem(R.NOT_A_RESOURCE, "the document is not a JSON object, so not a resource", 1, 1),
        )
        return
    if doc.get("resourceType") != "Bundle":
        yield ResourceInput(source, None, doc, (), positions, warnings=warnings, unique_keys=unique_keys,
                            plain_numbers=plain_numbers)  # fmt: skip
        return
    entries = doc.get("entry") or []
    if not isinstance(entries, list):
        entries = []
    index: dict[str, dict] = {}
    for e in entries:
        if isinstance(e, dict) and isinstance(e.get("resource"), dict):
            res = e["resource"]
            if isinstance(e.get("fullUrl"), str):
                index[e["fullUrl"]] = res
            if isinstance(res.get("resourceType"), str) and isinstance(res.get("id"), str):
                index[f"{res['resourceType']}/{res['id']}"] = res
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "resource" not in e:
            continue  # e.g. a DELETE in a transaction, or a search entry with only a fullUrl
        res = e["resource"]
        ptr = ("entry", i, "resource")
        if not isinstance(res, dict):
            loc = positions.locate(ptr)
            yield ResourceInput(
                source,
                i,
                res,
                ptr,
                positions,
                warnings=warnings,
                problem=LoadProblem(
                    R.NOT_A_RESOURCE,
                    f"Bundle.entry[{i}].resource is not a JSON object",
                    loc[0] if loc else None,
                    loc[1] if loc else None,
                ),
            )
        else:
            yield ResourceInput(source, i, res, ptr, positions, bundle=index, warnings=warnings,
                                unique_keys=unique_keys, plain_numbers=plain_numbers or None)  # fmt: skip
        warnings = []
