"""Deterministic, stratified, leakage-free train/val/test split."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val", "test")


def _rng(seed: int, key: str) -> np.random.Generator:
    # derived from the class name, not Python's salted hash(), so PYTHONHASHSEED cannot matter
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def split_sizes(n: int, val: float, test: float) -> tuple[int, int, int]:
    """How many of ``n`` groups go to train/val/test: every class keeps >= 1 train group.

    A class with >= 3 groups gets >= 1 val group, one with >= 4 also >= 1 test group.
    """
    n_val = max(1, round(n * val)) if n >= 3 else 0
    n_test = max(1, round(n * test)) if n >= 4 else 0
    while n_val + n_test >= n:  # large fractions: trim the larger held-out part, keep one train
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def assign_splits(
    labels: Sequence[str],
    groups: Sequence[str],
    *,
    seed: int = 0,
    val: float = 0.1,
    test: float = 0.1,
) -> list[str]:
    """Return the split of each item; items sharing a group (identical pixels) stay together.

    Stratified per label; input order does not matter (groups are sorted before shuffling).
    """
    by_label: dict[str, set[str]] = defaultdict(set)
    for label, group in zip(labels, groups, strict=True):
        by_label[label].add(group)
    group_split: dict[tuple[str, str], str] = {}
    for label, members in by_label.items():
        ordered = sorted(members)
        order = _rng(seed, label).permutation(len(ordered))
        n_train, n_val, _ = split_sizes(len(ordered), val, test)
        for rank, idx in enumerate(order):
            split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            group_split[(label, ordered[idx])] = split
    return [group_split[(lab, grp)] for lab, grp in zip(labels, groups, strict=True)]


def hamming(hashes: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances of ``(N, B)`` uint8 packed hashes: ``(N, N)`` int."""
    words = np.ascontiguousarray(hashes).view(np.uint64)  # (N, B / 8)
    return np.bitwise_count(words[:, None, :] ^ words[None, :, :]).sum(axis=2)


def near_duplicate_groups(
    labels: Sequence[str], hashes: np.ndarray, max_distance: int = 2
) -> list[str]:
    """A group id per item: items of the same label whose hashes are within ``max_distance``
    are linked (transitively), so that near copies land in the same split.
    """
    parent = list(range(len(labels)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    for members in by_label.values():
        idx = np.asarray(members)
        dist = hamming(hashes[idx])  # (n, n): classes hold at most a few dozen images
        for a, b in zip(*np.nonzero(np.triu(dist <= max_distance, k=1)), strict=True):
            parent[root(int(idx[a]))] = root(int(idx[b]))
    # name each group by its smallest member hash so ids do not depend on input order
    names: dict[int, bytes] = {}
    for i in range(len(labels)):
        r = root(i)
        names[r] = min(names.get(r, hashes[i].tobytes()), hashes[i].tobytes())
    return [names[root(i)].hex() for i in range(len(labels))]


def cross_split_similar(
    labels: Sequence[str], hashes: np.ndarray, splits: Sequence[str], max_distance: int
) -> int:
    """How many held-out items have a same-label item in train within ``max_distance``."""
    count = 0
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    for members in by_label.values():
        idx = np.asarray(members)
        dist = hamming(hashes[idx])
        is_train = np.array([splits[i] == "train" for i in idx])
        for row in range(len(idx)):
            if not is_train[row] and (dist[row][is_train] <= max_distance).any():
                count += 1
    return count
