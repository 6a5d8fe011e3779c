"""Endless minibatches from tensors already on the training device."""

from __future__ import annotations

import torch


class MinibatchStream:
    """Minibatches of ``batch_size`` rows; every epoch is a fresh permutation from a seeded generator.

    The last partial batch of an epoch is dropped so that every step sees the same batch size (one
    compiled graph, comparable step noise). A dataset smaller than ``batch_size`` is one full batch.
    The permutation is drawn on the CPU (reproducible across devices) and moved once per epoch.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, seed: int) -> None:
        self.x, self.y = x, y
        self.n = int(x.shape[0])
        self.batch_size = min(batch_size, self.n)
        self.batches_per_epoch = self.n // self.batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self._order = torch.empty(0, dtype=torch.int64)
        self._next = self.batches_per_epoch  # start a new epoch on the first call

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``(x, y)`` minibatch."""
        if self._next == self.batches_per_epoch:
            self._order = torch.randperm(self.n, generator=self.generator).to(self.x.device, non_blocking=True)
            self._next = 0
            self.epoch += 1
        idx = self._order[self._next * self.batch_size : (self._next + 1) * self.batch_size]
        self._next += 1
        return self.x[idx], self.y[idx]
