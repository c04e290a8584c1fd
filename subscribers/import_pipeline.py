"""Reading, checking and validating imported CSV files: pure functions with no Django state.

The upload is checked and re-encoded to UTF-8 once (`store_utf8`), so everything after it reads
one encoding and may split the file at line ends. The import task cuts the stored file into
byte ranges (`chunk_ranges`) that processes of a pool validate (`process_chunk`), each returning
CSV text ready for `COPY` into the staging table and the rows it rejected with their reasons.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import hmac
import io
import os
import pickle
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from charset_normalizer import from_bytes
from email_validator import EmailNotValidError, validate_email

# A row longer than this is not a subscriber: it is a broken or a wrong file.
MAX_LINE_CHARS = 1024 * 1024
SAMPLE_BYTES = 64 * 1024
READ_BLOCK = 1024 * 1024
PREVIEW_ROWS = 5
PREVIEW_CELL_CHARS = 200
MAX_ATTRIBUTES = 40
# Cells a spreadsheet would run as a formula; exported CSVs prefix them with an apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DELIMITERS = ",;\t|"

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf_32"),
    (codecs.BOM_UTF32_BE, "utf_32"),
    (codecs.BOM_UTF8, "utf_8_sig"),
    (codecs.BOM_UTF16_LE, "utf_16"),
    (codecs.BOM_UTF16_BE, "utf_16"),
)
# UTF-8 sequences inside a file read as a single-byte encoding: the file mixes encodings.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ATTRIBUTE_KEY = re.compile(r"[a-z][a-z0-9_]{0,62}")
_EMAIL_HEADER = re.compile(r"^\s*e[-_ ]?mail(\s*address)?\s*$", re.IGNORECASE)
_NAME_HEADERS = {"name", "full name", "full_name", "fullname", "display name"}


class ImportFileError(ValueError):
    """The file cannot be imported; the message tells the person why and what to do."""


def neutralise(value: str) -> str:
    """A cell made safe for spreadsheets: one that would run as a formula gets a leading apostrophe."""
    if value and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_row(row: Iterable[object]) -> list[str]:
    return [neutralise("" if cell is None else str(cell)) for cell in row]


# --- The upload ---------------------------------------------------------------------------


@dataclass
class FileFacts:
    """What checking the upload found: its encoding, size, shape and first rows."""

    encoding: str
    size_bytes: int
    stored_bytes: int
    lines: int
    delimiter: str = ","
    header_bytes: int = 0
    columns: list[str] | None = None
    preview: list[list[str]] | None = None


def detect_encoding(sample: bytes) -> str:
    """The sample's encoding: a byte-order mark, else UTF-8 if it decodes, else charset-normalizer's guess."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    if b"\x00" in sample or len(_CONTROL_BYTES.findall(sample[:SAMPLE_BYTES])) > max(8, len(sample) // 100):
        raise ImportFileError("This is not a CSV file: it contains binary data. Export your list as CSV and try again.")
    try:
        codecs.getincrementaldecoder("utf_8")().decode(sample, final=False)
        return "utf_8"
    except UnicodeDecodeError:
        pass
    matches = list(from_bytes(sample))
    if not matches:
        raise ImportFileError("This is not a CSV file: its contents are not text in any known encoding.")
    best = matches[0]
    # Single-byte code pages often tie (same chaos, same coherence), and charset-normalizer then
    # takes the first by name. Windows-1252, what spreadsheets in Western Europe and the
    # Americas save CSV in, wins such a tie.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    preferred = next((m for m in tied if "cp1252" in m.could_be_from_charset), best)
    encoding = codecs.lookup(preferred.encoding).name.replace("-", "_")
    if encoding in {"ascii", "utf_8"}:
        # Not valid UTF-8 (we tried), yet guessed as such: it mixes encodings.
        raise _mixed_encodings("UTF-8", 1)
    return encoding


def _mixed_encodings(encoding: str, line: int) -> ImportFileError:
    return ImportFileError(
        f"The file mixes character encodings: it reads as {encoding}, but line {line} does not. "
        "Save it again with one encoding (UTF-8 is best) and upload it again."
    )


def display_encoding(encoding: str) -> str:
    """A codec name as people know it: UTF-8, WINDOWS-1252, ..."""
    known = {"utf_8": "UTF-8", "utf_8_sig": "UTF-8", "utf_16": "UTF-16", "utf_32": "UTF-32", "latin_1": "Latin-1"}
    if encoding in known:
        return known[encoding]
    return encoding.replace("cp125", "Windows-125").replace("_", "-").upper()


