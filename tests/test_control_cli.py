"""The control command line as a user meets it: one folder per run, refused config changes, Ctrl-C and resume,
progress, one-line errors with exit code 2, watchable agents, instant help."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def control(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "control", *args], cwd=cwd, env=ENV, capture_output=True, text=True, **kw
    )


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


SMALL = ("--steps", "512", "--num-steps", "256", "--eval-episodes", "1", "--compile", "off")


def test_two_runs_without_out_dir_get_their_own_folders_and_both_evaluate(tmp_path):
    first = control("train", "--env", "CartPole-v1", *SMALL, cwd=tmp_path)
    second = control("train", "--env", "Acrobot-v1", *SMALL, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stderr.splitlines()[0].startswith(
        "[control] run folder: runs/control/CartPole-v1__ppo__s1__"
    )
    folders = sorted((tmp_path / "runs" / "control").iterdir())
    assert len(folders) == 2
    for folder, env_id in zip(folders, ("Acrobot-v1", "CartPole-v1"), strict=True):
        assert json.loads((folder / "config.json").read_text())["env_id"] == env_id
        result = control("evaluate", str(folder), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["global_step"] == 512
    # the same command again: a finished run of the same settings is not resumed, a new one starts
    again = control("train", "--env", "CartPole-v1", *SMALL, cwd=tmp_path)
    assert again.returncode == 0 and len(list((tmp_path / "runs" / "control").iterdir())) == 3


def test_a_changed_config_is_refused_and_the_folder_left_byte_for_byte(tmp_path):
    out = tmp_path / "run"
    assert control("train", *SMALL, "--out-dir", str(out), cwd=tmp_path).returncode == 0
    before = folder_digest(out)
    refused = control(
        "train", *SMALL, "--algo", "sppo", "--learning-rate", "1e-3", "--out-dir", str(out), cwd=tmp_path
    )
    assert refused.returncode == 2, refused.stderr
    assert "algo: 'ppo' -> 'sppo'" in refused.stderr and "learning_rate" in refused.stderr
    assert "--overwrite" in refused.stderr and "Traceback" not in refused.stderr
    assert folder_digest(out) == before
    # the same config: nothing to do, nothing rewritten
    same = control("train", *SMALL, "--out-dir", str(out), "--threads", "2", cwd=tmp_path)
    assert same.returncode == 0 and "already finished" in same.stderr
    assert folder_digest(out) == before
    fresh = control(
        "train", *SMALL, "--algo", "sppo", "--out-dir", str(out), "--overwrite", "true", cwd=tmp_path
    )
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads((out / "config.json").read_text())["algo"] == "sppo"


def test_ctrl_c_saves_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--steps", "60000", "--num-steps", "128", "--checkpoint-every", "1024"]
    args += ["--eval-episodes", "1", "--compile", "off", "--out-dir", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "control", *args], cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.pt").is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # the test waits for the run to be under way; the run itself polls nothing
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    line = [s for s in err.splitlines() if "stopped at step" in s][0]
    stopped = int(line.split("stopped at step ")[1].split(" of")[0].replace(",", ""))
    assert 0 < stopped < 60000 and "rerun the same command to resume" in line
    resumed = control(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {stopped:,}" in resumed.stderr
    assert json.loads(resumed.stdout)["global_step"] == 59904  # 468 whole rollouts of 128
    steps = [int(r["step"]) for r in csv.DictReader((out / "episodes.csv").open())]
    assert steps == sorted(steps) and steps[-1] <= 59904


BAD_INPUTS = [
    (["train", "--steps", "0"], "--steps"),
    (["train", "--steps", "-5"], "--steps"),
    (["train", "--anneal-lr", "maybe"], "--anneal-lr"),
    (["train", "--num-steps", "0"], "--num-steps"),
    (["train", "--learning-rate", "-1"], "--learning-rate"),
    (["train", "--learning-rate", "abc"], "--learning-rate"),
    (["train", "--algo", "dqn"], "--algo"),
    (["train", "--algo", "spo"], "did you mean 'sppo'"),
    (["train", "--env", "CartPol-v1"], "did you mean 'CartPole-v1'"),
    (["train", "--learnin-rate", "1e-3"], "did you mean '--learning-rate'"),
    (["trian"], "did you mean 'train'"),
    (["train", "--env-kwargs", "{oops"], "--env-kwargs"),
    (["train", "--env", "CartPole-v1", "--env-kwargs", '{"bogus": 1}'], "'bogus'"),
    (["train", "--env", "CartPole-v1", "--device", "tpu9"], "--device 'tpu9'"),
    (
        ["train", "--env", "Hierarchy/Walker2dJump-v0", "--env-kwargs", '{"curb_heights": 0.2}'],
        "curb_heights",
    ),
    (["plot", "no/such/run"], "no/such/run"),
    (["evaluate", "no/such/run"], "no/such/run"),
    (["enjoy", "no/such/run", "--video", "x.mp4"], "no/such/run"),
    (["sweep", "--algos", "ppo,dqn"], "dqn"),
]


@pytest.mark.parametrize(("argv", "named"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_user_errors_are_one_or_two_lines_with_exit_2(tmp_path, argv, named):
    result = control(*argv, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_cuda_device_without_one_exits_2_before_a_run_folder_is_written(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = control("train", "--env", "CartPole-v1", "--device", "cuda", "--steps", "1000", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--device cuda" in result.stderr and not (tmp_path / "runs").exists()


def test_help_and_argument_errors_import_neither_torch_nor_gymnasium():
    code = (
        "import sys\nfrom control.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['train', '--steps', '0']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "    except Exception:\n        pass\n"
        "print(sorted(m for m in ('torch', 'gymnasium', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


def test_sppo_defaults_are_the_papers_not_ppo(tmp_path):
    """Under Adam, SPPO's gradient is a multiple of PPO's (docs/control.md), so the runs part only through Adam's
    epsilon and gradient clipping: the same first episode, different returns after a few updates."""
    from control.config import TrainConfig
    from control.train import train

    runs = {}
    for algo in ("ppo", "sppo"):
        cfg = TrainConfig(algo=algo, env_id="Acrobot-v1", total_steps=4096, num_steps=512, eval_episodes=0)
        train(dataclasses.replace(cfg, compile="off", quiet=True, out_dir=str(tmp_path / algo)))
        runs[algo] = json.loads((tmp_path / algo / "config.json").read_text())
        runs[algo]["returns"] = [
            r["return"] for r in csv.DictReader((tmp_path / algo / "episodes.csv").open())
        ]
    assert (runs["sppo"]["alpha"], runs["sppo"]["beta"], runs["sppo"]["z"]) == (0.5, 1.0, -1.0)
    assert (runs["ppo"]["alpha"], runs["ppo"]["beta"]) == (1.0, 0.0)
    assert runs["ppo"]["returns"][0] == runs["sppo"]["returns"][0]  # same seed: the same first episode
    assert runs["ppo"]["returns"] != runs["sppo"]["returns"]


def test_symmetric_algorithms_discretise_continuous_actions_by_default():
    from control.algos.registry import get
    from control.config import TrainConfig
    from control.train import resolve_config

    assert resolve_config(TrainConfig(algo="sppo", env_id="Pendulum-v1"), get("sppo")).discretize_bins == 11
    assert resolve_config(TrainConfig(algo="ppo", env_id="Pendulum-v1"), get("ppo")).discretize_bins == 0
    assert resolve_config(TrainConfig(algo="sa2c", env_id="CartPole-v1"), get("sa2c")).discretize_bins == 0
    kept = TrainConfig(algo="sppo", env_id="Pendulum-v1", discretize_bins=5)
    assert resolve_config(kept, get("sppo")).discretize_bins == 5


def test_csvs_have_headers_and_no_repeated_final_evaluation(tmp_path):
    from control.config import TrainConfig
    from control.train import train

    cfg = TrainConfig(total_steps=1024, num_steps=256, eval_every=512, eval_episodes=1, out_dir=str(tmp_path))
    train(cfg)
    evals = list(csv.DictReader((tmp_path / "eval.csv").open()))
    assert [int(r["step"]) for r in evals] == [512, 1024]
    episodes = list(csv.DictReader((tmp_path / "episodes.csv").open()))
    assert set(episodes[0]) == {"step", "return", "length"} and len(episodes) > 5


def test_plot_draws_one_panel_per_env_and_refuses_nothing_to_plot(tmp_path):
    from align.user_errors import UserError
    from control.config import TrainConfig
    from control.plot import plot_runs
    from control.train import train

    for env_id in ("CartPole-v1", "Acrobot-v1"):
        train(
            TrainConfig(
                env_id=env_id, total_steps=512, num_steps=256, eval_episodes=0, out_dir=str(tmp_path / env_id)
            )
        )
    import matplotlib.image

    png = plot_runs([tmp_path / "CartPole-v1", tmp_path / "Acrobot-v1"], tmp_path / "curves.png")
    height, width = matplotlib.image.imread(png).shape[:2]
    assert width > 1.5 * height  # two panels side by side
    with pytest.raises(UserError, match="nothing to plot"):
        plot_runs([tmp_path / "CartPole-v1"], tmp_path / "e.png", source="eval")


def test_enjoy_records_a_video_of_greedy_episodes(tmp_path):
    from control.config import TrainConfig
    from control.enjoy import enjoy
    from control.train import train

    train(TrainConfig(total_steps=512, num_steps=256, eval_episodes=0, out_dir=str(tmp_path / "run")))
    result = enjoy(tmp_path / "run", episodes=2, video=tmp_path / "cartpole.gif", max_steps=40)
    assert len(result["returns"]) == 2 and all(0 < n <= 40 for n in result["lengths"])
    import imageio.v2 as imageio

    frames = imageio.mimread(tmp_path / "cartpole.gif")  # the GIF writer merges repeated frames
    assert 1 < len(frames) <= sum(result["lengths"]) and frames[0].shape[-1] in (3, 4)
    mp4 = enjoy(tmp_path / "run", episodes=1, video=tmp_path / "cartpole.mp4", max_steps=20)
    assert (tmp_path / "cartpole.mp4").stat().st_size > 1000 and mp4["lengths"][0] <= 20


def test_importing_control_registers_the_hierarchy_ids():
    code = "import control.hierarchy, gymnasium as gym; gym.make('Hierarchy/Walker2dPatrol-v0'); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.slow
def test_track_logs_to_weights_and_biases_offline(tmp_path):
    pytest.importorskip("wandb")
    env = {**ENV, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "control",
            "train",
            *SMALL,
            "--track",
            "true",
            "--out-dir",
            str(tmp_path / "run"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_at_safe_points_and_the_rerun_finishes(tmp_path):
    args = ["sweep", "--algos", "ppo,a2c", "--envs", "CartPole-v1", "--seeds", "1,2", "--steps", "40960"]
    args += ["--root", str(tmp_path / "sweep"), "--workers", "2", "--eval-episodes", "1"]
    args += ["--checkpoint-every", "1024", "--compile", "off"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "control", *args],
        cwd=tmp_path,
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
    )
    deadline = time.monotonic() + 300
    while len(list((tmp_path / "sweep").glob("*/checkpoint.pt"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "rerun the same command to resume" in err
    started = sorted((tmp_path / "sweep").iterdir())
    assert len(started) == 2  # no new run started after the signal
    for run in started:
        progress = json.loads((run / "run_state.json").read_text())["progress"]
        assert progress["stopped"] and 0 < progress["step"] < 40960
    again = control(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.strip().splitlines()) == 4
