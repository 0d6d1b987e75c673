"""Scoring taggers as the CoNLL evaluation does: entity-level precision, recall and F1 (an
entity counts as found only when its words and type match exactly), micro over all entities and
per type, and token accuracy."""

from __future__ import annotations

from typing import Sequence

from electra_tf.data.tagging import entity_spans


def tagging_metrics(true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]
                    ) -> dict:
    """Scores IOB2 predictions against IOB2 truth, sentence by sentence.

    Returns:
        {"examples": sentences, "words", "token_accuracy", "precision", "recall", "f1" (micro,
         entity level), "per_type": {TYPE: {precision, recall, f1, support}}}. A type never
        predicted has precision 0, as conlleval and seqeval report it.
    """
    if len(true_tags) != len(predicted_tags):
        raise ValueError(f"{len(true_tags)} true sentences but {len(predicted_tags)} predicted.")
    found, gold, correct = {}, {}, {}
    words = right = 0
    for truth, predicted in zip(true_tags, predicted_tags):
        if len(truth) != len(predicted):
            raise ValueError(f"a sentence of {len(truth)} words has {len(predicted)} predictions")
        words += len(truth)
        right += sum(t == p for t, p in zip(truth, predicted))
        true_spans, predicted_spans = set(entity_spans(truth)), set(entity_spans(predicted))
        for spans, counts in ((true_spans, gold), (predicted_spans, found),
                              (true_spans & predicted_spans, correct)):
            for kind, _, _ in spans:
                counts[kind] = counts.get(kind, 0) + 1
    per_type = {kind: _scores(correct.get(kind, 0), found.get(kind, 0), gold.get(kind, 0))
                for kind in sorted(set(gold) | set(found))}
    micro = _scores(sum(correct.values()), sum(found.values()), sum(gold.values()))
    return {"examples": len(true_tags), "words": words,
            "token_accuracy": right / words if words else 0.0,
            "precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1"],
            "per_type": per_type}


def _scores(correct: int, found: int, gold: int) -> dict:
    precision = correct / found if found else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": gold}


def format_tagging_metrics(metrics: dict) -> str:
    """Entity F1, precision and recall, per type, and token accuracy, in a few lines."""
    lines = [f"entity F1 {metrics['f1']:.4f}  precision {metrics['precision']:.4f}  recall "
             f"{metrics['recall']:.4f}  token accuracy {metrics['token_accuracy']:.4f}  "
             f"({metrics['examples']} sentences, {metrics['words']} words)",
             f"{'type':<8} precision recall    f1 support"]
    for kind, scores in metrics["per_type"].items():
        lines.append(f"{kind:<8} {scores['precision']:9.4f} {scores['recall']:6.4f} "
                     f"{scores['f1']:6.4f} {scores['support']:7d}")
    return "\n".join(lines)
