"""Adapting the embedding model to a company's own Q&A: contrastive training with in-batch negatives.

Questions that share an answer are positives for each other; a question whose answer no other question
shares is paired with the answer text itself. Each batch holds pairs of distinct answers only, so every
other pair in the batch is a true negative (the loss is InfoNCE / multiple-negatives ranking).
"""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence

from csbot.errors import RetrievalError
from retrieval.config import FinetuneConfig
from retrieval.embeddings import Embedder
from retrieval.records import QARecord

log = logging.getLogger(__name__)


def training_pairs(records: Sequence[QARecord], seed: int) -> list[tuple[str, str, str]]:
    """``(anchor, positive, answer key)`` triples: each question with another of the same answer."""
    rng = random.Random(seed)
    groups: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for question in [record.question, *(p.question for p in record.merged)]:
            groups[record.answer].append(question)
    pairs = []
    for answer, questions in groups.items():
        if len(questions) == 1:
            pairs.append((questions[0], answer, answer))
            continue
        for index, question in enumerate(questions):
            other = rng.randrange(len(questions) - 1)
            pairs.append((question, questions[other + (other >= index)], answer))
    return pairs


def distinct_answer_batches(pairs: list[tuple[str, str, str]], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches in which no two pairs share an answer (so no in-batch negative is a false one)."""
    rng = random.Random(seed)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    open_batches: list[tuple[list[int], set[str]]] = []
    for index in order:
        key = pairs[index][2]
        for members, keys in open_batches:
            if key not in keys:
                members.append(index)
                keys.add(key)
                if len(members) == batch_size:
                    batches.append(members)
                    open_batches.remove((members, keys))
                break
        else:
            open_batches.append(([index], {key}))
        if len(open_batches) > 8:  # bound the search; flush the fullest partial batch
            open_batches.sort(key=lambda b: -len(b[0]))
            flushed = open_batches.pop(0)[0]
            if len(flushed) > 1:  # a one-pair batch has no negative: its loss is 0 and the step is wasted
                batches.append(flushed)
    batches.extend(members for members, _ in open_batches if len(members) > 1)
    rng.shuffle(batches)
    return batches


def finetune_embedder(
    embedder: Embedder,
    records: Sequence[QARecord],
    config: FinetuneConfig,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, float]:
    """Train ``embedder`` in place on ``records``; returns the first and last epoch's mean loss.

    ``progress`` is called after every step with (step, total steps, loss). Mixed precision on CUDA.
    """
    import torch
    import torch.nn.functional as F

    pairs = training_pairs(records, config.seed)
    if len(pairs) < 2 or len({p[2] for p in pairs}) < 2:
        raise RetrievalError("fine-tuning needs at least two different answers in the Q&A data")
    model = embedder.model
    device = embedder.device
    model.float()
    model.train()
    torch.manual_seed(config.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    steps_per_epoch = len(distinct_answer_batches(pairs, config.batch_size, config.seed))
    total = max(1, steps_per_epoch * config.epochs)
    warmup = int(total * config.warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    # sentence-transformers 6 renamed tokenize to preprocess, whose features carry non-tensors ("modality")
    preprocess = getattr(model, "preprocess", None) or model.tokenize

    def embed(texts: list[str]) -> torch.Tensor:
        features = preprocess(texts)
        features = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        return F.normalize(model(features)["sentence_embedding"].float(), dim=-1)

    step, epoch_losses = 0, []
    try:
        for epoch in range(config.epochs):
            losses = []
            for batch in distinct_answer_batches(pairs, config.batch_size, config.seed + epoch):
                anchors = [pairs[i][0] for i in batch]
                positives = [pairs[i][1] for i in batch]
                with torch.autocast("cuda", enabled=use_amp):
                    a, p = embed(anchors), embed(positives)
                    logits = config.scale * a @ p.T
                    target = torch.arange(len(batch), device=logits.device)
                    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                if not math.isfinite(loss.item()):
                    raise RetrievalError(f"fine-tuning diverged at step {step + 1}; lower finetune.learning_rate")
                optimiser.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimiser)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimiser)
                scaler.update()
                scheduler.step()
                step += 1
                losses.append(loss.item())
                if progress is not None:
                    progress(step, total, losses[-1])
            epoch_losses.append(sum(losses) / max(1, len(losses)))
            log.info("fine-tuning epoch %d: mean loss %.4f over %d steps", epoch + 1, epoch_losses[-1], len(losses))
    finally:
        model.eval()
        embedder.prepare_for_inference()
    return {"first_epoch_loss": epoch_losses[0] if epoch_losses else float("nan"),
            "last_epoch_loss": epoch_losses[-1] if epoch_losses else float("nan"), "steps": step, "pairs": len(pairs)}
