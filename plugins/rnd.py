"""rnd: random network distillation novelty bonus driving the policy-gradient update."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from pydantic import Field
from torch import nn

from banel_framework.hookspecs import hookimpl
from banel_framework.run import Run
from banel_framework.samples import Samples

from .policy_gradient import NoveltyBonus, PolicyGradientMethod, PolicyGradientOptions
from .sequence_features import hashed_features


class RndOptions(PolicyGradientOptions):
    """The policy update plus the RND bonus."""

    beta: float = Field(1.0, ge=0, description="Weight of the normalised RND bonus in the reward.")
    feature_dim: int = Field(2048, ge=8, description="Hashed sequence features (RND input width).")
    hidden: int = Field(128, ge=1, description="Hidden width of the target and predictor networks.")
    embedding: int = Field(64, ge=1, description="Output width of the random target network.")
    predictor_lr: float = Field(1e-3, gt=0, description="Adam learning rate of the predictor.")
    predictor_epochs: int = Field(2, ge=1, description="Passes over each batch by the predictor.")
    predictor_batch_size: int = Field(64, ge=1, description="Samples per predictor step.")


def _mlp(sizes: list[int], seed: int) -> nn.Sequential:
    """Linear layers with ReLU between them, initialised from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)


class RndBonus(NoveltyBonus):
    """Novelty = squared error of a trained predictor against a fixed random network."""

    def __init__(self, opts: RndOptions, seed: int):
        super().__init__()
        self.opts = opts
        d, h, k = opts.feature_dim, opts.hidden, opts.embedding
        self.target = _mlp([d, h, k], seed).requires_grad_(False)
        self.predictor = _mlp([d, h, h, k], seed + 1)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=opts.predictor_lr)

    def _error(self, feats: torch.Tensor) -> torch.Tensor:
        return ((self.predictor(feats) - self.target(feats)) ** 2).mean(1)

    @torch.no_grad()
    def raw(self, samples: Samples) -> torch.Tensor:
        return self._error(hashed_features(samples, self.opts.feature_dim))

    def learn(self, samples: Samples, seed: int) -> dict[str, Any]:
        feats = hashed_features(samples, self.opts.feature_dim)
        gen = torch.Generator().manual_seed(seed)
        bs, loss = self.opts.predictor_batch_size, torch.tensor(0.0)
        for _ in range(self.opts.predictor_epochs):
            order = torch.randperm(len(feats), generator=gen)
            for i in range(0, len(order), bs):
                loss = self._error(feats[order[i:i + bs]]).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
        return {"predictor_loss": float(loss.detach())}

    def state(self) -> dict[str, Any]:
        return {"target": self.target.state_dict(), "predictor": self.predictor.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.target.load_state_dict(state["target"])
        self.predictor.load_state_dict(state["predictor"])
        self.optimizer.load_state_dict(state["optimizer"])


class RndMethod(PolicyGradientMethod):
    """REINFORCE on extrinsic reward plus beta times the normalised RND bonus."""

    name = "rnd"
    description = "Random network distillation novelty bonus driving a policy-gradient update."
    Options = RndOptions

    def make_bonus(self, run: Run) -> NoveltyBonus:
        return RndBonus(self.options, run.seed("rnd"))


@hookimpl
def register_methods(register):
    register(RndMethod.name, RndMethod)
