"""Real launches through `accelerate launch` of every shipped accelerate config as shipped
(recipes/configs/accelerate/*.yaml, their bf16 included; only the process count lowered and CPU placement
forced): the ARES recipe full and LoRA under each; the SPPO IMDB, TL;DR (its TRL SFT and reward-model stages
included) and DLPO recipes under DDP (multi_gpu.yaml, two processes over gloo) and DeepSpeed (ZeRO-2, one
process); and settings this machine cannot run refused when a recipe starts. Slow: run by .ci/run with
`-m slow`."""

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
RECIPES = ROOT / "recipes"
ACCELERATE_CONFIGS = RECIPES / "configs" / "accelerate"
SHIPPED = ("cpu.yaml", "single_gpu.yaml", "multi_gpu.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shipped(name: str) -> dict:
    return yaml.safe_load((ACCELERATE_CONFIGS / name).read_text())


def launch_args(name: str) -> tuple[list[str], dict[str, str]]:
    """`accelerate launch` arguments and environment for a shipped config, used as shipped but for the process
    count (two for DDP, over gloo; one otherwise: DeepSpeed runs one process on CPU) and CPU placement
    (ACCELERATE_USE_CPU, except under DeepSpeed: that variable drops the DeepSpeed plugin, and DeepSpeed
    runs on CPU by itself)."""
    config = shipped(name)
    processes = 2 if config["distributed_type"] == "MULTI_GPU" else 1
    args = ["--config_file", str(ACCELERATE_CONFIGS / name)]
    if config["num_processes"] != processes:
        args += ["--num_processes", str(processes)]
    env = {} if config["distributed_type"] == "DEEPSPEED" else {"ACCELERATE_USE_CPU": "1"}
    return args, env


def expected_precision(name: str) -> dict:
    """What `precision.json` of a stage launched with this config says."""
    config = shipped(name)
    kind, mixed = config["distributed_type"], config["mixed_precision"]
    if kind == "DEEPSPEED":  # the bf16 engine casts the module's weights
        stage = config["deepspeed_config"]["zero_stage"]
        return {
            "mixed_precision": mixed,
            "engine": f"deepspeed-zero{stage}",
            "processes": 1,
            "autocast": False,
        }
    engine = "multi_cpu" if kind == "MULTI_GPU" else "single-process"
    processes = 2 if kind == "MULTI_GPU" else 1
    return {"mixed_precision": mixed, "engine": engine, "processes": processes, "autocast": mixed == "bf16"}


def check_precision_file(path: Path, name: str) -> dict:
    summary = json.loads(path.read_text())
    got = {k: summary[k] for k in ("mixed_precision", "engine", "processes", "autocast")}
    assert got == expected_precision(name), summary
    weights = set(summary["trainable_weights"] + summary["frozen_weights"])
    config = shipped(name)
    if config["distributed_type"] == "DEEPSPEED" and config["mixed_precision"] == "bf16":
        # the engine's bf16: weights cast to bf16 (ZeRO-3 loads the model sharded in bf16; LoRA's adapters and
        # the value head made after loading stay float32 there)
        assert "bfloat16" in weights, summary
    else:  # autocast (or none): the weights stay as loaded, float32
        assert weights == {"float32"}, summary
    return summary


def _launch(name: str, recipe: str, config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """`accelerate launch <shipped config> recipes/<recipe> --config CONFIG`, which must exit 0."""
    args, extra = launch_args(name)
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *args,
        "--main_process_port",
        str(_free_port()),
    ]
    cmd += [str(RECIPES / recipe), "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "RANK", "WORLD_SIZE"))}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.update(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200, cwd=str(cwd))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


# --- ARES ---------------------------------------------------------------------------------------------------
def ares_config(
    tmp_path: Path, model: Path, teacher: str, lora: bool, problems: int = 4, rl: int = 1
) -> Path:
    config = {
        "ares": {
            "output_dir": str(tmp_path / "run"),
            "model": str(model),
            "teacher": teacher,
            "rounds": 1,
            "rl_iterations": rl,
            "max_train_problems": problems,
            "max_eval_problems": 2,
            "correction_max_new_tokens": 8,
            "eval_max_new_tokens": 8,
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0} if lora else None,
        },
        "ppo": {
            "prompts_per_iteration": 4,
            "ppo_epochs": 1,
            "minibatch_size": 4,
            "learning_rate": 3.0e-4,
            "sampling": {"num_samples": 2, "max_new_tokens": 8},
        },
        "sft": {"epochs": 1, "batch_size": 4, "learning_rate": 1.0e-3},
    }
    return _write(tmp_path / "recipe.yaml", config)


def check_ares_run(out: Path, stdout: str, name: str, iterations: int, problems: int) -> None:
    state = json.loads((out / "ares_state.json").read_text())
    assert state["done"] == ["round1/rl", "round1/correct", "round1/sft"]
    assert (out / "report.md").is_file() and stdout.count("[ares] report:") == 1
    metrics = (out / "round1-rl" / "ppo" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["iteration"] for m in metrics] == list(range(iterations))  # one line per iteration
    corrections = (out / "round1-correct" / "corrections.jsonl").read_text().splitlines()
    assert len(corrections) == problems  # every training problem once
    check_precision_file(out / "round1-rl" / "ppo" / "precision.json", name)
    sft = json.loads((out / "stages" / "round1-sft" / "sft_metrics.json").read_text())
    assert sft["precision"]["mixed_precision"] == shipped(name)["mixed_precision"]


ARES_CASES = [
    pytest.param(name, lora, id=f"{name.removesuffix('.yaml')}-{'lora' if lora else 'full'}")
    for name in SHIPPED
    for lora in (False, True)
    if (name, lora) != ("multi_gpu.yaml", False)  # the two-rank VLM test below
]


@pytest.mark.parametrize("name,lora", ARES_CASES)
def test_ares_runs_under_each_shipped_config(tmp_path, tiny_lm_path, name, lora):
    if "deepspeed" in name:
        pytest.importorskip("deepspeed")
    config = ares_config(tmp_path, tiny_lm_path, "reference:lexical", lora)
    proc = _launch(name, "ares_scienceqa.py", config, ROOT)
    check_ares_run(tmp_path / "run", proc.stdout, name, iterations=1, problems=4)
    if "deepspeed" in name:
        stage = tmp_path / "run" / "stages" / "round1-sft"
        saved = stage / ("adapter_model.safetensors" if lora else "model.safetensors")
        assert saved.is_file() and saved.stat().st_size > 10_000  # consolidated weights, not empty shards


def test_ares_two_rank_ddp_splits_problems_and_teacher_requests(tmp_path, tiny_vlm_path, teacher_server):
    """multi_gpu.yaml as shipped (bf16), two processes: the tiny LLaVA's text-only SFT batches (unused vision
    tower) train, each rank samples its own problems, every teacher request is a distinct item, files and
    report are written once."""
    asked: list[tuple[str, str]] = []
    lock = threading.Lock()
    from teacher_server import default_responder

    def recording(task, block):
        with lock:
            asked.append((task, block.get("question", "")))
        return default_responder(task, block)

    teacher_server.responder = recording
    teacher = f"openai-compatible:{teacher_server.openai_url}#fake"
    config = ares_config(tmp_path, tiny_vlm_path, teacher, lora=False, problems=8, rl=2)
    proc = _launch("multi_gpu.yaml", "ares_scienceqa.py", config, ROOT)
    check_ares_run(tmp_path / "run", proc.stdout, "multi_gpu.yaml", iterations=2, problems=8)
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


# --- SPPO IMDB, TL;DR and DLPO ------------------------------------------------------------------------------
PPO_SMALL = {
    "chat": False,
    "prompts_per_iteration": 4,
    "minibatch_size": 2,
    "ppo_epochs": 1,
    "sampling": {"num_samples": 1, "max_new_tokens": 8, "batch_size": 4},
}


def imdb_config(out: Path) -> dict:
    return {
        "imdb": {
            "output_dir": str(out),
            "prompt_tokens": 32,
            "iterations": 1,
            "seeds": [42],
            "eval": {"prompts": 4, "batch_size": 4},
        },
        "lm": {"epochs": 1, "learning_rate": 3.0e-3, "batch_size": 8, "max_length": 128, "max_examples": 32},
        "classifier": {
            "epochs": 1,
            "learning_rate": 2.0e-3,
            "batch_size": 8,
            "max_length": 128,
            "max_examples": 32,
        },
        "ppo": PPO_SMALL,
    }


def tldr_config(out: Path) -> dict:
    return {
        "tldr": {
            "output_dir": str(out),
            "max_prompt_tokens": 128,
            "max_train_prompts": 8,
            "iterations": 1,
            "seeds": [42],
            "judge": "reference:lexical",
            "eval": {"prompts": 4, "do_sample": False, "batch_size": 4},
        },
        "sft": {"epochs": 1, "learning_rate": 3.0e-3, "batch_size": 8, "max_length": 160, "max_examples": 16},
        "reward": {
            "epochs": 1,
            "learning_rate": 1.0e-3,
            "batch_size": 8,
            "max_length": 160,
            "max_examples": 16,
        },
        "ppo": PPO_SMALL,
    }


def dlpo_config(out: Path) -> dict:
    return {
        "run": {
            "output_dir": str(out),
            "data_dir": str(ROOT / "data" / "ljspeech-sample"),
            "resample": True,
            "eval_count": 2,
            "mos": "dnsmos:p808_mos",
            "objectives": ["dlpo"],
            "seeds": [0],
            "iterations": 1,
            "eval_inference_steps": 4,
            "eval_samples_per_text": 1,
            "n_audio": 0,
        },
        "model": {
            "sample_rate": 8000,
            "upsample_factors": [4, 4, 4],
            "encoder_dim": 16,
            "decoder_channels": [16, 16, 8],
        },
        "pretrain": {"steps": 2, "batch_size": 2, "save_every": 1},
        "rl": {
            "num_inference_steps": 4,
            "train_steps_per_trajectory": 2,
            "diffusion_timesteps": 1,
            "diffusion_batch_size": 2,
            "prompts_per_iteration": 2,
            "sampling_batch_size": 2,
            "minibatch_size": 2,
        },
    }


def check_imdb(out: Path, stdout: str, name: str) -> None:
    state = json.loads((out / "rlhf_state.json").read_text())
    assert state["done"] == ["lm", "classifier", "initial", "seed42"]
    lm, classifier = state["results"]["lm"], state["results"]["classifier"]
    assert lm["eval_loss_after"] < lm["eval_loss_before"] and 0 <= classifier["accuracy"] <= 1
    check_precision_file(out / "seed42" / "ppo" / "precision.json", name)
    assert stdout.count("[sppo-imdb] report:") == 1 and (out / "seed42" / "policy" / "config.json").is_file()


def check_tldr(out: Path, stdout: str, name: str) -> None:
    state = json.loads((out / "rlhf_state.json").read_text())
    assert state["done"] == ["sft", "reward_model", "initial", "seed42"]
    sft, reward = state["results"]["sft"], state["results"]["reward_model"]
    assert sft["eval_loss_after"] < sft["eval_loss_before"]  # the TRL SFT stage trained
    assert reward["trained"] and reward["pairs"] > 0  # the TRL reward-model stage trained and was measured
    assert state["results"]["seed42"]["judge"]["n"] == 4
    check_precision_file(out / "seed42" / "ppo" / "precision.json", name)
    assert stdout.count("[sppo-tldr] report:") == 1


def check_dlpo(out: Path, stdout: str, name: str) -> None:
    results = json.loads((out / "results.json").read_text())
    assert {"ground_truth", "pretrained", "dlpo/seed0"} <= set(results)
    rows = (out / "dlpo" / "seed0" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["iteration"] for r in rows] == [0]
    check_precision_file(out / "dlpo" / "seed0" / "precision.json", name)
    assert stdout.count("[dlpo] results:") == 1


RECIPES_UNDER_LAUNCHES = {
    "sppo_imdb.py": (imdb_config, check_imdb),
    "sppo_tldr.py": (tldr_config, check_tldr),
    "dlpo_tts.py": (dlpo_config, check_dlpo),
}


@pytest.mark.parametrize("name", ["multi_gpu.yaml", "deepspeed_zero2.yaml"], ids=["ddp", "zero2"])
@pytest.mark.parametrize("recipe", sorted(RECIPES_UNDER_LAUNCHES), ids=lambda r: r.removesuffix(".py"))
def test_recipe_runs_under_ddp_and_deepspeed(tmp_path, recipe, name):
    if "deepspeed" in name:
        pytest.importorskip("deepspeed")
    make_config, check = RECIPES_UNDER_LAUNCHES[recipe]
    out = tmp_path / "run"
    proc = _launch(name, recipe, _write(tmp_path / "recipe.yaml", make_config(out)), tmp_path)
    check(out, proc.stdout, name)


# --- settings this machine cannot run -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "cmd,named",
    [
        (
            ["sppo_tldr.py", "--set", "tldr.policy_settings.quantization=4bit"],
            "tldr.policy_settings.quantization",
        ),
    ],
    ids=["tldr-rl-4bit"],  # a config section's fp16 is named the same way (tests/test_precision.py)
)
def test_recipe_refuses_what_this_machine_cannot_run(tmp_path, cmd, named):
    """`python recipes/...`: exit 2 and the setting named, before any run folder exists."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(RECIPES / cmd[0]), *cmd[1:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert named in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_fp16_launch_is_refused_at_start(tmp_path):
    """`accelerate launch --mixed_precision fp16` on CPU: the recipe names the setting and stops before any
    work (the launcher reports the child's failure with its own exit code 1)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--quiet",
        "--cpu",
        "--mixed_precision",
        "fp16",
    ]
    cmd += ["--num_processes", "1", str(RECIPES / "ares_scienceqa.py")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**env, "HF_HUB_OFFLINE": "1"}, cwd=tmp_path
    )
    assert proc.returncode != 0
    assert "accelerate launch: mixed_precision 'fp16'" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
