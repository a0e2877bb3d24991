"""PPO on the vectorized environments: config, network, jitted trainer, policy, evaluation,
checkpoints."""

from sepsisim_jax.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sepsisim_jax.training.config import PPOConfig, default_config
from sepsisim_jax.training.evaluate import compare_policies, comparison_table, evaluate
from sepsisim_jax.training.policy import PPOPolicy
from sepsisim_jax.training.ppo import RunnerState, Trainer, UpdateMetrics, make_train
from sepsisim_jax.training.run import TrainingResult, held_out_key, init_seeds, train_ppo

__all__ = [
    "CheckpointError",
    "PPOConfig",
    "PPOPolicy",
    "RunnerState",
    "Trainer",
    "TrainingResult",
    "UpdateMetrics",
    "compare_policies",
    "comparison_table",
    "default_config",
    "evaluate",
    "held_out_key",
    "init_seeds",
    "load_checkpoint",
    "make_train",
    "save_checkpoint",
    "train_ppo",
]
