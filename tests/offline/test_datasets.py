"""Minari datasets: they load back with Minari's API in its layout, hold the episodes that
``record_episodes`` records for the same key with the behaviour's density, recover their
environment and carry the behaviour's true value; bad inputs fail before anything is written."""

from __future__ import annotations

import importlib
import re
import sys
import warnings

import gymnasium
import jax
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.cli import main
from sepsisim_jax.gymnasium_adapter import SepsisGymEnv
from sepsisim_jax.offline import (
    VALUE_KEY_FOLD,
    behaviour_policy,
    collect,
    dataset_metadata,
    load_episodes,
)
from sepsisim_jax.offline.episodes import policy_value, record_episodes
from sepsisim_jax.training import PPOConfig, PPOPolicy, save_checkpoint
from sepsisim_jax.training.normalization import RunningStats
from sepsisim_jax.training.policy import actor_critic

minari = pytest.importorskip("minari")
from minari.data_collector import EpisodeBuffer  # noqa: E402

# One worker runs this module, so that its module fixtures compile once (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("datasets")

ENV_ID = "FluidResuscitation-v0"  # deaths end episodes early: both kinds of episode end
CONFIG = {"severity": "hard", "patient_spread": 0.2}  # virtual patients: drawn params in info
N, CHUNK, VALUE_N, SEED, EPSILON = 24, 16, 32, 5, 0.3  # two chunks, one compilation
KEY = jax.random.key(SEED)
STEP_ARRAYS = ("actions", "rewards", "terminations", "truncations")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh ``MINARI_DATASETS_PATH`` for this module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        yield


@pytest.fixture(scope="module")
def setup(store):
    env, params = sepsisim_jax.make(ENV_ID, **CONFIG)
    return env, params, behaviour_policy(env, "heuristic", epsilon=EPSILON)


def _collect(dataset_id, **options):
    return collect(
        ENV_ID,
        "heuristic",
        N,
        KEY,
        dataset_id=dataset_id,
        epsilon=EPSILON,
        chunk_size=CHUNK,
        value_episodes=VALUE_N,
        progress=False,
        **CONFIG,
        **options,
    )


@pytest.fixture(scope="module")
def logged(setup):
    return _collect("sepsisim_test/logged-v0").id


@pytest.fixture(scope="module")
def recorded(setup):
    env, params, policy = setup
    return record_episodes(env, params, policy, KEY, N, chunk_size=CHUNK, progress=False)


def test_minari_loads_every_episode_with_one_more_observation_and_info_than_steps(
    setup, logged, recorded
):
    env, params, policy = setup
    dataset = minari.load_dataset(logged)
    assert dataset.total_episodes == N and dataset.total_steps == recorded.lengths.sum()
    log_prob = jax.jit(jax.vmap(policy.log_prob, in_axes=(0, 0, None)))
    hidden = {"bacteria", "tissue_damage", "k_growth", "k_kill"}  # state and drawn parameters
    atoms = []
    for i, episode in enumerate(dataset.iterate_episodes()):
        steps = recorded.lengths[i]
        assert episode.observations.shape == (steps + 1, len(env.observation_names))
        assert all(len(getattr(episode, k)) == steps for k in STEP_ARRAYS)
        np.testing.assert_array_equal(episode.observations, recorded.observations[i, : steps + 1])
        ended = episode.terminations | episode.truncations
        assert ended[-1] and not ended[:-1].any()
        assert not (episode.terminations & episode.truncations).any()
        assert set(episode.infos) == set(env.info_names) | {"log_prob", "atom"} >= hidden
        assert all(len(v) == steps + 1 for v in episode.infos.values())
        bacteria = recorded.infos["bacteria"][i, : steps + 1]
        np.testing.assert_array_equal(episode.infos["bacteria"], bacteria)
        logp, atom = log_prob(episode.observations[:-1], episode.actions, params)
        np.testing.assert_allclose(episode.infos["log_prob"][:-1], logp, rtol=1e-6)
        np.testing.assert_array_equal(episode.infos["atom"][:-1], atom)
        assert np.isnan(episode.infos["log_prob"][-1]) and not episode.infos["atom"][-1]
        atoms.append(atom)
    atoms = np.concatenate(atoms)
    assert atoms.any() and not atoms.all()  # epsilon 0.3: the heuristic's actions and others
    assert recorded.terminations.any() and recorded.truncations.any()


