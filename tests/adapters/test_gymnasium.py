"""The Gymnasium adapters: registration, the Env and VectorEnv contracts, seeding, bad input."""

from __future__ import annotations

import collections
import subprocess
import sys
import warnings

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, check_space_limit
from gymnasium.vector import AutoresetMode

import sepsisim_jax
from sepsisim_jax.adapters import gymnasium as gymnasium_adapter
from sepsisim_jax.adapters.gymnasium import SepsisGymEnv, SepsisVectorEnv
from sepsisim_jax.adapters.seeding import seed_key
from tests.conftest import NOISELESS

REFERENCE_IDS = sepsisim_jax.REFERENCE_IDS
NORMALISATION_ADVICE = "For Box action spaces, we recommend using a symmetric and normalized"


def _gym_id(env_id: str) -> str:
    return f"sepsisim_jax/{env_id}"


def _random_actions(env: gym.Env, n: int, seed: int = 0, batch: tuple[int, ...] = ()) -> list:
    rng = np.random.default_rng(seed)
    space = env.action_space if not batch else env.single_action_space
    shape = (n, *batch, *space.shape)
    return list(rng.uniform(space.low, space.high, shape).astype(np.float32))


def _assert_same(a, b, path="") -> None:
    """Exact equality of nested tuples, dicts, arrays (dtype included) and scalars."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, sorted(a), sorted(b))
        for key in a:
            _assert_same(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}/{i}")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert b.dtype == object and a.shape == b.shape, path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert (x is None) == (y is None), f"{path}/{i}"
            if x is not None:
                _assert_same(x, y, f"{path}/{i}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, (path, a.dtype, b)
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


# --- registration --------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", REFERENCE_IDS)
def test_ids_are_registered_with_the_reference_time_limit(env_id):
    spec = gym.spec(_gym_id(env_id))
    _, params = sepsisim_jax.make(env_id)
    assert spec.max_episode_steps == params.max_steps_in_episode == 72
    assert spec.entry_point == "sepsisim_jax.gymnasium_adapter:SepsisGymEnv"
    assert spec.vector_entry_point == "sepsisim_jax.gymnasium_adapter:SepsisVectorEnv"
    assert spec.kwargs == {"env_id": env_id}


def test_registration_is_idempotent_and_leaves_the_reference_ids_alone():
    import sepsisim  # noqa: F401  (registers sepsisim/<id>)

    before = {env_id: gym.spec(_gym_id(env_id)) for env_id in REFERENCE_IDS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sepsisim_jax.register_gymnasium()
    for env_id in REFERENCE_IDS:
        assert gym.spec(_gym_id(env_id)) is before[env_id]
        assert gym.spec(f"sepsisim/{env_id}").entry_point.startswith("sepsisim.envs.")


@pytest.mark.parametrize("first", ["sepsisim", "sepsisim_jax"])
def test_both_packages_import_in_either_order_without_warnings(first):
    second = "sepsisim_jax" if first == "sepsisim" else "sepsisim"
    code = (
        f"import {first}, {second}, gymnasium as gym\n"
        "for env_id in ('FluidResuscitation-v0', 'SepsisManagement-v0'):\n"
        "    ours = gym.make('sepsisim_jax/' + env_id).unwrapped\n"
        "    theirs = gym.make('sepsisim/' + env_id).unwrapped\n"
        "    assert type(ours).__module__ == 'sepsisim_jax.adapters.gymnasium'\n"
        "    assert type(theirs).__module__.startswith('sepsisim.envs.')\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


# --- the single environment ----------------------------------------------------------------


@pytest.mark.parametrize("env_id", REFERENCE_IDS)
def test_spaces_types_and_info_keys_match_the_reference(env_id):
    import sepsisim  # noqa: F401

    reference = gym.make(f"sepsisim/{env_id}", severity="hard")
    env = gym.make(_gym_id(env_id), severity="hard")
    assert isinstance(env.unwrapped, SepsisGymEnv) and isinstance(env, gym.Env)
    assert env.unwrapped.functional_env.severity == "hard"
    assert env.observation_space == reference.observation_space
    assert env.action_space == reference.action_space
    _, ref_info = reference.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the passive checker gym.make adds stays silent
        obs, info = env.reset(seed=0)
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)
        assert info.keys() == ref_info.keys() and info["step"] == 0
        for _ in range(3):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    _, _, _, _, ref_info = reference.step(reference.action_space.sample())
    assert isinstance(obs, np.ndarray) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
    assert list(info) == list(ref_info) and info["step"] == 3
    assert {k: type(v) for k, v in info.items()} == {k: type(v) for k, v in ref_info.items()}


@pytest.mark.parametrize("env_id", REFERENCE_IDS)
def test_passes_gymnasium_check_env(env_id):
    """Silent with normalised actions; with the reference's action bounds, the one warning
    is the advice to normalise them, which the reference's own spaces get too."""
    import sepsisim  # noqa: F401

    for normalize, expected in [(True, set()), (False, {NORMALISATION_ADVICE})]:
        env = gym.make(_gym_id(env_id), normalize_actions=normalize).unwrapped
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env)
        messages = {str(w.message) for w in caught}
        if env_id == "VasopressorTitration-v0":  # [-0.1, 0.1] is symmetric: no advice
            expected = set()
        assert {m for m in messages if NORMALISATION_ADVICE not in m} == set(), messages
        assert bool(messages) == bool(expected), messages
    reference = gym.make(f"sepsisim/{env_id}").unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_space_limit(reference.action_space, "action")
    assert any(NORMALISATION_ADVICE in str(w.message) for w in caught) == bool(expected)


