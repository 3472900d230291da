"""The hierarchy's command line and import surface: a mistyped stage, task, flag value or config file exits 2 with
one line naming it (and a "did you mean"), never a traceback; importing `control` or `control.hierarchy`
registers the `Hierarchy/*` ids; the lower layers do not import the hierarchy package; the hierarchy uses only
public names of the rest of `control`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "control", "hierarchy", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["all", "--task", "hurdel"], ["--task", "'hurdel'", "did you mean 'hurdle'"]),
        (["evalute", "--task", "toy"], ["stage", "did you mean 'evaluate'"]),
        (["all", "--task", "toy", "--config", "nope.yaml"], ["--config", "nope.yaml", "no such config file"]),
        (["all", "--task", "toy", "--seeds", "1,x"], ["--seeds", "'1,x'"]),
        (["all", "--task", "toy", "--workers", "0"], ["--workers", "'0'"]),
        (["all", "--task", "toy", "--eval-episodes", "-3"], ["--eval-episodes", "'-3'"]),
        (["all", "--task", "toy", "--backend", "rey"], ["--backend", "did you mean 'ray'"]),
    ],
)
def test_user_errors_exit_2_with_one_line_naming_the_flag(tmp_path, args, expected):
    result = _run(*args, "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2 and all(word in lines[0] for word in expected), lines
    assert not any(tmp_path.iterdir())  # nothing was started


def test_a_config_file_with_a_misspelt_field_is_named_with_a_suggestion(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("switch:\n  episods: 3\n")
    result = _run("all", "--task", "toy", "--config", str(config), "--root", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "--config" in line and "mine.yaml" in line and "did you mean 'episodes'" in line
    config.write_text("switch:\n  exploration: episodes\n")  # a value a settings class refuses
    result = _run("all", "--task", "toy", "--config", str(config), "--root", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "mine.yaml" in result.stderr and "exploration='episodes'" in result.stderr
    config.write_text("switch: [1\n")
    result = _run("all", "--task", "toy", "--config", str(config), "--root", str(tmp_path / "runs"))
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("module", ["control", "control.hierarchy"])
def test_importing_control_or_its_hierarchy_registers_the_composed_envs(module):
    code = (
        f"import gymnasium as gym, {module}\n"
        "env = gym.make('Hierarchy/Walker2dPatrol-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(obs.shape, info['primitive'] in ('forward', 'backward'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(21,)", "True"]


def _imports(path: Path) -> set[str]:
    """Every module name a file imports, and every `module.name` it imports from."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_the_env_layer_does_not_import_the_hierarchy_package():
    assert not any(name.startswith("control.hierarchy") for name in _imports(ROOT / "control" / "envs.py"))


def test_the_hierarchy_uses_only_public_names_of_the_rest_of_control():
    private = set()
    for path in (ROOT / "control" / "hierarchy").glob("*.py"):
        for name in _imports(path):
            parts = name.split(".")
            if (
                parts[0] == "control"
                and parts[1:2] != ["hierarchy"]
                and any(p.startswith("_") for p in parts)
            ):
                private.add(f"{path.name}: {name}")
    assert not private


def test_a_nested_config_section_changes_only_the_fields_it_names(tmp_path):
    from control.hierarchy.config import ConfigError, load_config, preset

    config = tmp_path / "disc.yaml"
    config.write_text("airl:\n  epochs: 1\n")
    cfg = load_config("catching", str(config))
    assert cfg.airl.epochs == 1
    assert cfg.airl.state_dims == preset("catching").airl.state_dims == 24  # the preset's, not the default's
    config.write_text("scripted_primitives: maybe\n")
    with pytest.raises(ConfigError, match="scripted_primitives: expected true or false"):
        load_config("toy", str(config))