def store_utf8(chunks: Iterable[bytes], destination: BinaryIO, *, max_bytes: int) -> FileFacts:
    """Check an uploaded file while copying it, re-encoded to UTF-8, into `destination`.

    Refuses (ImportFileError) a file that is empty, larger than `max_bytes`, binary, of mixed
    encodings, or with a line longer than MAX_LINE_CHARS; reads it once, a block at a time.
    """
    chunks = iter(chunks)
    sample = b""
    for chunk in chunks:
        sample += chunk
        if len(sample) >= SAMPLE_BYTES:
            break
    if not sample.strip():
        raise ImportFileError("The file is empty. Choose a CSV file with a header row and one row per subscriber.")
    encoding = detect_encoding(sample)
    single_byte = encoding not in {"utf_8", "utf_8_sig", "utf_16", "utf_32"}
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    facts = FileFacts(encoding=encoding, size_bytes=0, stored_bytes=0, lines=0)
    line_run = 0  # characters since the last line break

    def blocks() -> Iterator[bytes]:
        yield sample
        yield from chunks

    for block in blocks():
        facts.size_bytes += len(block)
        if facts.size_bytes > max_bytes:
            raise ImportFileError(f"The file is larger than the {max_bytes // (1024 * 1024)} MB limit for imports.")
        if single_byte and _UTF8_SEQUENCE.search(block):
            raise _mixed_encodings(display_encoding(encoding), facts.lines + 1)
        try:
            text = decoder.decode(block)
        except UnicodeDecodeError as exc:
            line = facts.lines + 1 + block[: exc.start].count(b"\n")
            raise _mixed_encodings(display_encoding(encoding), line) from None
        line_run = _check_text(text, facts, line_run)
        data = text.encode("utf-8")
        destination.write(data)
        facts.stored_bytes += len(data)
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _mixed_encodings(display_encoding(encoding), facts.lines + 1) from None
    _check_text(tail, facts, line_run)
    data = tail.encode("utf-8")
    destination.write(data)
    facts.stored_bytes += len(data)
    return facts


def _check_text(text: str, facts: FileFacts, line_run: int) -> int:
    if "\x00" in text:
        raise ImportFileError("This is not a CSV file: it contains binary data. Export your list as CSV and try again.")
    first_break = text.find("\n")
    if first_break == -1:
        line_run += len(text)
    else:
        line_run += first_break
    if line_run > MAX_LINE_CHARS:
        raise ImportFileError(
            f"Line {facts.lines + 1} is longer than {MAX_LINE_CHARS // (1024 * 1024)} MB: "
            "this does not look like a list of subscribers (one per line)."
        )
    if first_break != -1:
        facts.lines += text.count("\n")
        line_run = len(text) - text.rfind("\n") - 1
    return line_run


def inspect_stored(path: str, facts: FileFacts) -> FileFacts:
    """Sniff the delimiter and read the header and the first rows of the stored UTF-8 file."""
    with open(path, "rb") as stored:
        head = stored.read(SAMPLE_BYTES)
    cut = head.rfind(b"\n") + 1 if len(head) == SAMPLE_BYTES and b"\n" in head else len(head)
    text = head[:cut].decode("utf-8", errors="replace")
    facts.delimiter = sniff_delimiter(text)
    rows = [row for row in _read_rows(text, facts.delimiter, PREVIEW_ROWS + 1) if row]
    if not rows:
        raise ImportFileError("The file is empty. Choose a CSV file with a header row and one row per subscriber.")
    facts.columns = [cell.strip()[:PREVIEW_CELL_CHARS] for cell in rows[0]]
    facts.preview = [[cell[:PREVIEW_CELL_CHARS] for cell in row] for row in rows[1:]]
    end = first_record_end(head)
    facts.header_bytes = end if end is not None else len(head)
    return facts


def _read_rows(text: str, delimiter: str, limit: int) -> list[list[str]]:
    csv.field_size_limit(MAX_LINE_CHARS + 1)
    rows = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    while len(rows) < limit:
        try:
            rows.append(next(reader))
        except StopIteration:
            break
        except csv.Error:
            continue
    return rows


def sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # One column, or a shape the sniffer cannot decide: the most frequent candidate wins.
        counts = {delimiter: sample.count(delimiter) for delimiter in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def first_record_end(block: bytes) -> int | None:
    """The offset just past the first line break that is outside double quotes, if any."""
    position = block.find(b"\n")
    while position != -1:
        if block.count(b'"', 0, position) % 2 == 0:
            return position + 1
        position = block.find(b"\n", position + 1)
    return None


# --- Column mapping ---------------------------------------------------------------------


def attribute_key(header: str, index: int) -> str:
    """A custom field's key made from a column's name: lower-case letters, digits and underscores."""
    key = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    if not key or not key[0].isalpha():
        key = f"column_{index + 1}" if not key else f"c_{key}"
    return key[:63]


def looks_like_email(value: str) -> bool:
    local, at, domain = value.strip().rpartition("@")
    return bool(at and local and "." in domain)


def guess_mapping(columns: list[str], preview: list[list[str]], *, has_header: bool = True) -> dict:
    """A first mapping for the person to check: the email column, a name column, the rest as fields."""
    rows = preview if has_header else [columns, *preview]
    email = None
    if has_header:
        email = next((i for i, header in enumerate(columns) if _EMAIL_HEADER.match(header)), None)
    if email is None:
        scores = [sum(1 for row in rows if i < len(row) and looks_like_email(row[i])) for i in range(len(columns))]
        if scores and max(scores) > 0:
            email = scores.index(max(scores))
    name = None
    if has_header:
        name = next((i for i, h in enumerate(columns) if h.strip().lower() in _NAME_HEADERS and i != email), None)
    attributes, used = [], set()
    for index, header in enumerate(columns):
        if index in (email, name):
            continue
        key = attribute_key(header if has_header else "", index)
        while key in used or key in {"email", "name"}:
            key = f"{key}_{index + 1}"[:63]
        used.add(key)
        attributes.append([key, index])
    return {"email": email, "name": name, "attributes": attributes[:MAX_ATTRIBUTES]}


def check_mapping(mapping: dict, column_count: int) -> dict:
    """The mapping in its canonical form, or ImportFileError saying what is wrong with it."""
    email = mapping.get("email")
    if not isinstance(email, int) or not 0 <= email < column_count:
        raise ImportFileError("Choose the column that holds the email addresses.")
    name = mapping.get("name")
    if name is not None and (not isinstance(name, int) or not 0 <= name < column_count):
        raise ImportFileError("The name column is not a column of this file.")
    attributes, keys = [], set()
    for item in mapping.get("attributes") or []:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ImportFileError("Each custom field must be given as [key, column].")
        key, column = item
        if not isinstance(key, str) or not _ATTRIBUTE_KEY.fullmatch(key):
            raise ImportFileError(
                f"{key!r} cannot be a custom field's key: use lower-case letters, digits and underscores, "
                "starting with a letter."
            )
        if not isinstance(column, int) or not 0 <= column < column_count:
            raise ImportFileError(f"The custom field {key!r} points at no column of this file.")
        if column in (email, name):
            raise ImportFileError(f"The column of the custom field {key!r} is already mapped to email or name.")
        if key in keys:
            raise ImportFileError(f"Two columns are mapped to the custom field {key!r}.")
        keys.add(key)
        attributes.append([key, column])
    if len(attributes) > MAX_ATTRIBUTES:
        raise ImportFileError(f"An import can fill at most {MAX_ATTRIBUTES} custom fields.")
    return {"email": email, "name": name, "attributes": attributes}


def mapping_from_spec(spec: object, columns: list[str]) -> dict:
    """An API client's mapping, with columns named by header or by 0-based position, made canonical.

    `{"email": "Email", "name": "Full name", "attributes": {"city": "Town", "plan": 4}}`
    """
    if not isinstance(spec, dict):
        raise ImportFileError(
            'The mapping must be an object such as {"email": "Email", "attributes": {"city": "City"}}.'
        )

    def column(reference: object, what: str) -> int:
        if isinstance(reference, bool):
            reference = None
        if isinstance(reference, int) and 0 <= reference < len(columns):
            return reference
        if isinstance(reference, str):
            wanted = reference.strip().lower()
            for index, header in enumerate(columns):
                if header.strip().lower() == wanted:
                    return index
        raise ImportFileError(f"The file has no column {reference!r} for {what}; its columns are {columns}.")

    mapping = {
        "email": column(spec.get("email"), "the email address"),
        "name": None if spec.get("name") is None else column(spec["name"], "the name"),
        "attributes": [],
    }
    attributes = spec.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise ImportFileError('"attributes" must map each custom field\'s key to a column.')
    for key, reference in attributes.items():
        mapping["attributes"].append([key, column(reference, f"the custom field {key!r}")])
    return check_mapping(mapping, len(columns))


# --- Validating rows ----------------------------------------------------------------------

# The fast path. An address whose part before the @ is dot-separated runs of ASCII letters,
# digits, "_", "+" and "-" (at most 64 characters, 254 in all) and whose domain email-validator
# has already accepted unchanged (checked once per distinct domain) is exactly one email-validator
# accepts, with the same lower-cased form. Every other address goes through email-validator
# itself, so what is accepted and the reason for a rejection are email-validator's.
_PLAIN_LOCAL_PART = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*")
_DOMAIN_CACHE_LIMIT = 100_000


class AddressChecker:
    """Validates addresses (syntax only, no DNS), looking each distinct domain up once."""

    def __init__(self) -> None:
        self._domains: dict[str, bool] = {}

    def check(self, raw: str) -> tuple[str | None, str | None]:
        """(lower-cased address, None) when valid, else (None, the reason)."""
        email = raw.strip()
        if not email:
            return None, "The email address is empty."
        lowered = email.lower()
        local, at, domain = lowered.rpartition("@")
        if at and len(lowered) <= 254 and len(local) <= 64 and _PLAIN_LOCAL_PART.fullmatch(local):
            plain = self._domains.get(domain)
            if plain is None:
                if len(self._domains) >= _DOMAIN_CACHE_LIMIT:
                    self._domains.clear()
                plain = self._domains[domain] = _domain_is_plain(domain)
            if plain:
                return lowered, None
        try:
            return validate_email(email, check_deliverability=False).normalized.lower(), None
        except EmailNotValidError as exc:
            return None, str(exc)


def _domain_is_plain(domain: str) -> bool:
    """email-validator accepts this domain and leaves it as it is (ASCII, already lower-case)."""
    if not domain.isascii():
        return False
    try:
        result = validate_email("a@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return False
    return result.domain == domain and result.ascii_domain == domain


def chunk_ranges(path: str, start: int, target: int) -> Iterator[tuple[int, int]]:
    """Byte ranges of about `target` bytes from `start`, each ending at a line end outside quotes.

    Quotes are counted from the range's start, which is a record boundary. A field with stray
    quotes outside a quoted field could fool the count; after 8 targets without a clean cut
    the range ends at the last line break instead, so memory stays bounded.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as stored:
        while start < size:
            stored.seek(start)
            block = stored.read(target)
            if start + len(block) >= size:
                yield start, size
                return
            cut = last_record_end(block)
            while cut is None and len(block) < 8 * target:
                more = stored.read(target)
                if not more:
                    break
                block += more
                cut = last_record_end(block)
            if cut is None:
                if start + len(block) >= size:
                    yield start, size
                    return
                cut = block.rfind(b"\n") + 1 or len(block)
            yield start, start + cut
            start += cut


def last_record_end(block: bytes) -> int | None:
    """The offset just past the last line break outside double quotes, if any."""
    position = block.rfind(b"\n")
    quotes = block.count(b'"', 0, position) if position != -1 else 0
    while position != -1:
        if quotes % 2 == 0:
            return position + 1
        previous = block.rfind(b"\n", 0, position)
        quotes -= block.count(b'"', previous + 1, position)
        position = previous
    return None


@dataclass(frozen=True)
class ChunkJob:
    """One range of the stored file to validate, and how to read it."""

    path: str
    start: int
    end: int
    index: int
    delimiter: str
    email_column: int
    name_column: int | None
    attribute_columns: tuple[int, ...]
    buckets: int
    workspace_id: int
    digest_key: bytes | None = None


@dataclass
class ChunkResult:
    index: int
    end: int
    records: int  # rows read, blank lines included (they keep row numbers right)
    data_rows: int  # rows that were not blank
    staged: bytes  # CSV for COPY: chunk, line, bucket, email, name, digest, attribute values...
    rejected: list[tuple[int, str, list[str]]]  # (record within the chunk, reason, cells)


_checker: AddressChecker | None = None


class _Lines(list):
    """A file-like sink for csv.writer that keeps the lines (lighter than a growing StringIO)."""

    write = list.append


def process_chunk(job: ChunkJob) -> ChunkResult:
    """Validate one range: the valid rows as staging CSV, the rejected ones with their reasons."""
    global _checker
    if _checker is None:
        # One per process, so the domain cache lasts across the chunks a pool process handles.
        _checker = AddressChecker()
    check = _checker.check
    csv.field_size_limit(MAX_LINE_CHARS + 1)
    with open(job.path, "rb") as stored:
        stored.seek(job.start)
        text = stored.read(job.end - job.start).decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=job.delimiter)
    output = _Lines()
    write = csv.writer(output, lineterminator="\n").writerow
    rejected: list[tuple[int, str, list[str]]] = []
    email_column, name_column, attribute_columns = job.email_column, job.name_column, job.attribute_columns
    chunk, buckets, digest_key, prefix = job.index, job.buckets, job.digest_key, f"{job.workspace_id}:"
    crc32, blank = zlib.crc32, ("",)
    record = data_rows = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejected.append((record, f"The row cannot be read as CSV: {exc}.", []))
            record += 1
            data_rows += 1
            continue
        line = record
        record += 1
        width = len(row)
        if not width or (width == 1 and not row[0].strip()):
            continue
        data_rows += 1
        email, reason = check(row[email_column]) if email_column < width else (None, "The row has no email column.")
        if email is None:
            rejected.append((line, reason, row))
            continue
        name = row[name_column].strip() if name_column is not None and name_column < width else ""
        digest = hmac.new(digest_key, (prefix + email).encode(), hashlib.sha256).hexdigest() if digest_key else ""
        values = [row[column].strip() if column < width else "" for column in attribute_columns] or blank
        write((chunk, line, crc32(email.encode()) % buckets, email, name, digest, *values))
    return ChunkResult(
        index=job.index,
        end=job.end,
        records=record,
        data_rows=data_rows,
        staged="".join(output).encode("utf-8"),
        rejected=rejected,
    )


# --- The validating processes -----------------------------------------------------------
#
# Plain child processes running `python -m subscribers.import_pipeline`, rather than a
# multiprocessing pool: a pool's "spawn" start re-imports the parent's __main__ (a Celery
# worker, a test runner, a script), "fork" would copy a process holding a database connection
# and all of Django into each child. These import this module only, and exit when their input
# closes, so they never outlive the worker that started them.


def _send(stream: BinaryIO, payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("!Q", len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: BinaryIO) -> object | None:
    header = stream.read(8)
    if len(header) < 8:
        return None
    (length,) = struct.unpack("!Q", header)
    data = stream.read(length)
    if len(data) < length:
        return None
    # Frames come only from our own child or parent process over a pipe.
    return pickle.loads(data)  # noqa: S301


def serve() -> None:
    """A validating process: read jobs on stdin, write results on stdout, until stdin closes."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while (job := _receive(source)) is not None:
        try:
            _send(sink, process_chunk(job))
        except Exception as exc:  # reported to the parent, which fails the import
            _send(sink, RuntimeError(f"{type(exc).__name__}: {exc}"))


class ValidatorProcesses:
    """`count` validating processes; `map` runs jobs through them, results in the jobs' order."""

    def __init__(self, count: int, *, cwd: str | None = None):
        self.count = count
        self.cwd = cwd
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> ValidatorProcesses:
        for _ in range(self.count):
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "subscribers.import_pipeline"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    cwd=self.cwd,
                )
            )
        return self

    def __exit__(self, *exc_info) -> None:
        for process in self.processes:
            with contextlib.suppress(OSError):
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(OSError):
                process.stdout.close()

    def map(self, jobs: Iterable[ChunkJob]) -> Iterator[ChunkResult]:
        """Job k goes to process k mod count; at most two jobs per process are in flight."""
        jobs = iter(jobs)
        sent = received = 0
        window = 2 * self.count
        exhausted = False
        while True:
            while not exhausted and sent - received < window:
                job = next(jobs, None)
                if job is None:
                    exhausted = True
                    break
                _send(self.processes[sent % self.count].stdin, job)
                sent += 1
            if received == sent:
                return
            result = _receive(self.processes[received % self.count].stdout)
            if result is None:
                raise RuntimeError("A validating process stopped unexpectedly.")
            if isinstance(result, Exception):
                raise result
            received += 1
            yield result


if __name__ == "__main__":
    # Through the package, so that what is pickled names subscribers.import_pipeline, not __main__.
    from subscribers.import_pipeline import serve as serve_jobs

    serve_jobs()
