"""qa.ingest.epub: e-books built here with zipfile; spine order, scripts kept out, bombs and DRM refused."""

from __future__ import annotations

import re
import struct
import zipfile
from pathlib import Path

import pytest

from qa.errors import DocumentTooLarge, EncryptedDocument, UnreadableDocument
from qa.ingest import epub as epub_module
from qa.ingest import extraction as extraction_module
from qa.ingest.epub import extract_epub
from qa.ingest.extraction import NO_TEXT

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""
PACKAGE = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Lighthouse Keeper</dc:title></metadata>
  <manifest>
    <item id="c2" href="text/chapter%202.xhtml" media-type="application/xhtml+xml"/>
    <item id="c1" href="text/chapter1.xhtml" media-type="application/xhtml+xml"/>
    <item id="css" href="style.css" media-type="text/css"/>
    <item id="cover" href="cover.jpg" media-type="image/jpeg"/>
    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
  </manifest>
  <spine><itemref idref="nav"/><itemref idref="c1"/><itemref idref="cover"/><itemref idref="c2"/></spine>
</package>"""
CHAPTER = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title>
<style>p {{ text-indent: 1em }}</style><script>var x = "SCRIPT-TEXT";</script></head>
<body><h2>{title}</h2>{body}</body></html>"""
CHAPTERS = {
    "OEBPS/text/chapter1.xhtml": CHAPTER.format(
        title="Chapter One", body="<p>The keeper lit the lamp at dusk.</p><p>Ships passed \ufb01ve miles out.</p>"
    ),
    "OEBPS/text/chapter 2.xhtml": CHAPTER.format(
        title="Chapter Two", body="<p>In the morning the fog\r\n lifted.</p><p>A letter came from the mainland.</p>"
    ),
}


def make_epub(path: Path, members: dict[str, str | bytes] | None = None) -> None:
    files: dict[str, str | bytes] = {
        "META-INF/container.xml": CONTAINER,
        "OEBPS/content.opf": PACKAGE,
        "OEBPS/style.css": "p { color: red }",
        "OEBPS/nav.xhtml": CHAPTER.format(title="Contents", body="<nav><ol><li>Chapter One</li></ol></nav>"),
        **CHAPTERS,
    }
    files.update(members or {})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, data in files.items():
            archive.writestr(name, data)


def test_chapters_in_spine_order(tmp_path: Path) -> None:
    path = tmp_path / "book.epub"
    make_epub(path)
    extraction = extract_epub(path)
    assert extraction.text == (
        "Chapter One\nThe keeper lit the lamp at dusk.\nShips passed five miles out.\n"
        "Chapter Two\nIn the morning the fog lifted.\nA letter came from the mainland.\n"
    )
    assert extraction.title == "The Lighthouse Keeper"
    assert not CONTROL.search(extraction.text) and "SCRIPT" not in extraction.text and "indent" not in extraction.text
    assert extraction.warnings == ()


def test_missing_chapter_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "book.epub"
    make_epub(path)
    rebuilt = tmp_path / "partial.epub"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for info in source.infolist():
            if info.filename != "OEBPS/text/chapter1.xhtml":
                target.writestr(info, source.read(info))
    extraction = extract_epub(rebuilt)
    assert extraction.text.startswith("Chapter Two\n")
    assert len(extraction.warnings) == 1 and "OEBPS/text/chapter1.xhtml" in extraction.warnings[0]


def test_external_entities_are_not_expanded(tmp_path: Path) -> None:
    package = PACKAGE.replace(
        '<?xml version="1.0" encoding="utf-8"?>',
        '<?xml version="1.0"?><!DOCTYPE package [<!ENTITY secret SYSTEM "file:///etc/hostname">]>',
    ).replace("The Lighthouse Keeper", "&secret;")
    path = tmp_path / "xxe.epub"
    make_epub(path, {"OEBPS/content.opf": package})
    extraction = extract_epub(path)
    assert extraction.title in (None, "")
    assert "Chapter One" in extraction.text


def test_drm_encrypted_book_is_refused(tmp_path: Path) -> None:
    encryption = """<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
        xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
        <enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
        <enc:CipherData><enc:CipherReference URI="OEBPS/text/chapter1.xhtml"/></enc:CipherData>
        </enc:EncryptedData></encryption>"""
    path = tmp_path / "drm.epub"
    make_epub(path, {"META-INF/encryption.xml": encryption})
    with pytest.raises(EncryptedDocument, match="DRM"):
        extract_epub(path)


def test_obfuscated_fonts_are_not_drm(tmp_path: Path) -> None:
    encryption = """<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
        xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
        <enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>
        <enc:CipherData><enc:CipherReference URI="OEBPS/font.otf"/></enc:CipherData>
        </enc:EncryptedData></encryption>"""
    path = tmp_path / "fonts.epub"
    make_epub(path, {"META-INF/encryption.xml": encryption})
    assert "The keeper lit the lamp" in extract_epub(path).text


def test_decompression_bomb_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extraction_module, "MAX_ZIP_BYTES", 1_000_000)
    monkeypatch.setattr(epub_module, "MAX_ZIP_BYTES", 1_000_000)
    path = tmp_path / "bomb.epub"
    make_epub(path, {"OEBPS/text/chapter1.xhtml": b"<p>" + b" " * 5_000_000 + b"</p>"})
    assert path.stat().st_size < 100_000
    with pytest.raises(DocumentTooLarge, match="decompression bomb"):
        extract_epub(path)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"META-INF/container.xml": "<container/>"}, "names no package document"),
        ({"OEBPS/content.opf": "<package><unclosed></package>"}, "not well-formed"),
    ],
)
def test_broken_book_is_a_clear_error(tmp_path: Path, members: dict[str, str | bytes], message: str) -> None:
    path = tmp_path / "broken.epub"
    make_epub(path, members)
    with pytest.raises(UnreadableDocument, match=message):
        extract_epub(path)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "book.epub"
    path.write_text("plain text")
    with pytest.raises(UnreadableDocument, match="not an EPUB"):
        extract_epub(path)


def understate_sizes(path: Path, member: str, claimed: int) -> None:
    """Rewrite the zip so that `member` claims to unpack to `claimed` bytes (a bomb that lies in its headers)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while local >= 0:  # local file headers: the size is at offset 22, the name at 30
        if data[local + 30 : local + 30 + len(name)] == name:
            struct.pack_into("<I", data, local + 22, claimed)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0:  # central directory entries: the size is at offset 24, the name at 46
        if data[central + 46 : central + 46 + len(name)] == name:
            struct.pack_into("<I", data, central + 24, claimed)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def test_bomb_that_understates_its_size_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "liar.epub"
    make_epub(path, {"OEBPS/text/chapter1.xhtml": b"<p>" + b" " * 20_000_000 + b"</p>"})
    understate_sizes(path, "OEBPS/text/chapter1.xhtml", 100)
    with pytest.raises(UnreadableDocument, match="liar.epub"):  # zipfile stops at the claimed size: bad CRC
        extract_epub(path)


def test_book_without_text_says_so(tmp_path: Path) -> None:
    path = tmp_path / "pictures.epub"
    blank = CHAPTER.format(title="", body="<img src='plate.jpg'/>").replace("<h2></h2>", "")
    make_epub(path, {name: blank for name in CHAPTERS})
    extraction = extract_epub(path)
    assert extraction.text == "" and extraction.warnings == (NO_TEXT,)
