"""The Gymnasium entry points under the name Minari datasets and ``gym.make`` registrations
store (``sepsisim_jax.gymnasium_adapter:SepsisGymEnv``); the code is in
:mod:`sepsisim_jax.adapters.gymnasium`."""

from sepsisim_jax.adapters.gymnasium import SepsisGymEnv, SepsisVectorEnv

__all__ = ["SepsisGymEnv", "SepsisVectorEnv"]
