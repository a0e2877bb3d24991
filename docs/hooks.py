"""The docs' mkdocs hooks: tables generated from the package's declarations, and the
package docstrings' Sphinx roles turned into links.

Tables: a page writes a marker on a line of its own, ``<!-- table: KIND ARG -->``; the build
replaces it with the markdown table ``TABLES[KIND](ARG)``. The tables read the tasks'
``observation_names``, ``info_names`` and ``actions``, the feature declarations of
``sepsisim_jax.envs.features.FEATURES``, the patient models' ``info_features`` and the
parameter declarations, so they change when the declarations do. An unknown marker stops the
build. ``tests/test_docs.py`` renders every marker of every page.

Figures: the benchmarks' figures (``benchmarks/results/*.png``) join the site under the same
path, so a page can show them (``![...](benchmarks/results/scaling.png)``) without a copy.

Roles: the docstrings cross-reference with Sphinx roles (``:func:`scan_cohort```,
``:mod:`~sepsisim_jax.cohort.scan```), which mkdocstrings prints as they are. Each becomes a
cross-reference that mkdocs-autorefs links when the target is documented (a short name is
looked up among the package's objects) and leaves as plain code when it is not.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

import sepsisim_jax
from sepsisim_jax.envs import FEATURES, REFERENCE_IDS, REGISTRY, TASKS
from sepsisim_jax.envs.base import HIDDEN_FROM_CLINICIANS
from sepsisim_jax.physiology import MODELS
from sepsisim_jax.physiology.virtual_patients import per_patient_fields

MARKER = re.compile(r"^<!-- table: ([\w-]+)(?: ([\w-]+))? -->$", re.M)


def _number(x: Any) -> str:
    value = float(x)
    return "inf" if value == float("inf") else f"{value:g}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    rule = [":---" if i >= len(align) or align[i] == "<" else "---:" for i in range(len(header))]
    return "\n".join([_row(header), _row(rule), *(_row(r) for r in rows)])


def _task(name: str) -> type:
    for task in TASKS:
        if task.task_name == name:
            return task
    raise ValueError(f"no task {name!r}; tasks: {[t.task_name for t in TASKS]}")


def _ids_of(task: type) -> list[str]:
    return [i for i, factory in REGISTRY.items() if factory.func is task]


def _made(env_id: str, **options: Any) -> tuple[Any, Any]:
    return sepsisim_jax.make(env_id, **options)


def _bounds(env: Any, params: Any, name: str) -> str:
    low, high = env.features[name].bounds(params)
    return f"[{_number(low)}, {_number(high)}]"


def _unit(unit: str) -> str:
    return unit.replace("|", "\\|") if unit else ""


def ids(_: str | None = None) -> str:
    """Every registered id: task, patient model, shapes, episode length, reference."""
    rows = []
    for env_id in REGISTRY:
        env, params = _made(env_id)
        rows.append(
            [
                f"`{env_id}`",
                env.task_name,
                f"`{env.model.version}`",
                f"({len(env.observation_names)},)",
                f"({env.num_actions},)",
                str(params.max_steps_in_episode),
                "yes" if env_id in REFERENCE_IDS else "no",
            ]
        )
    header = ["id", "task", "model", "observation", "action", "steps", "in sepsisim 0.1.0"]
    return _table(header, rows)


def models(_: str | None = None) -> str:
    """Every registered patient model: version, description, tiers, episode length."""
    rows = [
        [
            f"`{m.version}`",
            m.description,
            ", ".join(m.severities),
            str(m.episode_steps),
            ", ".join(f"`{f.name}`" for f in m.info_features) or "none",
        ]
        for m in MODELS.values()
    ]
    return _table(["model", "what", "severities", "steps", "own info keys"], rows)


def observations(task_name: str | None) -> str:
    """One row per observed feature, in observation order, with its bounds per model (at the
    default params, medium tier) and whether ``observation="clinical"`` keeps it."""
    task = _task(str(task_name))
    made = {REGISTRY[i].keywords["model"].version: _made(i) for i in _ids_of(task)}
    rows = []
    for index, name in enumerate(task.observation_names):
        feature = FEATURES[name]
        bounds = [_bounds(env, params, name) for env, params in made.values()]
        clinical = "no" if name in HIDDEN_FROM_CLINICIANS else "yes"
        rows.append(
            [str(index), f"`{name}`", feature.label, _unit(feature.unit), *bounds, clinical]
        )
    header = ["#", "feature", "quantity", "unit", *(f"bounds ({v})" for v in made), "clinical"]
    return _table(header, rows, align="><<<" + ">" * len(made))


def info(task_name: str | None) -> str:
    """The task's info keys, in the reference's order, then each model's own quantities."""
    task = _task(str(task_name))
    rows = [
        [f"`{name}`", FEATURES[name].label, _unit(FEATURES[name].unit), "every model"]
        for name in task.info_names
    ]
    for env_id in _ids_of(task):
        model = REGISTRY[env_id].keywords["model"]
        rows += [
            [f"`{f.name}`", f.label, _unit(f.unit), f"`{model.version}` only"]
            for f in model.info_features
        ]
    return _table(["key", "quantity", "unit", "reported by"], rows)


