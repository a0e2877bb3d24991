"""Layer 4, the adapters for other libraries' loops: Gymnasium's ``Env`` and ``VectorEnv``
(:mod:`~sepsisim_jax.adapters.gymnasium`), stable-baselines3's ``VecEnv``
(:mod:`~sepsisim_jax.adapters.sb3`, the ``sb3`` extra) and the seeds behind their
``reset(seed=...)`` (:mod:`~sepsisim_jax.adapters.seeding`)."""
