"""`python -m tests.mcp_fake_server INDEX_DIR`: the MCP server over stdio, on tests/data/tiny with hashing embeddings.

What `qa mcp` runs, minus the real embedding model, so the fast suite can drive it with the SDK's stdio client.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qa import Assistant, Settings
from tests.fakes import HashEmbeddings
from ui.mcp_server import serve_mcp

TINY = Path(__file__).resolve().parent / "data" / "tiny"
COVERAGE_RANKER = Path(__file__).resolve().parent / "data" / "coverage_ranker.json"

if __name__ == "__main__":
    settings = Settings(corpus_dir=TINY, index_dir=Path(sys.argv[1]), engine="extractive", ranker_path=COVERAGE_RANKER)
    serve_mcp(Assistant.load(settings, embedder=HashEmbeddings()))