def actions(task_name: str | None) -> str:
    """The task's action components, in action order."""
    task = _task(str(task_name))
    rows = [
        [
            str(index),
            f"`{c.name}`",
            c.label,
            _unit(c.unit),
            _number(c.low),
            _number(c.high),
            "one-time switch" if c.switch else "continuous",
        ]
        for index, c in enumerate(task.actions)
    ]
    header = ["#", "component", "quantity", "unit", "low", "high", "kind"]
    return _table(header, rows, align="><<<>>")


def model_info(version: str | None) -> str:
    """A patient model's own info quantities, with their bounds at the medium tier."""
    model = MODELS[str(version)]
    env_id = next(i for i, f in REGISTRY.items() if f.keywords["model"] is model)
    env, params = _made(env_id)
    rows = [
        [f"`{f.name}`", f.label, _unit(f.unit), _bounds(env, params, f.name)]
        for f in model.info_features
    ]
    return _table(["key", "quantity", "unit", "bounds"], rows)


def drawn(version: str | None) -> str:
    """The parameters a virtual patient of the model draws (``patient_spread > 0``): default
    at the medium tier, declared range, unit and source."""
    model = MODELS[str(version)]
    env_id = next(i for i, f in REGISTRY.items() if f.keywords["model"] is model)
    env, _ = _made(env_id, patient_spread=0.1)
    rows = []
    for field in per_patient_fields(env.patient_params()):
        spec = field.spec
        default = field.read(env.patient_params())
        rows.append(
            [
                f"`{field.name}`",
                _number(jax.device_get(default)),
                f"[{_number(spec.low)}, {_number(spec.high)}]",
                _unit(spec.unit),
                spec.source.replace("|", "\\|"),
            ]
        )
    header = ["parameter", f"default (`{env_id}`, medium)", "range", "unit", "source"]
    return _table(header, rows, align="<>>")


def heuristics(_: str | None = None) -> str:
    """Each task's clinical rule (``SepsisEnv.heuristic``), from its docstring."""
    rows = []
    for task in TASKS:
        doc = " ".join((task.heuristic.__doc__ or "").split()) if task.heuristic else "none"
        rows.append([task.task_name, doc])
    return _table(["task", "heuristic rule"], rows)


TABLES: dict[str, Callable[[str | None], str]] = {
    "ids": ids,
    "models": models,
    "observations": observations,
    "info": info,
    "actions": actions,
    "model-info": model_info,
    "drawn": drawn,
    "heuristics": heuristics,
}


def render(markdown: str) -> str:
    """``markdown`` with every table marker replaced by its table (``ValueError`` naming an
    unknown kind)."""

    def table(match: re.Match[str]) -> str:
        kind, arg = match.groups()
        if kind not in TABLES:
            raise ValueError(f"unknown table {kind!r} in a docs page; known: {list(TABLES)}")
        return TABLES[kind](arg)

    return MARKER.sub(table, markdown)


# A role, then its target as a code span (which a docstring's line break may split).
ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|exc|obj):<code>(~?)([\w.\s]+?)</code>")
ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _short_names() -> dict[str, str]:
    """``{name: path}`` for every object of the package whose short name (``scan_cohort``,
    ``SepsisEnv.heuristic``) is unique; ambiguous names are left out."""
    found: dict[str, set[str]] = {}

    def walk(obj: Any, owner: str) -> None:
        for name, member in obj.members.items():
            if member.is_alias:
                continue
            found.setdefault(name, set()).add(member.path)
            if owner:
                found.setdefault(f"{owner}.{name}", set()).add(member.path)
            if member.is_module:
                walk(member, "")
            elif member.is_class:
                walk(member, name)

    import griffe  # installed with mkdocstrings (the docs extra); the tables do not need it

    walk(griffe.load("sepsisim_jax", search_paths=[str(ROOT)]), "")
    return {name: paths.pop() for name, paths in found.items() if len(paths) == 1}


def link_roles(page_html: str) -> str:
    """``page_html`` with each Sphinx role replaced by an optional autorefs cross-reference."""

    def reference(match: re.Match[str]) -> str:
        tilde, written = match.groups()
        target = "".join(written.split())
        shown = target.rsplit(".", 1)[-1] if tilde else target
        if not target.startswith("sepsisim_jax."):
            target = _short_names().get(target, target)
        return (
            f'<autoref identifier="{html.escape(target)}" optional>'
            f"<code>{html.escape(shown)}</code></autoref>"
        )

    return ROLE.sub(reference, page_html)


def on_files(files: Any, config: Any, **_: Any) -> Any:
    """The mkdocs hook: add the benchmarks' figures to the site's files."""
    from mkdocs.structure.files import File

    for figure in sorted((ROOT / "benchmarks" / "results").glob("*.png")):
        path = figure.relative_to(ROOT).as_posix()
        files.append(File(path, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, **_: Any) -> str:
    """The mkdocs hook: every page's markdown goes through :func:`render`."""
    return render(markdown)


def on_page_content(html_text: str, **_: Any) -> str:
    """The mkdocs hook: every page's HTML goes through :func:`link_roles`."""
    return link_roles(html_text)
