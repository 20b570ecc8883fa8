"""`python -m tests.mcp_fake_server INDEX_DIR [LOAD_DELAY_S]`: the MCP server over stdio, on tests/data/tiny with
hashing embeddings (loading LOAD_DELAY_S longer, as the real models would).

What `qa mcp` runs, minus the real embedding model, so the fast suite can drive it with the SDK's stdio client.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from qa import Assistant, Settings
from tests.fakes import HashEmbeddings
from ui.mcp_server import Loading, serve_mcp

TINY = Path(__file__).resolve().parent / "data" / "tiny"
COVERAGE_RANKER = Path(__file__).resolve().parent / "data" / "coverage_ranker.json"


def load(settings: Settings, delay: float) -> Assistant:
    time.sleep(delay)  # stands for the seconds the real models take
    return Assistant.load(settings, embedder=HashEmbeddings())


if __name__ == "__main__":
    settings = Settings(corpus_dir=TINY, index_dir=Path(sys.argv[1]), engine="extractive", ranker_path=COVERAGE_RANKER)
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    serve_mcp(Loading(lambda: load(settings, delay)), settings)
