"""The HTTP API fuzzed from its own OpenAPI document (/v1/openapi.json) with schemathesis: valid and invalid
bodies for every operation against a live server (tiny corpus, hashing embeddings). No server error, every
response an object the document describes, with the content type it names.

Bounded for `make test`: FUZZ_EXAMPLES per operation (250 requests, about 45 s on a busy 2-core machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qa import Assistant, Settings
from tests.conftest import COVERAGE_RANKER, TINY
from tests.fakes import HashEmbeddings
from tests.servers import live_server
from ui.app import build_server
from ui.openai_request import model_ids
from ui.openapi import openapi_schema

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated")

FUZZ_EXAMPLES = 50
SCHEMA = schemathesis.openapi.from_dict(openapi_schema(model_ids(["extractive"])))
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        corpus_dir=TINY,
        index_dir=tmp_path_factory.mktemp("fuzz") / "index",
        engine="extractive",
        ranker_path=COVERAGE_RANKER,
    )
    with live_server(build_server(Assistant.load(settings, embedder=HashEmbeddings()), settings)) as served:
        yield served


@SCHEMA.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_api_never_answers_with_a_server_error(case: Any, url: str) -> None:
    """Positive and negative cases (schemathesis' default modes) for every operation of the document."""
    response = case.call(base_url=url, timeout=30)
    case.validate_response(response, checks=CHECKS)
