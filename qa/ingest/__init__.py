"""Corpus folder -> documents. One module per file format behind one small interface (`Reader`, in `base`), listed
in `formats`; `folder` walks the corpus; `boilerplate` finds the ranges that are not article content.
Code outside this package uses these names only.
"""

from qa.ingest.base import MAX_ARTICLE_CHARS, Reader, make_document
from qa.ingest.boilerplate import dominant_script, find_boilerplate
from qa.ingest.folder import is_index_folder, load_corpus
from qa.ingest.formats import READERS, describe_formats, reader_for

__all__ = [
    "MAX_ARTICLE_CHARS",
    "READERS",
    "Reader",
    "describe_formats",
    "dominant_script",
    "find_boilerplate",
    "is_index_folder",
    "load_corpus",
    "make_document",
    "reader_for",
]