def test_primitive_starts_and_init_must_name_the_tasks_primitives(tmp_path):
    from control.hierarchy.config import ConfigError, load_config

    patrol = load_config("patrol")
    assert patrol.primitive_starts == {"balance": ["forward", "backward"]}
    assert (patrol.transition.steps, patrol.switch.episodes) == (204_800, 600)  # Patrol's longer transitions
    assert load_config("hurdle").transition.steps == 81_920  # the other Walker tasks keep theirs
    assert patrol.refine_spec("forward").sources == patrol.refine_spec("backward").sources == ["balance"]
    assert load_config("hurdle").primitive_refine == {}  # no balance to set off from
    with pytest.raises(ConfigError, match="primitive_starts.balance: 'jump' is not a primitive of patrol"):
        load_config("patrol", primitive_starts={"balance": ["forward", "jump"]})
    config = tmp_path / "init.yaml"
    config.write_text("primitive_init:\n  jump: walk\n")
    with pytest.raises(ConfigError, match="primitive_init.jump: 'walk' is not a primitive of hurdle"):
        load_config("hurdle", str(config))
    assert load_config("toy").primitive_starts == {}


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        (
            "primitive_env_kwargs: {jum: {restart_prob: 0.5}}",
            ["primitive_env_kwargs.jum", "did you mean 'jump'"],
        ),
        ("primitive_env_kwargs: {jump: {bogus: 1}}", ["primitive_env_kwargs.jump", "'bogus'"]),
        ("primitive_env_kwargs: {jump: {curb_heights: 0.2}}", ["primitive_env_kwargs.jump", "curb_heights"]),
        ("primitive_env_kwargs: {jump: 3}", ["primitive_env_kwargs.jump", "expected a mapping"]),
        (  # an option that shapes the observation, given to one primitive and not to the task
            "primitive_env_kwargs: {jump: {feet_features: true}}",
            ["primitive_env_kwargs.jump.feet_features", "task_kwargs.feet_features", "must agree"],
        ),
        ("task_kwargs: {curb_height: 0.2}", ["task_kwargs", "Walker2dHurdle-v0 refuses", "curb_height"]),
        (
            "task_kwargs: {feet_features: true}",
            ["primitive_env_kwargs.forward.feet_features is False", "task_kwargs.feet_features) is True"],
        ),
    ],
)
def test_env_kwargs_the_envs_refuse_exit_2_before_anything_starts(tmp_path, yaml_text, expected):
    config = tmp_path / "mine.yaml"
    config.write_text(yaml_text + "\n")
    result = _run("all", "--task", "hurdle", "--config", str(config), "--root", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2 and all(word in lines[0] for word in expected), lines
    assert not (tmp_path / "runs").exists()


def test_the_serve_tasks_apex_height_builds_every_primitives_env_with_it(tmp_path):
    """`task_kwargs.apex_height` (the serve preset's 0.9 m, or a user's) reaches the primitives' training runs, their
    success counts and initiation sets (`primitive_kwargs`); Hit's training starts from the Toss's release; a
    primitive given another apex height is refused, naming both fields."""
    import gymnasium as gym

    from control.hierarchy.config import ConfigError, load_config
    from control.hierarchy.pipeline import primitive_train_config, recording_env, start_states_path

    preset = load_config("serve", root=str(tmp_path / "runs"))
    assert preset.primitive_kwargs() == {"apex_height": 0.9} and preset.start_sources("hit") == ["toss"]
    assert primitive_train_config(preset, "toss").env_kwargs == {"apex_height": 0.9}
    assert primitive_train_config(preset, "hit").env_kwargs == {
        "apex_height": 0.9,
        "start_states": str(start_states_path(preset, "hit")),
    }
    config = tmp_path / "mine.yaml"
    config.write_text(f"task_kwargs: {{apex_height: 1.0}}\nroot: {tmp_path / 'runs'}\n")
    cfg = load_config("serve", str(config))
    for name in ("toss", "hit"):
        assert primitive_train_config(cfg, name).env_kwargs["apex_height"] == 1.0
    env = recording_env(cfg, "toss")  # where the Toss's states for Hit are recorded
    assert env.unwrapped.hit_rules.hit_height == 0.6 and env.unwrapped.toss_rules.apex_height == 1.0
    env.close()
    assert load_config("catching").primitive_kwargs() == {}
    assert gym.make("Hierarchy/JacoServe-v0", **cfg.task_kwargs).unwrapped.toss_rules.apex_height == 1.0
    with pytest.raises(
        ConfigError, match=r"primitive_starts.toss: 'toss' \(Hierarchy/JacoToss-v0\) cannot start"
    ):
        load_config("serve", primitive_starts={"toss": ["hit"]})
    config.write_text("primitive_env_kwargs: {hit: {apex_height: 1.2}}\n")
    with pytest.raises(
        ConfigError, match=r"primitive_env_kwargs.hit.apex_height is 1.2 .*task_kwargs.apex_height"
    ):
        load_config("serve", str(config))


def test_feet_features_given_to_the_task_and_all_its_primitives_load(tmp_path):
    from control.hierarchy.config import load_config

    config = tmp_path / "feet.yaml"
    config.write_text(
        "task_kwargs: {feet_features: true}\n"
        "primitive_env_kwargs: {forward: {feet_features: true}, jump: {feet_features: true, restart_prob: 0.75}}\n"
    )
    cfg = load_config("hurdle", str(config))
    assert cfg.task_kwargs == {"feet_features": True}
    assert all(cfg.primitive_env_kwargs[n]["feet_features"] for n in ("forward", "jump"))