def _adapter_run(env: gym.Env, seed: int, actions: list, episodes: int) -> list:
    """Records of reset and step results over ``episodes`` episodes (unseeded resets after)."""
    records = [env.reset(seed=seed)]
    actions = iter(actions)
    while episodes:
        step = env.step(next(actions))
        records.append(step)
        if step[2] or step[3]:
            episodes -= 1
            if episodes:
                records.append(env.reset())
    return records


def _functional_run(env_id: str, seed: int, actions: list, episodes: int, **kwargs) -> list:
    """The same through the functional API, with the key chain the adapter documents."""
    env, params = sepsisim_jax.make(env_id, **kwargs)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    key, key_reset = jax.random.split(seed_key(seed))
    obs, state = reset(key_reset, params)
    records = [(np.asarray(obs),)]
    actions = iter(actions)
    while episodes:
        key, key_step = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = step(
            key_step, state, jnp.asarray(next(actions)), params
        )
        values = {name: info[name].item() for name in env.info_names}
        final = np.asarray(info["final_observation"])
        records.append((final, reward.item(), terminated.item(), truncated.item(), values))
        if terminated or truncated:
            episodes -= 1
            if episodes:
                records.append((np.asarray(obs),))
    return records


@pytest.mark.parametrize("env_id", REFERENCE_IDS)
def test_same_seed_same_episodes_as_the_functional_api(env_id):
    env = gym.make(_gym_id(env_id), severity="hard")
    actions = _random_actions(env, 200, seed=1)
    ours = _adapter_run(env, 7, actions, episodes=2)
    theirs = _functional_run(env_id, 7, actions, episodes=2, severity="hard")
    assert len(ours) == len(theirs)
    for mine, expected in zip(ours, theirs, strict=True):
        if len(expected) == 1:  # a reset: the observation (the info is checked elsewhere)
            _assert_same(mine[0], expected[0])
        else:
            _assert_same(tuple(mine), expected)


@pytest.mark.parametrize("env_id", REFERENCE_IDS)
def test_reset_seed_is_reproducible_and_seeds_differ(env_id):
    env = gym.make(_gym_id(env_id))
    actions = _random_actions(env, 200, seed=2)
    first = _adapter_run(env, 3, actions, episodes=2)
    again = _adapter_run(gym.make(_gym_id(env_id)), 3, actions, episodes=2)
    other = _adapter_run(env, 4, actions, episodes=1)
    _assert_same(first, again)
    assert not np.array_equal(first[0][0], other[0][0])


