from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qa import QAError, Settings


def test_from_env_reads_qa_variables_with_types() -> None:
    settings = Settings.from_env(
        {"QA_INDEX_DIR": "/tmp/x", "QA_K": "7", "QA_QUOTE_FLOOR": "0.5", "QA_ENGINE": "extractive", "OTHER": "1"}
    )
    assert settings.index_dir == Path("/tmp/x") and settings.k == 7 and settings.quote_floor == 0.5
    optional = Settings.from_env({"QA_ABSTAIN_THRESHOLD": "0.3", "QA_RANKER_PATH": "~/r.json"})
    assert optional.abstain_threshold == 0.3 and optional.ranker_path == Path("~/r.json").expanduser()
    assert settings.engine == "extractive"


def test_overrides_win_and_bad_values_are_explained() -> None:
    assert Settings.from_env({"QA_K": "7"}, k=3).k == 3
    with pytest.raises(QAError, match="QA_K='many'"):
        Settings.from_env({"QA_K": "many"})
    with pytest.raises(QAError, match="overlap_tokens"):
        Settings(chunk_tokens=50, overlap_tokens=50)
    with pytest.raises(QAError, match="engine"):
        Settings(engine="gpt-9")


def test_store_is_faiss_or_a_postgresql_url_and_never_shows_its_password() -> None:
    settings = Settings.from_env({"QA_STORE": "postgresql://qa:s3cret@db.example:5432/news?sslmode=require"})
    assert settings.uses_postgres and settings.store_location == "postgresql://qa@db.example:5432/news?sslmode=require"
    assert "s3cret" not in str(settings.record()) and settings.record()["store"] == settings.store_location
    assert Settings(llm_api_key="sk-1").record()["llm_api_key"] == "***"
    assert Settings().store_location == "index/default" and not Settings().uses_postgres
    with pytest.raises(QAError, match="store='mysql://u@h/db'") as raised:
        Settings(store="mysql://u:pw@h/db")
    assert "pw" not in str(raised.value)


def test_postgres_store_without_the_pg_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import MissingDependency
    from qa.store import load_store

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDependency, match=r"qa\[pg\]"):
        load_store(Settings(store="postgresql://u@127.0.0.1:1/db"))


def test_paths_may_be_given_as_strings() -> None:
    settings = Settings(corpus_dir="seeds", index_dir="index/default", llm_model_dir="~/models")  # type: ignore[arg-type]
    assert settings.corpus_dir == Path("seeds") and settings.index_dir == Path("index/default")
    assert settings.llm_model_dir == Path("~/models").expanduser()
    assert settings.replace(index_dir="elsewhere").index_dir == Path("elsewhere")
    with pytest.raises(QAError, match="corpus_dir=3 must be a path"):
        Settings(corpus_dir=3)  # type: ignore[arg-type]