@pytest.mark.parametrize("reader", ["batched", "minari"])
def test_load_episodes_gives_back_what_record_episodes_records_for_the_same_key(
    logged, recorded, reader
):
    episodes = load_episodes(minari.load_dataset(logged), reader=reader, progress=False)
    for field in ("observations", *STEP_ARRAYS, "lengths", "log_prob", "atom"):
        loaded, expected = getattr(episodes, field), getattr(recorded, field)
        assert loaded.dtype == expected.dtype, field
        np.testing.assert_array_equal(loaded, expected, err_msg=field)
    assert list(episodes.infos) == list(recorded.infos)
    for name, values in recorded.infos.items():
        np.testing.assert_array_equal(episodes.infos[name], values, err_msg=name)


def test_the_batched_writer_stores_what_minaris_writer_stores(logged):
    batched = minari.load_dataset(logged)
    reference = _collect("sepsisim_test/minari-writer-v0", writer="minari")
    assert reference.storage.metadata["total_steps"] == batched.total_steps
    for ours, theirs in zip(batched.iterate_episodes(), reference.iterate_episodes(), strict=True):
        for name in ("observations", *STEP_ARRAYS):
            a, b = getattr(ours, name), getattr(theirs, name)
            assert a.dtype == b.dtype and a.shape == b.shape, name
            np.testing.assert_array_equal(a, b)
        assert ours.infos.keys() == theirs.infos.keys()
        for name, values in theirs.infos.items():
            assert ours.infos[name].dtype == values.dtype
            np.testing.assert_array_equal(ours.infos[name], values)


def test_recover_environment_gives_a_working_env_of_the_same_configuration(setup, logged):
    env, _, _ = setup
    dataset = minari.load_dataset(logged)
    gym_env = dataset.recover_environment()
    assert isinstance(gym_env.unwrapped, SepsisGymEnv)
    assert gym_env.unwrapped.functional_env == env  # severity, spread, observation, solver
    assert gym_env.observation_space == dataset.observation_space
    assert gym_env.action_space == dataset.action_space
    obs, info = gym_env.reset(seed=0)
    assert obs in gym_env.observation_space and "k_growth" in info
    obs, reward, *_ = gym_env.step(gym_env.action_space.sample())
    assert obs in gym_env.observation_space and np.isfinite(reward)