def test_episode_is_cut_at_72_steps_once():
    """The adapter's truncation and the TimeLimit of gym.make fall on the same step."""
    runs = [
        (gym.make(_gym_id("FluidResuscitation-v0")), [250.0]),
        (SepsisGymEnv("SepsisManagement-v0"), [250.0, 0.0, 1.0]),  # no TimeLimit
    ]
    for env, action in runs:
        env.reset(seed=0)
        for t in range(1, 73):
            obs, _, terminated, truncated, info = env.step(np.asarray(action, np.float32))
            assert not terminated
            assert truncated == (t == 72), t
        assert info["step"] == 72
        if env.unwrapped.functional_env.env_id == "SepsisManagement-v0":
            assert obs[8] == 72.0 and env.observation_space.contains(obs)
        obs, info = env.reset()
        assert info["step"] == 0


def test_death_terminates_and_returns_the_dying_patient():
    env = gym.make(_gym_id("VasopressorTitration-v0"))
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
    assert terminated and not truncated and info["step"] < 10  # dies within 8 hours
    assert reward < -40.0 and info["tissue_damage"] >= 0.9 and obs[3] >= 0.9
    assert env.observation_space.contains(obs)
    obs, info = env.reset()
    assert obs[3] == 0.0 and info["step"] == 0 and info["tissue_damage"] == 0.0


def test_stepping_after_death_continues_the_patient_as_the_reference(noiseless_reference):
    """Scripts that step a fixed number of hours through a death see the reference's values;
    a warning comes once per episode, and reset() admits the next patient."""
    reference = noiseless_reference("VasopressorTitration-v0", "hard")
    ours = SepsisGymEnv("VasopressorTitration-v0", severity="hard", **NOISELESS)
    reference.reset(seed=0)
    ours.reset(seed=0)
    action = np.full(1, 0.02, np.float32)
    deaths = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for hour in range(20):
            expected = reference.step(action)
            got = ours.step(action)
            np.testing.assert_allclose(got[0], expected[0], rtol=1e-3, err_msg=str(hour))
            assert got[1] == pytest.approx(expected[1], rel=1e-3, abs=1e-3)
            assert got[2] == expected[2] and got[4]["step"] == expected[4]["step"] == hour + 1
            deaths += got[2]
    ended = [w for w in caught if "episode ended" in str(w.message)]
    assert deaths > 10 and len(ended) == 1  # dead within 8 hours, and it stays dead
    obs, info = ours.reset()
    assert info["step"] == 0 and obs[3] == 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(12):
            ours.step(action)
    assert len([w for w in caught if "episode ended" in str(w.message)]) == 1


def test_non_finite_action_components_mean_no_intervention():
    env, clean = (SepsisGymEnv("SepsisManagement-v0") for _ in range(2))
    env.reset(seed=5)
    clean.reset(seed=5)
    for bad in (np.nan, np.inf, -np.inf):
        poisoned = env.step(np.array([bad, 0.05, bad], np.float32))
        _assert_same(poisoned, clean.step(np.array([0.0, 0.05, 0.0], np.float32)))
        assert np.isfinite(poisoned[0]).all()


def test_any_numeric_action_dtype_works_and_is_clipped_as_the_reference():
    runs = [SepsisGymEnv("SepsisManagement-v0") for _ in range(4)]
    actions = [
        [1000.0, 0.1, 1.0],
        np.array([5000, 3, 7], np.int64),
        np.array([1e300, 0.5, 2.0]),
        jnp.array([1000.0, 0.1, 1.0]),
    ]
    results = []
    for env, action in zip(runs, actions, strict=True):
        env.reset(seed=1)
        results.append(env.step(action))
    for result in results[1:]:
        _assert_same(result, results[0])


