"""Real launches of the ARES recipe on CPU: 2-rank DDP over gloo, and DeepSpeed ZeRO-2 / ZeRO-3 with one
process, through `accelerate launch` exactly as users run it (slow: run by .ci/run with `-m slow`)."""

import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "ares_scienceqa.py"
ACCELERATE_CONFIGS = ROOT / "recipes" / "configs" / "accelerate"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recipe_config(tmp_path: Path, model: Path, teacher: str, lora: bool = False) -> Path:
    config = {
        "ares": {
            "output_dir": str(tmp_path / "run"),
            "model": str(model),
            "teacher": teacher,
            "rounds": 1,
            "rl_iterations": 2,
            "max_train_problems": 8,
            "max_eval_problems": 4,
            "correction_max_new_tokens": 12,
            "eval_max_new_tokens": 12,
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0} if lora else None,
        },
        "baseline_sft": {"epochs": 1, "learning_rate": 1.0e-3, "batch_size": 4},
        "ppo": {
            "prompts_per_iteration": 4,
            "ppo_epochs": 1,
            "minibatch_size": 4,
            "learning_rate": 3.0e-4,
            "sampling": {"num_samples": 2, "max_new_tokens": 12},
        },
        "sft": {"epochs": 1, "batch_size": 4, "learning_rate": 1.0e-3},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _launch(args: list[str], config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`accelerate launch ARGS recipes/ares_scienceqa.py --config CONFIG`, which must exit 0."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *args]
    cmd += ["--main_process_port", str(_free_port()), str(RECIPE), "--config", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "RANK", "WORLD_SIZE"))}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def _check_one_report(out: Path, stdout: str) -> dict:
    state = json.loads((out / "ares_state.json").read_text())
    assert state["done"] == ["baseline_sft", "round1/rl", "round1/correct", "round1/sft"]
    assert (out / "report.md").is_file() and stdout.count("[ares] report:") == 1
    metrics = (out / "round1-rl" / "ppo" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["iteration"] for m in metrics] == [0.0, 1.0]  # one line per iteration, not per rank
    corrections = (out / "round1-correct" / "corrections.jsonl").read_text().splitlines()
    assert len(corrections) == 8  # every training problem once
    return state


def test_two_rank_ddp_splits_problems_and_teacher_requests(tmp_path, tiny_vlm_path, teacher_server):
    """The tiny LLaVA under 2-process DDP: text-only SFT batches (unused vision tower) train, each rank
    samples its own problems, every teacher request is a distinct item, files and report are written once."""
    asked: list[tuple[str, str]] = []
    lock = threading.Lock()
    from teacher_server import default_responder

    def recording(task, block):
        with lock:
            asked.append((task, block.get("question", "")))
        return default_responder(task, block)

    teacher_server.responder = recording
    config = _recipe_config(tmp_path, tiny_vlm_path, f"openai-compatible:{teacher_server.openai_url}#fake")
    ddp = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    proc = _launch(ddp + ["--dynamo_backend", "no"], config, _env(ACCELERATE_USE_CPU="1"))
    _check_one_report(tmp_path / "run", proc.stdout)
    # every request the teacher got was a distinct item (no rank repeated another's work)
    assert teacher_server.total() == len(teacher_server.by_fingerprint) == len(asked)
    from align.data import load_sample_scienceqa

    train = Counter(p.question for p in load_sample_scienceqa("train")[:8])  # two share a question
    rl_scores = Counter(q for task, q in asked if task == "score" and q in train)
    # 2 iterations x 4 problems = one pass over the 8 training problems, k = 2 samples each: with the ranks
    # splitting the problems a question is scored at most twice per problem (and 32 times in all if both
    # ranks drew every problem)
    assert 8 <= sum(rl_scores.values()) <= 16, rl_scores
    assert all(n <= 2 * train[q] for q, n in rl_scores.items()), rl_scores
    corrected = Counter(q for task, q in asked if task == "correct")
    assert corrected == train


def _deepspeed_config(tmp_path: Path, name: str) -> Path:
    """The shipped DeepSpeed accelerate config, run with one CPU process and full precision."""
    config = yaml.safe_load((ACCELERATE_CONFIGS / name).read_text())
    config.update(num_processes=1, mixed_precision="no")
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "name,lora",
    [("deepspeed_zero2.yaml", False), ("deepspeed_zero3.yaml", True), ("deepspeed_zero3.yaml", False)],
    ids=["zero2-full", "zero3-lora", "zero3-full"],
)
def test_deepspeed_recipe_runs_on_cpu_with_one_process(tmp_path, tiny_lm_path, name, lora):
    pytest.importorskip("deepspeed")
    accelerate_config = _deepspeed_config(tmp_path, name)
    config = _recipe_config(tmp_path, tiny_lm_path, "reference:lexical", lora=lora)
    proc = _launch(["--config_file", str(accelerate_config)], config, _env())
    assert "DeepSpeed" in proc.stderr + proc.stdout  # it really ran under DeepSpeed
    _check_one_report(tmp_path / "run", proc.stdout)
    stage = tmp_path / "run" / "stages" / "round1-sft"
    saved = stage / ("adapter_model.safetensors" if lora else "model.safetensors")
    assert saved.is_file() and saved.stat().st_size > 10_000  # consolidated weights, not empty shards
