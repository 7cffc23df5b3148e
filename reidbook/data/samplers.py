"""P×K identity sampling for metric-learning losses, and the training DataLoader built on it.

The batch-hard triplet loss (Hermans, Beyer & Leibe, "In Defense of the Triplet Loss", 2017, Sec. 2)
needs every batch to hold P identities with K images each, so that each anchor has K-1 positives
and (P-1)·K negatives in the batch. MGN (§4.1: P = 16, K = 4) and most baselines train this way.

One epoch here:
1. every identity's images are shuffled and cut into chunks of K (an identity with fewer than K
   images is topped up by sampling its own images with replacement; a last chunk shorter than K
   is dropped, as in the common open-source sampler);
2. batches are formed by drawing P *distinct* identities that still have chunks — with probability
   proportional to how many chunks they have left, so big identities are not left over at the end —
   and taking one chunk of each;
3. the epoch has a fixed number of batches, ``floor(total chunks / P)``: if step 2 runs out of
   distinct identities early, the remaining batches draw P random identities afresh. A fixed length
   keeps per-iteration learning-rate schedules and ``len(loader)`` exact.

Everything is drawn from a NumPy generator seeded by ``(seed, epoch)``, so the batches of an epoch
are a pure function of the data, the seed and the epoch: resumed runs see the same batches.
Under DDP, rank ``r`` of ``R`` takes batches ``r, r+R, r+2R, ...`` (the same count on every rank).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from .image import ImageDataset


def _dist_defaults(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """``(world size, rank)`` from ``torch.distributed`` when initialised, else ``(1, 0)``."""
    dist = torch.distributed
    ready = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if ready else 1
    if rank is None:
        rank = dist.get_rank() if ready else 0
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}")
    return num_replicas, rank


class RandomIdentitySampler(Sampler[int]):
    """Yields dataset indices in batches of ``P = batch_size // num_instances`` identities × ``K = num_instances``.

    Use with ``DataLoader(..., batch_size=batch_size, sampler=sampler, drop_last=True)`` (see
    :func:`make_train_loader`): consecutive runs of ``batch_size`` indices are the P×K batches.

    Args:
        items: ``[(path, pid, camid), ...]``, the training split.
        batch_size: P × K.
        num_instances: K, images per identity in a batch.
        seed: base seed; epoch ``e`` uses ``(seed, e)``.
        num_replicas, rank: DDP world size and rank (default: from ``torch.distributed`` if
            initialised, else 1 and 0).

    Epochs: ``set_epoch(e)`` selects the epoch for the next iteration; after a complete iteration
    the sampler moves on to the next epoch by itself, so a loop that never calls ``set_epoch``
    still sees fresh batches every epoch (and the same ones again from a fresh sampler).
    """

    def __init__(self, items: Sequence, batch_size: int, num_instances: int, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None):
        if num_instances < 1 or batch_size < num_instances or batch_size % num_instances:
            raise ValueError(
                f"batch_size ({batch_size}) must be a positive multiple of num_instances ({num_instances}): "
                "a batch is P identities × K images"
            )
        self.pids = np.asarray([int(it[1]) for it in items], dtype=np.int64)
        self.batch_size, self.num_instances = int(batch_size), int(num_instances)
        self.num_pids_per_batch = self.batch_size // self.num_instances
        self.seed = int(seed)
        self.num_replicas, self.rank = _dist_defaults(num_replicas, rank)
        self.epoch, self.start_batch = 0, 0

        index_of = defaultdict(list)
        for i, pid in enumerate(self.pids.tolist()):
            index_of[pid].append(i)
        self.index_of = {pid: np.asarray(ix) for pid, ix in sorted(index_of.items())}
        self.pid_list = list(self.index_of)
        if len(self.pid_list) < self.num_pids_per_batch:
            raise ValueError(
                f"a P×K batch needs P={self.num_pids_per_batch} distinct identities but the training set has "
                f"only {len(self.pid_list)}; lower batch_size or raise num_instances"
            )
        # chunks of K per identity: max(1, n // K) — fixed, so the epoch length is too
        self.chunks_per_pid = np.asarray([max(1, len(ix) // self.num_instances) for ix in self.index_of.values()])
        self.batches_per_epoch = int(self.chunks_per_pid.sum()) // self.num_pids_per_batch
        self.batches_per_rank = self.batches_per_epoch // self.num_replicas
        if self.batches_per_rank == 0:
            raise ValueError(
                f"the training set yields {self.batches_per_epoch} P×K batches an epoch, fewer than the "
                f"{self.num_replicas} ranks; lower batch_size or the number of processes"
            )
        self._cache: tuple[int, list[np.ndarray]] | None = None

    # -- epoch construction ------------------------------------------------------------------
    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """All batches of ``epoch`` (every rank's), each an int array of P×K dataset indices."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        K, P = self.num_instances, self.num_pids_per_batch
        chunks: list[list[np.ndarray]] = []
        for ix in self.index_of.values():
            ix = rng.choice(ix, size=K, replace=True) if len(ix) < K else rng.permutation(ix)
            chunks.append([ix[j * K:(j + 1) * K] for j in range(len(ix) // K)])
        left = np.asarray([len(c) for c in chunks], dtype=np.float64)
        batches = []
        while len(batches) < self.batches_per_epoch and np.count_nonzero(left) >= P:
            chosen = rng.choice(len(chunks), size=P, replace=False, p=left / left.sum())
            batches.append(np.concatenate([chunks[c][int(left[c]) - 1] for c in chosen]))
            left[chosen] -= 1
        while len(batches) < self.batches_per_epoch:  # top-up: P fresh random identities
            chosen = rng.choice(len(chunks), size=P, replace=False)
            ids = list(self.index_of.values())
            batches.append(np.concatenate([rng.choice(ids[c], size=K, replace=len(ids[c]) < K) for c in chosen]))
        self._cache = (epoch, batches)
        return batches

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's batches for ``epoch`` (default: the current one), as lists of indices."""
        e = self.epoch if epoch is None else epoch
        mine = self._epoch_batches(e)[self.rank::self.num_replicas][: self.batches_per_rank]
        return [b.tolist() for b in mine]

    # -- Sampler protocol --------------------------------------------------------------------
    def __iter__(self) -> Iterator[int]:
        epoch, start = self.epoch, self.start_batch
        for b in self.batches(epoch)[start:]:
            yield from b
        # a complete pass: move on to the next epoch unless set_epoch() changed it meanwhile
        if self.epoch == epoch:
            self.epoch, self.start_batch = epoch + 1, 0

    def __len__(self) -> int:
        return (self.batches_per_rank - self.start_batch) * self.batch_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (and optionally skip its first ``start_batch`` batches) for the next pass."""
        if not 0 <= start_batch <= self.batches_per_rank:
            raise ValueError(f"start_batch must be in [0, {self.batches_per_rank}], got {start_batch}")
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    # -- resume ------------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        return hashlib.sha1(self.pids.tobytes()).hexdigest()[:16]

    def state_dict(self, batches_done: int = 0) -> dict:
        """What a checkpoint needs to reproduce the coming batches.

        ``batches_done``: batches of the current epoch already trained on (a mid-epoch
        checkpoint); the engine knows this, the sampler cannot (DataLoader prefetches ahead).
        """
        return {"seed": self.seed, "epoch": self.epoch, "start_batch": self.start_batch + int(batches_done),
                "batch_size": self.batch_size, "num_instances": self.num_instances,
                "num_replicas": self.num_replicas, "rank": self.rank, "fingerprint": self._fingerprint()}

    def load_state_dict(self, state: dict) -> None:
        # A different world size is fine at an epoch boundary (an epoch's batches depend on seed and
        # epoch only; ranks just slice them differently), not in the middle of one.
        keys = ["batch_size", "num_instances"] + (["num_replicas"] if state.get("start_batch", 0) else [])
        for key in keys:
            if state.get(key) is not None and state[key] != getattr(self, key):
                raise ValueError(
                    f"sampler state was saved with {key}={state[key]} but this sampler has "
                    f"{key}={getattr(self, key)}; resume with the same settings"
                )
        if state.get("fingerprint") not in (None, self._fingerprint()):
            raise ValueError("sampler state was saved for a different training set (pid list differs)")
        self.seed = int(state["seed"])
        self._cache = None
        self.set_epoch(int(state["epoch"]), int(state.get("start_batch", 0)))


def _seed_worker(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a DataLoader worker from torch's per-worker seed."""
    import random

    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_train_loader(dataset_items: Sequence, transform: Callable | None, P: int, K: int, seed: int = 0,
                      num_workers: int = 0, cache: bool = False, pin_memory: bool = False,
                      num_replicas: int | None = None, rank: int | None = None) -> DataLoader:
    """A training ``DataLoader`` of P×K batches: ``(images [P·K,3,H,W], pids, camids, indices)``.

    Every batch has exactly ``P·K`` images (``drop_last=True``; the sampler's length is a multiple
    of it). Augmentation randomness comes from torch's global RNG (workers are seeded from it),
    so ``torch.manual_seed`` plus the sampler's ``(seed, epoch)`` make a run repeatable.
    ``cache=True`` keeps decoded images in memory (per worker; workers persist across epochs).
    """
    ds = ImageDataset(dataset_items, transform=transform, cache=cache)
    sampler = RandomIdentitySampler(ds.items, batch_size=P * K, num_instances=K, seed=seed,
                                    num_replicas=num_replicas, rank=rank)
    return DataLoader(ds, batch_size=P * K, sampler=sampler, num_workers=num_workers, drop_last=True,
                      pin_memory=pin_memory, worker_init_fn=_seed_worker if num_workers else None,
                      persistent_workers=num_workers > 0)