def test_float32_actions_take_the_same_path_as_any_other_dtype():
    """A float32 action goes to the env as it is, a float64 one is cast on the host first
    (saturating in float32 mode); the env clips both alike (out-of-bounds and non-finite
    components)."""
    values = [[5000.0, 3.0, 7.0], [-1e30, -0.7, -2.0], [np.nan, np.inf, 0.6], [250.0, 0.05, 0.4]]
    runs = {dtype: SepsisGymEnv("SepsisManagement-v0") for dtype in (np.float32, np.float64)}
    vectors = {dtype: SepsisVectorEnv("SepsisManagement-v0", num_envs=2) for dtype in runs}
    for dtype in runs:
        runs[dtype].reset(seed=4)
        vectors[dtype].reset(seed=4)
    for value in values:
        action = {dtype: np.asarray(value, dtype) for dtype in runs}
        _assert_same(*(runs[d].step(action[d]) for d in runs))
        batch = {d: np.stack([action[d], action[d][::-1].copy()]) for d in runs}
        _assert_same(*(vectors[d].step(batch[d]) for d in runs))


def test_unseeded_reset_mid_episode_continues_the_key_chain():
    env_id = "SepsisManagement-v0"
    env = SepsisGymEnv(env_id)
    env.reset(seed=9)
    actions = _random_actions(env, 3, seed=5)
    for action in actions:
        env.step(action)
    obs, info = env.reset()
    functional, params = sepsisim_jax.make(env_id)
    key, key_reset = jax.random.split(seed_key(9))
    _, state = functional.reset(key_reset, params)
    for action in actions:
        key, key_step = jax.random.split(key)
        state = functional.step(key_step, state, jnp.asarray(action), params)[1]
    key, key_reset = jax.random.split(key)
    expected, state = functional.reset(key_reset, params)
    _assert_same(obs, np.asarray(expected))
    assert info["step"] == 0 and info["bacteria"] == state.patient.inflammation.bacteria.item()


