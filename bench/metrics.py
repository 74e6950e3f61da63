"""Pairwise precision, recall and F1 of a clustering against ground truth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    clusters: int
    largest: int


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(truth: Mapping[Hashable, Hashable], predicted: Mapping[Hashable, Hashable]) -> Score:
    """Score the items of ``truth``; an item missing from ``predicted`` is a singleton."""
    cells: Counter[tuple[Hashable, Hashable]] = Counter()
    pred_sizes: Counter[Hashable] = Counter()
    truth_sizes: Counter[Hashable] = Counter()
    for item, owner in truth.items():
        cluster = predicted.get(item, ("singleton", item))
        cells[(owner, cluster)] += 1
        pred_sizes[cluster] += 1
        truth_sizes[owner] += 1
    together = sum(_pairs(n) for n in cells.values())
    predicted_pairs = sum(_pairs(n) for n in pred_sizes.values())
    true_pairs = sum(_pairs(n) for n in truth_sizes.values())
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1, len(pred_sizes), max(pred_sizes.values(), default=0))
