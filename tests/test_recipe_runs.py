"""The recipes run as users run them (slow, real subprocesses): Ctrl-C (SIGINT) once progress shows a training
stage running stops at the next safe point with "stopped at ... of ...; rerun the same command to resume" and
exit code 130, the same command resumes and finishes with the result of an uninterrupted run, no output holds a
traceback or the libraries' weight-loading / shard-writing bars, and the DLPO demo runs from another folder."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_recipe_cli import ROOT, env

pytestmark = pytest.mark.slow
NOISE = (
    "Traceback",
    "Loading weights",
    "Writing model shards",
    "were not passed",
    "Setting accelerator to CPU",
)


def run_to_end(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=str(cwd), env=env(), timeout=1800
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def interrupt_when(args: list[str], cwd: Path, pattern: str) -> tuple[int, str]:
    """Run a recipe, send SIGINT once a line of its output matches `pattern` (a progress line of the stage
    to interrupt), and return its exit code and whole output."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(cwd),
        env=env(),
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(pattern, line):
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=1800)
    output = "".join(seen) + rest
    assert re.search(pattern, output), output[-4000:]
    return proc.returncode, output


def clean(output: str) -> None:
    for noise in NOISE:
        assert noise not in output, (noise, output[-4000:])


def ppo_rows(path: Path) -> list[dict]:
    """The PPO metrics of each iteration without the wall-clock ones."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/") and "per_s" not in k} for r in rows]


def test_ares_demo_stops_in_its_rl_stage_and_resumes_to_the_uninterrupted_result(tmp_path):
    recipe = str(ROOT / "recipes" / "ares_scienceqa.py")
    whole = run_to_end([recipe, "--set", f"ares.output_dir={tmp_path / 'whole'}"], cwd=tmp_path)
    clean(whole.stdout + whole.stderr)
    assert re.search(r"round1/rl: 1/6 iterations .*ETA .*reward .*kl ", whole.stderr)  # progress inside RL

    args = [recipe, "--set", f"ares.output_dir={tmp_path / 'cut'}"]
    code, output = interrupt_when(args, tmp_path, r"round1/rl: [12]/6 iterations")
    clean(output)
    assert code == 130, output[-4000:]
    stopped = re.search(r"stopped at round1/rl iteration (\d) of 6; rerun the same command to resume", output)
    assert stopped and int(stopped.group(1)) in (1, 2, 3), output[-2000:]
    cut = tmp_path / "cut"
    assert json.loads((cut / "ares_state.json").read_text())["done"] == ["baseline_sft"]

    again = run_to_end(args, tmp_path)
    clean(again.stdout + again.stderr)
    assert "resuming" in again.stdout and "from stage round1/rl (done: baseline_sft)" in again.stdout
    assert f"[round1/rl] resuming from iteration {stopped.group(1)} of 6" in again.stdout
    metrics = "round1-rl/ppo/metrics.jsonl"
    assert ppo_rows(cut / metrics) == ppo_rows(tmp_path / "whole" / metrics)  # every iteration once, the same
    evals = [json.loads((f / "report.json").read_text())["evals"] for f in (cut, tmp_path / "whole")]
    assert evals[0] == evals[1]


def test_dlpo_demo_runs_from_another_folder_and_resumes_after_ctrl_c(tmp_path):
    """The demo config from a folder that is not the clone (its sample corpus found from the package), shrunk
    to minutes: Ctrl-C during pretraining, then the same command finishes every stage."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings = [
        "run.output_dir=run",
        "run.objectives=dlpo",
        "run.iterations=2",
        "run.eval_count=2",
        "run.eval_samples_per_text=2",
        "run.n_audio=1",
        "run.eval_inference_steps=4",
        "pretrain.steps=30",
        "pretrain.batch_size=2",
        "rl.num_inference_steps=4",
        "rl.prompts_per_iteration=2",
        "rl.sampling_batch_size=2",
        "rl.minibatch_size=2",
        "rl.diffusion_batch_size=2",
    ]
    args = [str(ROOT / "recipes" / "dlpo_tts.py"), *(a for s in settings for a in ("--set", s))]
    code, output = interrupt_when(args, elsewhere, r"pretrain: \d+/30 steps")
    clean(output)
    assert code == 130 and re.search(r"stopped at pretrain step \d+ of 30; rerun the same command", output)
    run = elsewhere / "run"
    assert (run / "run_state.json").is_file() and (run / "pretrain" / "pretrain_state.pt").is_file()
    again = run_to_end(args, elsewhere)
    clean(again.stdout + again.stderr)
    assert re.search(r"\[pretrain\] resuming from step \d+ of 30", again.stdout)
    assert re.search(r"dlpo/seed0: 1/2 iterations .*loss .*mos ", again.stderr)  # the RL stage's progress
    results = json.loads((run / "results.json").read_text())
    assert {"ground_truth", "pretrained", "dlpo/seed0"} <= set(results)
    assert len(results["dlpo/seed0"]["mos_scores"]) == 4 and (run / "report.md").is_file()


def test_two_ranks_agree_on_a_stop_that_only_one_was_sent(tmp_path, tiny_lm_path):
    """2-rank DDP over gloo: SIGTERM to rank 1 alone once the RL stage runs. Both ranks stop after the same PPO
    iteration (the flag is reduced over the ranks at each safe point, so neither waits in a collective the
    other left), the main process reports it, and the same launch resumes and finishes."""
    import psutil
    import yaml

    config = {
        "ares": {
            "output_dir": str(tmp_path / "run"),
            "model": str(tiny_lm_path),
            "teacher": "reference:lexical",
            "rl_iterations": 6,
            "max_train_problems": 8,
            "max_eval_problems": 4,
            "correction_max_new_tokens": 12,
            "eval_max_new_tokens": 12,
        },
        "ppo": {
            "prompts_per_iteration": 4,
            "ppo_epochs": 1,
            "minibatch_size": 4,
            "sampling": {"num_samples": 2, "max_new_tokens": 12},
        },
        "sft": {"epochs": 1, "batch_size": 4},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    launch = [
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
    ]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1"]
    launch += ["--main_process_port", str(_free_port()), str(ROOT / "recipes" / "ares_scienceqa.py")]
    args = [*launch, "--config", str(path)]
    ddp_env = {**env(), "ACCELERATE_USE_CPU": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ddp_env
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(r"round1/rl: 1/6 iterations", line):
            ranks = [
                p
                for p in psutil.Process(proc.pid).children(recursive=True)
                if "ares_scienceqa.py" in " ".join(p.cmdline()) and p.environ().get("RANK") in ("0", "1")
            ]
            assert len(ranks) == 2, ranks
            next(p for p in ranks if p.environ()["RANK"] == "1").send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=1800)
    output = "".join(seen) + rest
    stops = re.findall(r"stopped at round1/rl iteration (\d) of 6; rerun the same command to resume", output)
    assert stops and len(set(stops)) == 1, output[-4000:]  # every rank that reports names the same iteration
    done = [
        json.loads(line)["iteration"]
        for line in (tmp_path / "run" / "round1-rl" / "ppo" / "metrics.jsonl").open()
    ]
    assert done == list(range(int(stops[0])))
    again = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ddp_env, timeout=1800)
    assert again.returncode == 0, again.stderr[-4000:]
    assert f"[round1/rl] resuming from iteration {stops[0]} of 6" in again.stdout
    rows = [
        json.loads(line)["iteration"]
        for line in (tmp_path / "run" / "round1-rl" / "ppo" / "metrics.jsonl").open()
    ]
    assert rows == list(range(6))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
