"""Metrics of generated text against the responses: exact match and sequence accuracy (token for
token, EOS included), corpus BLEU (sacrebleu, its standard 13a tokenization) and ROUGE-L F1
(rouge-score, stemmed), each from 0 to 1."""
from __future__ import annotations


def generated_metrics(texts: list[str], ids: list[list[int]], targets: list[str], target_ids: list[list[int]],
                      wanted: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    count = max(1, len(targets))
    if "exact_match" in wanted:
        values["exact_match"] = sum(p.strip() == t.strip() for p, t in zip(texts, targets)) / count
    if "sequence_accuracy" in wanted:
        values["sequence_accuracy"] = sum(p == t for p, t in zip(ids, target_ids)) / count
    if "bleu" in wanted:
        from sacrebleu.metrics import BLEU

        values["bleu"] = BLEU().corpus_score(texts, [targets]).score / 100 if targets else 0.0
    if "rouge" in wanted:
        from rouge_score.rouge_scorer import RougeScorer

        scorer = RougeScorer(["rougeL"], use_stemmer=True)
        values["rouge"] = sum(scorer.score(t, p)["rougeL"].fmeasure for p, t in zip(texts, targets)) / count
    return values
