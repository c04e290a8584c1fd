"""The import's file handling and validation, without the database: encodings, bad files, splitting, addresses."""

import codecs
import io

import pytest
from email_validator import EmailNotValidError, validate_email

from subscribers import import_pipeline as pipeline


def store(data: bytes, max_bytes: int = 50 * 1024 * 1024):
    out = io.BytesIO()
    facts = pipeline.store_utf8(
        iter([data[i : i + 65536] for i in range(0, len(data), 65536)]), out, max_bytes=max_bytes
    )
    return facts, out.getvalue()


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_cells_that_a_spreadsheet_would_run_get_a_leading_apostrophe(cell):
    assert pipeline.neutralise(cell) == "'" + cell


def test_ordinary_cells_are_exported_as_they_are():
    assert pipeline.neutralise_row(["ann@example.com", "Ann", "", "3=3", None]) == [
        "ann@example.com",
        "Ann",
        "",
        "3=3",
        "",
    ]


def test_a_windows_1252_file_is_stored_as_utf8():
    text = "email,name\n" + "".join(f"p{i}@example.com,Zoë Ångström Straße {i}\n" for i in range(50))
    facts, stored = store(text.encode("cp1252"))
    assert stored.decode("utf-8") == text
    assert facts.encoding != "utf_8"
    assert facts.lines == 51


def test_a_utf16_file_with_its_byte_order_mark_is_stored_as_utf8():
    text = "email,name\nann@example.com,Ann Ünal\n"
    facts, stored = store(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert stored.decode("utf-8") == text
    assert facts.encoding == "utf_16"


@pytest.mark.parametrize("data", [b"", b"   \n\n  "])
def test_an_empty_file_is_refused(data):
    with pytest.raises(pipeline.ImportFileError, match="empty"):
        store(data)


def test_a_binary_file_is_refused():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40
    with pytest.raises(pipeline.ImportFileError, match="binary"):
        store(png)


def test_a_file_that_changes_encoding_part_way_is_refused_with_the_line():
    utf8 = "".join(f"p{i}@example.com,Zoë {i}\n" for i in range(5000)).encode("utf-8")
    latin1 = "late@example.com,Zoë\n".encode("latin-1")
    with pytest.raises(pipeline.ImportFileError, match="line 5002"):
        store(b"email,name\n" + utf8 + latin1)


def test_a_single_byte_file_with_utf8_inside_is_refused():
    data = "email,name\nann@example.com,Zoë\n".encode("cp1252") + "bob@example.com,Zoë\n".encode()
    with pytest.raises(pipeline.ImportFileError, match="mixes character encodings"):
        store(data)


def test_a_line_of_10_mb_is_refused():
    with pytest.raises(pipeline.ImportFileError, match="Line 2 is longer than 1 MB"):
        store(b"email\n" + b"a" * (10 * 1024 * 1024))


def test_a_file_over_the_limit_is_refused():
    with pytest.raises(pipeline.ImportFileError, match="larger than the 1 MB limit"):
        store(b"email\n" + b"ann@example.com\n" * 70_000, max_bytes=1024 * 1024)


def test_the_delimiter_is_sniffed():
    assert pipeline.sniff_delimiter("email;name\na@x.com;A\nb@x.com;B\n") == ";"
    assert pipeline.sniff_delimiter("email\ta\nx@y.com\t1\n") == "\t"
    assert pipeline.sniff_delimiter("email\na@x.com\n") == ","


def test_the_mapping_is_guessed_from_the_header_or_the_values():
    mapping = pipeline.guess_mapping(["Full Name", "E-mail", "City"], [["Ann", "ann@example.com", "Oslo"]])
    assert mapping == {"email": 1, "name": 0, "attributes": [["city", 2]]}
    by_value = pipeline.guess_mapping(["who", "contact"], [["Ann", "ann@example.com"]])
    assert by_value["email"] == 1
    assert pipeline.guess_mapping(["a", "b"], [["1", "2"]])["email"] is None


def test_an_api_mapping_names_columns_by_header_or_position():
    columns = ["Email", "Name", "Town"]
    assert pipeline.mapping_from_spec({"email": "email", "attributes": {"city": 2}}, columns) == {
        "email": 0,
        "name": None,
        "attributes": [["city", 2]],
    }
    with pytest.raises(pipeline.ImportFileError, match="no column 'Mail'"):
        pipeline.mapping_from_spec({"email": "Mail"}, columns)
    with pytest.raises(pipeline.ImportFileError, match="cannot be a custom field"):
        pipeline.mapping_from_spec({"email": 0, "attributes": {"Bad Key": 2}}, columns)


def test_ranges_cover_the_file_and_never_cut_inside_a_quoted_field(tmp_path):
    rows = [
        f'p{i}@example.com,"Line one\nline two, {i}"\n' if i % 7 == 0 else f"p{i}@example.com,plain {i}\n"
        for i in range(3000)
    ]
    path = tmp_path / "f.csv"
    path.write_text("".join(rows))
    ranges = list(pipeline.chunk_ranges(str(path), 0, 1024))
    assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    results = [
        pipeline.process_chunk(pipeline.ChunkJob(str(path), s, e, i, ",", 0, 1, (), 1, 1))
        for i, (s, e) in enumerate(ranges)
    ]
    assert sum(r.data_rows for r in results) == 3000
    assert not any(r.rejected for r in results)
    staged = b"".join(r.staged for r in results).decode()
    assert staged.count('"Line one\nline two, 0"') == 1


# Addresses on both sides of the fast path's rule; each must get email-validator's own verdict.
ADDRESSES = [
    "ann@example.com",
    "Ann.Lee+news@Example.COM",
    "a_b-c@sub.domain.co.uk",
    "x@example.test",
    "x@localhost",
    "x@example",
    "x@-bad.com",
    "x@bad-.com",
    "x@exa_mple.com",
    "x@123.456",
    "x@[127.0.0.1]",
    ".ann@example.com",
    "ann.@example.com",
    "an..n@example.com",
    "ann@@example.com",
    "ann example@example.com",
    '"quoted"@example.com',
    "o'brien@example.com",
    "weird!#$%&'*/=?^`{|}~@example.com",
    "josé@example.com",
    "ann@bücher.de",
    "ann@xn--bcher-kva.de",
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "ann@" + "a" * 63 + ".com",
    "ann@" + "a" * 64 + ".com",
    "a@" + ".".join(["b" * 60] * 4) + ".com",
    "postmaster@example.com",
    "ann@example.com.",
    "ann@exa--mple.com",
    " ann@example.com ",
    "",
    "ann",
    "@example.com",
    "ann@",
    "ann@example..com",
    "ann@.example.com",
    "ANN@EXAMPLE.ONION",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_fast_path_agrees_with_email_validator(address):
    checker = pipeline.AddressChecker()
    for _ in range(2):  # the second time the domain comes from the cache
        email, reason = checker.check(address)
        try:
            expected = validate_email(address.strip(), check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            assert (email, reason) == (None, str(exc) if address.strip() else "The email address is empty.")
        else:
            assert (email, reason) == (expected, None)
