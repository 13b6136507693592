"""Bookkeeping shared by the runtimes' time-to-first-token loops (no runtime imports here)."""

from __future__ import annotations


class TTFTRecorder:
    """Collects (tokenize, total) times per repetition, skipping the warmup one."""

    def __init__(self, warmup: bool, on_sample=None) -> None:
        self.warmup = warmup
        self.on_sample = on_sample
        self.total: list[int] = []
        self.tokenize: list[int] = []
        self.first_token = None

    def add(self, i: int, t0: int, t1: int, t2: int, token) -> None:
        if self.warmup and i == 0:
            return
        self.first_token = token
        self.total.append(t2 - t0)
        self.tokenize.append(t1 - t0)
        if self.on_sample:
            self.on_sample(t2 - t0)