def test_normalized_actions_map_linearly_onto_the_reference_bounds():
    raw, scaled = (
        SepsisGymEnv("SepsisManagement-v0"),
        SepsisGymEnv("SepsisManagement-v0", normalize_actions=True),
    )
    assert scaled.action_space == gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    raw.reset(seed=2)
    scaled.reset(seed=2)
    cases = [
        ([-1, 0, 1], [0, 0, 1]),
        ([0, 1, -1], [500, 0.1, 0]),
        ([1, -1, 0.2], [1000, -0.1, 0.6]),
    ]
    for unit, mapped in cases:
        expected = raw.step(np.asarray(mapped, np.float32))
        _assert_same(scaled.step(np.asarray(unit, np.float32)), expected)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros(2), r"expects a numeric action of shape \(3,\), got shape \(2,\)"),
        (np.zeros((1, 3)), r"shape \(3,\), got shape \(1, 3\)"),
        (0.5, r"shape \(3,\), got shape \(\)"),
        ("abc", r"shape \(3,\), got dtype <U3"),
        (np.array([1, None, 2], dtype=object), r"shape \(3,\), got dtype object"),
        ([[1.0, 2.0], [3.0]], r"expects a numeric action of shape \(3,\)"),
        (np.zeros(3, np.complex64), r"got dtype complex64"),
    ],
)
def test_bad_actions_raise_value_error_naming_the_shape(action, message):
    env = gym.make(_gym_id("SepsisManagement-v0"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_step_before_reset_raises_clearly():
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        SepsisGymEnv("FluidResuscitation-v0").step(np.zeros(1, np.float32))
    with pytest.raises(gym.error.ResetNeeded):  # gym.make's OrderEnforcing says it first
        gym.make(_gym_id("FluidResuscitation-v0")).step(np.zeros(1, np.float32))
    vector = gym.make_vec(_gym_id("FluidResuscitation-v0"), num_envs=2)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        vector.step(np.zeros((2, 1), np.float32))


def test_bad_kwargs_raise():
    with pytest.raises(TypeError, match="unknown parameter"):
        gym.make(_gym_id("SepsisManagement-v0"), severty="hard")
    with pytest.raises(TypeError, match="unknown parameter"):
        gym.make_vec(_gym_id("SepsisManagement-v0"), num_envs=2, k_grow=0.5)
    with pytest.raises(ValueError, match="valid severities"):
        gym.make(_gym_id("SepsisManagement-v0"), severity="extreme")
    with pytest.raises(ValueError, match="outside its range"):
        gym.make(_gym_id("FluidResuscitation-v0"), k_growth=5.0)
    with pytest.raises(ValueError, match="do not render"):
        SepsisGymEnv("FluidResuscitation-v0", render_mode="human")
    with pytest.raises(ValueError, match="scalar parameters"):
        SepsisGymEnv("FluidResuscitation-v0", k_growth=np.array([0.5, 0.6]))


def test_parameter_overrides_reach_the_simulation():
    noiseless = {"map_noise_sd": 0.0, "urine_noise_sd": 0.0, "admission_jitter": 0.0}
    obs = [gym.make(_gym_id("FluidResuscitation-v0"), **noiseless).reset(seed=s)[0] for s in (1, 2)]
    _assert_same(obs[0], obs[1])
    assert obs[0][0] == 75.0  # the noiseless admission MAP


@pytest.mark.slow
def test_jitted_functions_are_built_once_and_never_retraced(monkeypatch):
    traces: collections.Counter = collections.Counter()

    def counted(name, fn):
        def wrapper(*args):
            traces[name] += 1
            return fn(*args)

        return wrapper

    batch = gymnasium_adapter._Batch
    gymnasium_adapter._batch.cache_clear()
    monkeypatch.setattr(batch, "_step", counted("step", batch._step))
    monkeypatch.setattr(batch, "_reset", counted("reset", batch._reset))
    try:
        envs = [gym.make(_gym_id("VasopressorTitration-v0")) for _ in range(2)]
        assert envs[0].unwrapped._jit is envs[1].unwrapped._jit
        actions = [[0.05], np.array([1], np.int64), np.array([-0.02]), jnp.zeros(1)]
        for env in envs:
            env.reset(seed=0)
            for t in range(40):  # several deaths and resets (patients die within 8 h)
                *_, terminated, truncated, _ = env.step(actions[t % 4])
                if terminated or truncated:
                    env.reset()
        assert traces == {"step": 1, "reset": 1}
        vector = gym.make_vec(_gym_id("VasopressorTitration-v0"), num_envs=3)
        vector.reset(seed=0)
        for _ in range(20):
            vector.step(np.zeros((3, 1)))
        assert traces == {"step": 2, "reset": 2}
    finally:
        gymnasium_adapter._batch.cache_clear()


def test_runs_in_float64():
    with jax.enable_x64(True):
        env = SepsisGymEnv("SepsisManagement-v0")
        obs, _ = env.reset(seed=0)
        for _ in range(5):
            obs, reward, *_ = env.step(env.action_space.sample())
        assert obs.dtype == np.float32 and type(reward) is float
        assert env.observation_space.contains(obs)


@pytest.mark.parametrize("env_id", ["FluidResuscitation-v0", "SepsisManagement-v0"])
def test_float64_episodes_equal_the_functional_api(env_id):
    """Under x64 the single env's record holds 8-byte floats: still exact."""
    with jax.enable_x64(True):
        env = gym.make(_gym_id(env_id), severity="hard", antibiotic_efficacy=0.1)
        actions = _random_actions(env, 200, seed=6)
        ours = _adapter_run(env, 2**32 + 3, actions, episodes=2)
        theirs = _functional_run(
            env_id, 2**32 + 3, actions, episodes=2, severity="hard", antibiotic_efficacy=0.1
        )
    assert len(ours) == len(theirs)
    for mine, expected in zip(ours, theirs, strict=True):
        if len(expected) == 1:
            _assert_same(mine[0], expected[0])
        else:
            _assert_same(tuple(mine), expected)


# --- seeds ---------------------------------------------------------------------------------


def test_seed_key_is_jax_random_key_below_2_32_and_distinct_above():
    data = jax.random.key_data
    assert np.array_equal(data(seed_key(5)), data(jax.random.key(5)))
    assert np.array_equal(data(seed_key(2**32 - 1)), data(jax.random.key(2**32 - 1)))
    assert not np.array_equal(data(seed_key(2**32 + 5)), data(seed_key(5)))
    assert not np.array_equal(data(seed_key(2**63)), data(seed_key(0)))
    with pytest.raises(ValueError, match=r"\[0, 2\*\*64\)"):
        seed_key(2**64)


# --- the vector environment ----------------------------------------------------------------


def test_make_vec_gives_a_same_step_vector_env_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Gymnasium reads the -v1 ids (another patient model) as upgrades of -v0 and says so.
        warnings.filterwarnings("ignore", ".*-v0 is out of date", DeprecationWarning)
        envs = gym.make_vec(
            _gym_id("SepsisManagement-v0"),
            num_envs=4,
            vectorization_mode="vector_entry_point",
            severity="hard",
        )
    assert isinstance(envs, SepsisVectorEnv) and isinstance(envs, gym.vector.VectorEnv)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert envs.num_envs == 4 and envs.functional_env.severity == "hard"
    assert envs.params.max_steps_in_episode == 72
    single = gym.make(_gym_id("SepsisManagement-v0"))
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    assert envs.observation_space.shape == (4, 10) and envs.action_space.shape == (4, 3)
    obs, info = envs.reset(seed=0)
    assert obs.dtype == np.float32 and envs.observation_space.contains(obs)
    assert info["_step"].all() and (info["step"] == 0).all()
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    assert envs.observation_space.contains(obs) and reward.dtype == np.float64
    assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
    assert "final_obs" not in info and (info["step"] == 1).all()


@pytest.mark.slow
def test_vector_env_equals_sync_vector_env_of_single_envs():
    """Each sub-env runs what a single env seeded ``seed + i`` runs, and the infos (with
    ``final_obs`` and ``final_info`` at episode ends) are Gymnasium's same-step ones (one task:
    the adapter is the same for every task)."""
    env_id, n = "SepsisManagement-v0", 3
    ours = gym.make_vec(_gym_id(env_id), num_envs=n, vectorization_mode="vector_entry_point")
    sync = gym.make_vec(
        _gym_id(env_id),
        num_envs=n,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
    )
    _assert_same(ours.reset(seed=11), sync.reset(seed=11))
    ended = 0
    for actions in _random_actions(ours, 80, seed=3, batch=(n,)):
        step = ours.step(actions)
        _assert_same(step, sync.step(actions))
        ended += int((step[2] | step[3]).sum())
    assert ended >= n  # every sub-env ended an episode at least once


def test_vector_seeds_lists_large_seeds_and_reproducibility():
    env_id = _gym_id("FluidResuscitation-v0")
    envs = gym.make_vec(env_id, num_envs=3)
    seeds = [2**32 - 2, 2**32 - 1, 2**32]
    obs, _ = envs.reset(seed=2**32 - 2)
    for i, seed in enumerate(seeds):
        _assert_same(obs[i], gym.make(env_id).reset(seed=seed)[0])
    listed, _ = envs.reset(seed=[seeds[2], None, seeds[0]])
    _assert_same(listed[[0, 2]], obs[[2, 0]])
    again = gym.make_vec(env_id, num_envs=3)
    actions = _random_actions(envs, 5, batch=(3,))
    runs = []
    for env in (envs, again):
        env.reset(seed=8)
        runs.append([env.step(a) for a in actions])
    _assert_same(runs[0], runs[1])
    with pytest.raises(ValueError, match="2 seeds given for num_envs=3"):
        envs.reset(seed=[1, 2])


def test_vector_bad_input_and_time_limit():
    envs = gym.make_vec(_gym_id("SepsisManagement-v0"), num_envs=2, max_episode_steps=5)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"expects a numeric action of shape \(2, 3\)"):
        envs.step(np.zeros(3))
    with pytest.raises(ValueError, match="dtype <U1"):
        envs.step(np.full((2, 3), "a"))
    nan = envs.step(np.full((2, 3), np.nan))
    assert np.isfinite(nan[0]).all()
    for _ in range(2, 6):
        _, _, terminated, truncated, info = envs.step(np.zeros((2, 3)))
    assert truncated.all() and not terminated.any() and (info["final_info"]["step"] == 5).all()
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        SepsisVectorEnv("SepsisManagement-v0", num_envs=0)
