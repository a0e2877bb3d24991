"""PPO on the vectorized environments: config, network, jitted trainer, evaluation, checkpoints."""

from sepsisim_jax.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sepsisim_jax.training.config import PPOConfig, default_config
from sepsisim_jax.training.evaluate import evaluate, ppo_policy
from sepsisim_jax.training.ppo import RunnerState, Trainer, UpdateMetrics, make_train
from sepsisim_jax.training.run import (
    TrainingResult,
    evaluate_seeds,
    held_out_key,
    init_seeds,
    train_ppo,
)

__all__ = [
    "CheckpointError",
    "PPOConfig",
    "RunnerState",
    "Trainer",
    "TrainingResult",
    "UpdateMetrics",
    "default_config",
    "evaluate",
    "evaluate_seeds",
    "held_out_key",
    "init_seeds",
    "load_checkpoint",
    "make_train",
    "ppo_policy",
    "save_checkpoint",
    "train_ppo",
]
