"""The sentence embedder: unit vectors, the same whether texts come alone or in a batch, torch threads restored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from qa.embed import SentenceEmbedder

TEXTS = ["Kabul airport bombing", "Wang Yi met Baradar in Tianjin.", "A recipe for sourdough bread", "Wakhan"]


def test_small_inputs_match_batches_and_restore_torch_threads(embedder: SentenceEmbedder) -> None:
    threads = torch.get_num_threads()
    batch = np.asarray(embedder.embed_documents(TEXTS * 3))  # above single_thread_up_to: all threads
    with ThreadPoolExecutor(max_workers=4) as pool:
        alone = list(pool.map(embedder.embed_query, TEXTS * 3))
    assert np.allclose(np.stack(alone), batch, atol=1e-5)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert torch.get_num_threads() == threads


def test_a_query_runs_on_one_torch_thread(embedder: SentenceEmbedder, monkeypatch) -> None:
    seen: list[int] = []
    encode = embedder._model.encode

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return encode(*args, **kwargs)

    monkeypatch.setattr(embedder._model, "encode", spy)
    embedder.embed_query("How many people died?")
    embedder.embed_documents(TEXTS * 3)
    assert seen == [1, torch.get_num_threads()]