def test_the_metadata_carries_the_behaviours_true_value_and_the_configuration(setup, logged):
    env, params, policy = setup
    meta = dataset_metadata(minari.load_dataset(logged))
    value_key = jax.random.fold_in(KEY, VALUE_KEY_FOLD)
    truth = policy_value(env, params, policy, value_key, VALUE_N, gamma=0.99, progress=False)
    assert {k: meta["true_value"][k] for k in truth.to_dict()} == truth.to_dict()
    assert meta["true_value"]["discounted_se"] > 0 and meta["true_value"]["n"] == VALUE_N
    assert meta["behaviour"]["kind"] == "epsilon" and meta["behaviour"]["epsilon"] == EPSILON
    assert "epsilon" in meta["behaviour"]["density"]
    assert meta["env"] | CONFIG == meta["env"] and meta["env"]["env_id"] == ENV_ID
    assert meta["version"] == sepsisim_jax.__version__
    assert meta["collection"]["n_episodes"] == N
    assert dataset_metadata(logged) == meta  # by id, too
    box = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    episode = EpisodeBuffer(
        observations=np.zeros((2, 1), np.float32),
        actions=np.zeros((1, 1), np.float32),
        rewards=[0.0],
        terminations=[True],
        truncations=[False],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari asks for an author, a code link, ...
        plain = minari.create_dataset_from_buffers(
            "sepsisim_test/plain-v0", [episode], observation_space=box, action_space=box
        )
    with pytest.raises(ValueError, match="not written by sepsisim_jax"):
        dataset_metadata(plain)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained PPO policy of the environment, saved as ``train`` saves one."""
    config = PPOConfig(env_id=ENV_ID, severity=CONFIG["severity"])
    dim = len(sepsisim_jax.make(ENV_ID)[0].observation_names)
    net = actor_critic(config).init(jax.random.key(0), np.zeros((1, dim), np.float32))
    directory = tmp_path_factory.mktemp("ppo")
    save_checkpoint(directory, PPOPolicy.create(config, net, RunningStats.create(dim)))
    return directory


def test_a_ppo_checkpoint_with_exploration_is_a_behaviour_policy_of_its_environment(
    setup, recorded, checkpoint
):
    env, params, _ = setup
    policy = behaviour_policy(env, "ppo", scale=0.1, checkpoint=checkpoint)
    assert policy.kind == "gaussian" and policy.name == "ppo, gaussian 0.1"

    @jax.jit
    def act(key, obs):
        action = policy(key, obs, params)
        return action, policy.log_prob(obs, action, params)[0]

    action, log_p = act(jax.random.key(2), recorded.observations[0, 0])
    assert np.all((action >= env.action_low) & (action <= env.action_high)) and np.isfinite(log_p)
    other = sepsisim_jax.make("SepsisManagement-v0")[0]
    with pytest.raises(ValueError, match="trained on FluidResuscitation-v0"):
        behaviour_policy(other, "ppo", checkpoint=checkpoint)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"policy": "greedy"}, ValueError, r"valid: \['random', 'heuristic', 'ppo'\]"),
        ({"epsilon": 1.5}, ValueError, "epsilon must be a number in"),
        ({"epsilon": 0.1, "scale": 0.1}, ValueError, "epsilon or scale, not both"),
        ({"policy": "random", "epsilon": 0.1}, ValueError, "uniform already"),
        ({"policy": "ppo"}, ValueError, "a checkpoint goes with"),
        ({"checkpoint": "runs/ppo"}, ValueError, "a checkpoint goes with"),
        ({"dataset_id": "sepsisim_test/logged-v0"}, ValueError, "already exists"),
        ({"dataset_id": "no-version"}, ValueError, "malformed dataset_id"),
        ({"n_episodes": 0}, ValueError, "n_episodes must be a positive int"),
        ({"writer": "parquet"}, ValueError, "unknown writer"),
        ({"severity": "extreme"}, ValueError, "unknown severity"),
    ],
)
def test_bad_inputs_raise_before_anything_is_written(logged, options, error, message):
    arguments = {"policy": "heuristic", "n_episodes": 4, "dataset_id": "sepsisim_test/bad-v0"}
    arguments |= options
    with pytest.raises(error, match=message):
        collect(ENV_ID, arguments.pop("policy"), arguments.pop("n_episodes"), KEY, **arguments)
    assert "sepsisim_test/bad-v0" not in minari.list_local_datasets()


def test_a_failure_after_writing_deletes_the_partial_dataset(setup, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr("sepsisim_jax.offline.datasets.policy_value", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        _collect("sepsisim_test/partial-v0")
    assert "sepsisim_test/partial-v0" not in minari.list_local_datasets()


def test_the_cli_writes_the_dataset_and_prints_where_and_its_true_value(logged, recorded, capsys):
    args = ["dataset", "--env", ENV_ID, "--severity", CONFIG["severity"], "--spread", "0.2"]
    args += ["--policy", "heuristic", "--epsilon", str(EPSILON), "--episodes", str(N)]
    args += ["--seed", str(SEED), "--value-episodes", str(VALUE_N), "--chunk-size", str(CHUNK)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    dataset_id = "sepsisim_jax/FluidResuscitation-v0/hard-spread0p2-heuristic-epsilon-0p3-v0"
    dataset = minari.load_dataset(dataset_id)
    value = dataset_metadata(dataset)["true_value"]
    assert value == dataset_metadata(logged)["true_value"]  # the same seed and configuration
    assert f"wrote {dataset_id} to " in printed and f"{N:,} episodes" in printed
    assert f"{value['discounted']:.3f} ± {value['discounted_se']:.3f}" in printed
    np.testing.assert_array_equal(load_episodes(dataset, progress=False).actions, recorded.actions)
    with pytest.raises(SystemExit, match=r"sepsisim-jax dataset: error: a dataset .* already"):
        main(args)
    with pytest.raises(SystemExit) as exit_info:
        main([*args[:-2], "--chunk-size", "0"])
    assert exit_info.value.code == 2


def test_the_package_imports_without_minari_and_collect_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "minari", None)  # import minari now raises ImportError
    monkeypatch.delitem(sys.modules, "sepsisim_jax.offline.datasets")
    datasets = importlib.import_module("sepsisim_jax.offline.datasets")  # no module-level import
    with pytest.raises(ImportError, match=re.escape('pip install "sepsisim-jax[offline]"')):
        datasets.collect(ENV_ID, "random", 1, KEY)
