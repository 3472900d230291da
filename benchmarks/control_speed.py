"""Control PPO: steps per second against the raw simulator and Stable-Baselines3, the scaling of parallel envs,
and training returns, measured so that the figures reproduce on a shared machine.

    python benchmarks/control_speed.py --envs hopper --hopper-steps 204800 --repeats 3 --threads 1

Method. Every measurement is a fresh process (`--one`), launched by this script; the kinds of one env alternate
within a round (A, B, C, then C, B, A, ...) and each round uses the next seed (1, 2, 3, ...; `--first-seed`), so
returns come from as many seeds as there are rounds. Per process we record
- whole-process wall time (interpreter start, imports, setup, training, exit) and its CPU time (user + sys, env
  subprocesses included),
- in-process wall and CPU time (from building the envs to the last step; for ours `train()`, including loading
  or compiling the update), and for runs with env subprocesses the CPU time of the main process and of the env
  processes apart,
- the true return of every training episode (before any reward normalisation).
Figures are medians with the min-max over the rounds; steps/s = steps / time. The load average is read before
and after each env's rounds. Both libraries get the same torch thread count (also OMP/MKL threads). Before the
timed rounds one short untimed run makes sure the compiled update is in the machine's cache (as after a user's
first run); `--compile-cost` measures what compiling costs instead.

On a machine shared with other work, wall time measures the other work too; CPU time does not (much): compare
the CPU-time columns then, and take wall-clock figures when the machine is quiet.

Kinds. `raw`: the bare simulator, `gym.make(id)` with random actions from its action space, no vector env and no
wrappers of ours (gymnasium's default ones only). `bare`: the vector env our training steps (with our wrappers)
driven by random actions, no learning. `ours`: `control.train` with the defaults (compile auto). `ours-async2`:
the same with 2 envs in parallel processes (`--num-envs 2 --num-steps 1024 --async-envs true`, the same 2048
steps per rollout). `ours-workers2`: the same 2 envs, each collected by its own process with its own copy of the
policy (`--num-envs 2 --num-steps 1024 --rollout-workers 2`). `ours-eager`: the defaults with `--compile off`. `ours-bf16` (Pong): the Nature CNN under
bfloat16 autocast, only where the CPU has native bf16. `sb3`: Stable-Baselines3 PPO configured as ours (below).

Settings. Hopper-v5: 1 env, 2048 steps per rollout, 10 epochs, minibatch 64 (32 per epoch), 64x64 tanh MLPs,
separate actor and critic, observation and reward normalisation, learning rate 3e-4 annealed linearly,
no value clipping, time-limit truncations bootstrapped. ALE/Pong-v5 (SB3: PongNoFrameskip-v4, the same game
without sticky actions): 8 envs, 128 steps, 4 epochs, minibatch 256, Nature CNN, lr 2.5e-4 annealed, clip 0.1,
entropy 0.01. SB3 as ours: the same network sizes, initialisation and Adam eps; `vf_coef=0.25` because SB3's
value loss is the mean squared error and ours half of it (CleanRL's); its learning-rate schedule shifted by one
rollout so that update k uses the same rate as ours.

Writes benchmarks/results/control_speed.json (every process's figures) and control_speed.md (the tables).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE_ROOT = ""  # --before-root: a checkout of older code, run as the "-before" kinds
LAST_EPISODES = 20
KINDS = (
    "raw",
    "bare",
    "ours",
    "ours-async2",
    "ours-workers2",
    "ours-eager",
    "ours-compiled",
    "ours-bf16",
    "sb3",
)
SETTINGS = {  # our env id, SB3's env id, envs, steps per rollout
    "hopper": ("Hopper-v5", "Hopper-v5", 1, 2048),
    "pong": ("ALE/Pong-v5", "PongNoFrameskip-v4", 8, 128),
}


# ----------------------------------------------------------------------------------------- one process each
def run_bare(env: str, steps: int, seed: int) -> dict:
    from control.envs import EnvConfig, make_vec_env

    env_id, _, num_envs, _ = SETTINGS[env]
    t0, c0 = time.perf_counter(), time.process_time()
    envs = make_vec_env(EnvConfig(env_id=env_id), num_envs, seed)
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    for _ in range(steps // num_envs):
        envs.step(envs.action_space.sample())
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    envs.close()
    return {"in_process_s": elapsed, "in_process_cpu_s": cpu}


def run_raw(env: str, steps: int, seed: int) -> dict:
    """The bare simulator: `gym.make(id)` (gymnasium's own default wrappers only), random actions from its
    action space, reset when an episode ends; no vector env, no wrappers of ours."""
    import gymnasium as gym

    env_id = SETTINGS[env][0]
    t0, c0 = time.perf_counter(), time.process_time()
    if env_id.startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)
    sim = gym.make(env_id)
    sim.reset(seed=seed)
    sim.action_space.seed(seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = sim.step(sim.action_space.sample())
        if terminated or truncated:
            sim.reset()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    sim.close()
    return {"in_process_s": elapsed, "in_process_cpu_s": cpu}


def run_ours(
    env: str,
    steps: int,
    seed: int,
    threads: int,
    compile_mode: str,
    bf16: bool,
    parallel_envs: int = 0,
    workers: bool = False,
) -> dict:
    from control.config import TrainConfig
    from control.train import train

    out = tempfile.mkdtemp()
    # `--before-root` code predates the compile setting
    extra = {"compile": compile_mode} if "compile" in TrainConfig.__dataclass_fields__ else {}
    if parallel_envs:
        rollout = SETTINGS[env][2] * SETTINGS[env][3]
        extra |= {"num_envs": parallel_envs, "num_steps": rollout // parallel_envs}
        extra |= {"rollout_workers": parallel_envs} if workers else {"async_envs": True}
    t0, c0 = time.perf_counter(), time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = train(
        TrainConfig(
            algo="ppo",
            env_id=SETTINGS[env][0],
            seed=seed,
            total_steps=steps,
            out_dir=out,
            eval_episodes=0,
            threads=threads,
            device="cpu",
            bf16=bf16,
            **extra,
        )
    )
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the env processes, joined when the envs closed
    env_processes = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    rows = [r.split(",") for r in (Path(out) / "episodes.csv").read_text().split()]
    rows = [r for r in rows if r[0].isdigit()]  # (newer code writes a header row)
    return {
        "in_process_s": elapsed,
        "in_process_cpu_s": cpu + env_processes,
        "main_process_cpu_s": cpu,
        "env_processes_cpu_s": env_processes,  # (a single env's process starts one too: glfw's version check)
        "parallel_envs": parallel_envs,
        "returns": [float(r[1]) for r in rows],
        "lengths": [int(r[2]) for r in rows],
        "seconds": summary["seconds"],
    }


def run_sb3(env: str, steps: int, seed: int, threads: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize
    from torch import nn

    torch.set_num_threads(threads)
    _, sb3_id, num_envs, n_steps = SETTINGS[env]
    t0, c0 = time.perf_counter(), time.process_time()
    lr = 2.5e-4 if env == "pong" else 3e-4
    shift = num_envs * n_steps / steps  # SB3 anneals from 1 - 1/K at update 1; ours from 1
    common = dict(
        learning_rate=lambda progress: lr * min(1.0, progress + shift),
        n_steps=n_steps,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range_vf=None,
        normalize_advantage=True,
        vf_coef=0.25,
        max_grad_norm=0.5,
        seed=seed,
        device="cpu",
        stats_window_size=10**6,  # keep every training episode's return
    )
    if env == "pong":
        import ale_py

        gym.register_envs(ale_py)
        venv = VecFrameStack(make_atari_env(sb3_id, n_envs=num_envs, seed=seed), 4)
        model = PPO("CnnPolicy", venv, n_epochs=4, batch_size=256, clip_range=0.1, ent_coef=0.01, **common)
    else:
        venv = VecNormalize(make_vec_env(sb3_id, n_envs=1, seed=seed), gamma=0.99, clip_obs=10.0)
        policy_kwargs = dict(
            net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=nn.Tanh, ortho_init=True, log_std_init=0.0
        )
        model = PPO(
            "MlpPolicy",
            venv,
            n_epochs=10,
            batch_size=64,
            clip_range=0.2,
            ent_coef=0.0,
            policy_kwargs=policy_kwargs,
            **common,
        )
    model.learn(total_timesteps=steps)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    episodes = list(model.ep_info_buffer)
    return {
        "in_process_s": elapsed,
        "in_process_cpu_s": cpu,
        "returns": [float(e["r"]) for e in episodes],
        "lengths": [int(e["l"]) for e in episodes],
    }


def one(kind: str, env: str, steps: int, seed: int, threads: int) -> dict:
    if kind == "raw":
        return run_raw(env, steps, seed)
    if kind == "bare":
        return run_bare(env, steps, seed)
    if kind == "sb3":
        return run_sb3(env, steps, seed, threads)
    kind = kind.removesuffix("-before")
    compile_mode = {"ours-eager": "off", "ours-compiled": "on"}.get(kind, "auto")
    parallel = 2 if kind in ("ours-async2", "ours-workers2") else 0
    return run_ours(
        env,
        steps,
        seed,
        threads,
        compile_mode,
        bf16="bf16" in kind,
        parallel_envs=parallel,
        workers=kind == "ours-workers2",
    )


# ----------------------------------------------------------------------------------------------- the parent
def measure(kind: str, env: str, steps: int, seed: int, threads: int, extra_env: dict | None = None) -> dict:
    """One fresh process: whole-process wall and CPU time around the child's own figures."""
    cmd = [sys.executable, __file__, "--one", kind, "--env", env, "--steps", str(steps), "--seed", str(seed)]
    cmd += ["--threads", str(threads)]
    child_env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    root = BEFORE_ROOT if kind.endswith("-before") else str(ROOT)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    child_env.update(extra_env or {})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # this child (and what it waited for) alone
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} on {env} (seed {seed}) failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"kind": kind, "seed": seed, "steps": steps, "whole_process_s": wall, "cpu_s": cpu, **result}


def compile_cost(env: str, threads: int, iterations: int = 2) -> dict:
    """In-process seconds of a short run compiled with an empty inductor cache (a machine's first run), compiled
    with the cache that run left (every later run), and eager; leaves the cache warm for the timed runs."""
    steps = SETTINGS[env][2] * SETTINGS[env][3] * iterations
    cold_cache = {"TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp(prefix="inductor-cold-")}
    cold = measure("ours-compiled", env, steps, 0, threads, cold_cache)
    measure("ours-compiled", env, steps, 0, threads)  # fills the default cache, as a user's first run does
    warm = measure("ours-compiled", env, steps, 0, threads)
    eager = measure("ours-eager", env, steps, 0, threads)
    return {
        "steps": steps,
        **{
            f"{k}_in_process_s": r["in_process_s"]
            for k, r in (("cold", cold), ("warm", warm), ("eager", eager))
        },
        **{f"{k}_cpu_s": r["cpu_s"] for k, r in (("cold", cold), ("warm", warm), ("eager", eager))},
    }


def cpu_description() -> dict:
    """CPU model, the instruction-set flags that matter here, cores, and the load."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "", platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return {
        "model": model,
        "flags": [f for f in wanted if f in flags],
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


MEASURES = {  # ratio name -> summary field
    "whole_process": "whole_process_steps_per_s",
    "in_process": "in_process_steps_per_s",
    "cpu": "cpu_steps_per_s",
    "in_process_cpu": "in_process_cpu_steps_per_s",
    "busiest_cpu": "busiest_cpu_steps_per_s",
}


def busiest_process_cpu(run: dict) -> float:
    """The CPU time of the busiest process of a run: the whole process's for one process; with env processes
    stepping beside the main one, its start-up plus the larger of the main process's and the env processes'
    CPU. On idle cores (one per process) this is about the run's wall time: the projection of the parallel
    speed-up from CPU time when the machine is shared."""
    if not run.get("parallel_envs"):
        return run["cpu_s"]
    startup = run["cpu_s"] - run["in_process_cpu_s"]
    return startup + max(run["main_process_cpu_s"], run["env_processes_cpu_s"])


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(runs: list[dict]) -> dict:
    steps = runs[0]["steps"]
    out = {
        "whole_process_steps_per_s": spread([steps / r["whole_process_s"] for r in runs]),
        "in_process_steps_per_s": spread([steps / r["in_process_s"] for r in runs]),
        "cpu_steps_per_s": spread([steps / r["cpu_s"] for r in runs]),
        "in_process_cpu_steps_per_s": spread([steps / r["in_process_cpu_s"] for r in runs]),
        "busiest_cpu_steps_per_s": spread([steps / busiest_process_cpu(r) for r in runs]),
        "startup_s": spread([r["whole_process_s"] - r["in_process_s"] for r in runs]),
    }
    if all(r.get("returns") for r in runs):  # (no episode ends within Pong's short budget)
        last = [sum(r["returns"][-LAST_EPISODES:]) / max(1, len(r["returns"][-LAST_EPISODES:])) for r in runs]
        # mean return over training: every step's episode return (episodes weighted by their length)
        auc = [
            sum(x * n for x, n in zip(r["returns"], r["lengths"], strict=True)) / max(1, sum(r["lengths"]))
            for r in runs
        ]
        out["last_returns"] = spread(last)
        out["mean_training_return"] = spread(auc)
        out["episodes"] = [len(r["returns"]) for r in runs]
    return out


def fmt(s: dict, digits: int = 0) -> str:
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}-{s['max']:,.{digits}f})"


def table(env: str, result: dict) -> str:
    s = result["summary"]
    lines = [
        f"{env}: {result['steps']:,} steps per process, {result['repeats']} alternating rounds (seeds "
        f"{', '.join(map(str, result['seeds']))}), {result['threads']} torch thread(s); load average "
        f"{result['load_before'][0]:.1f} before, {result['load_after'][0]:.1f} after",
        "",
        "| run | whole process, steps/s | in-process, steps/s | whole process CPU time, steps/s "
        "| in-process CPU time, steps/s | busiest process CPU time, steps/s | startup s "
        "| last-20 training return | mean training return |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, k in s.items():
        ret = (
            (fmt(k["last_returns"], 1), fmt(k["mean_training_return"], 1))
            if "last_returns" in k
            else ("no episode ended", "")
            if "returns" in result["runs"][kind][0]
            else ("", "")
        )
        lines.append(
            f"| {kind} | {fmt(k['whole_process_steps_per_s'])} | {fmt(k['in_process_steps_per_s'])} "
            f"| {fmt(k['cpu_steps_per_s'])} | {fmt(k['in_process_cpu_steps_per_s'])} "
            f"| {fmt(k['busiest_cpu_steps_per_s'])} | {fmt(k['startup_s'], 1)} "
            f"| {ret[0]} | {ret[1]} |"
        )
    ratios = result["ratios"]
    lines += [
        "",
        "| ratio of medians | whole process | in-process | whole process CPU time | in-process CPU time "
        "| busiest process CPU time |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in ratios.items():
        lines.append(
            f"| {name} | {r['whole_process']:.2f} | {r['in_process']:.2f} | {r['cpu']:.2f} "
            f"| {r['in_process_cpu']:.2f} | {r['busiest_cpu']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--envs", default="hopper,pong")
    parser.add_argument("--hopper-steps", type=int, default=204_800)
    parser.add_argument("--pong-steps", type=int, default=16_384)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both libraries")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds, one seed each")
    parser.add_argument("--first-seed", type=int, default=1, help="round i uses seed first_seed + i")
    parser.add_argument("--kinds", default=None, help="comma list (default: all kinds of each env)")
    parser.add_argument("--out", default="benchmarks/results/control_speed")
    parser.add_argument(
        "--no-compile-cost", action="store_true", help="skip the compile-cost runs (e.g. a returns-only run)"
    )
    parser.add_argument(
        "--before-root",
        default="",
        help="a checkout of older code (e.g. `git archive REV control | tar -x -C DIR`): adds its PPO as "
        "ours-before (and ours-bf16-before on Pong), alternating with the rest",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--env", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.env, args.steps, args.seed, args.threads)))
        return
    global BEFORE_ROOT
    BEFORE_ROOT = str(Path(args.before_root).resolve()) if args.before_root else ""
    sys.path.insert(0, str(ROOT))
    import torch

    from control.device import native_bf16

    result: dict = {"cpu": cpu_description(), "threads": args.threads, "repeats": args.repeats}
    git = ["git", "-C", str(ROOT)]
    result["commit"] = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result["dirty"] = bool(
        subprocess.run([*git, "status", "--porcelain", "control"], capture_output=True, text=True).stdout
    )
    result["before_root"] = BEFORE_ROOT
    result["torch"] = torch.__version__
    bf16_ok, bf16_why = native_bf16(torch.device("cpu"))
    result["bf16"] = {"native": bf16_ok, "why": bf16_why}
    markdown = [
        f"CPU: {result['cpu']['model']} ({', '.join(result['cpu']['flags'])}), {result['cpu']['logical_cpus']} "
        f"logical CPUs; torch {result['torch']}, Python {result['cpu']['python']}; code at {result['commit'][:10]}"
        f"{' (control/ modified)' if result['dirty'] else ''}",
        "",
    ]
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    progress = out.with_suffix(".runs.jsonl")
    progress.unlink(missing_ok=True)
    for env in args.envs.split(","):
        steps = args.hopper_steps if env == "hopper" else args.pong_steps
        kinds = ["raw", "ours", "ours-async2", "sb3"] if env == "hopper" else ["raw", "ours", "sb3"]
        if env == "pong" and bf16_ok:
            kinds.insert(2, "ours-bf16")
        if BEFORE_ROOT:
            kinds[1:1] = [k + "-before" for k in kinds if k in ("ours", "ours-bf16")]
        if args.kinds:  # any of the kinds, in the order given
            kinds = [k for k in args.kinds.split(",") if k in KINDS or k.removesuffix("-before") in KINDS]
        if "ours" in kinds and env == "hopper" and not args.no_compile_cost:
            result["compile_cost"] = compile_cost(env, args.threads)
            print("compile cost", result["compile_cost"], flush=True)
        elif any(
            k.startswith("ours") for k in kinds
        ):  # the compiled update in the cache, as after a first run
            measure("ours-compiled", env, SETTINGS[env][2] * SETTINGS[env][3], 0, args.threads)
        load_before = os.getloadavg()
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for i in range(args.repeats):
            for kind in kinds if i % 2 == 0 else kinds[::-1]:
                r = measure(kind, env, steps, args.first_seed + i, args.threads)
                runs[kind].append(r)
                # each process's figures as they come: an interrupted run keeps them
                with progress.open("a") as f:
                    f.write(json.dumps({"env": env, **r}) + "\n")
                print(env, kind, f"seed {args.first_seed + i}", f"{r['whole_process_s']:.1f} s", flush=True)
        summary = {k: summarise(v) for k, v in runs.items()}
        med = {k: {m: v[m]["median"] for m in MEASURES.values()} for k, v in summary.items()}
        ratios = {}
        for a, b in (
            ("ours", "raw"),
            ("ours-async2", "ours"),
            ("ours-async2", "raw"),
            ("ours-workers2", "ours"),
            ("ours-workers2", "raw"),
            ("bare", "raw"),
            ("ours", "bare"),
            ("ours", "sb3"),
            ("ours-eager", "bare"),
            ("ours-eager", "sb3"),
            ("ours-bf16", "sb3"),
            ("ours", "ours-eager"),
            ("ours", "ours-before"),
            ("ours-bf16", "ours-bf16-before"),
            ("ours-before", "bare"),
            ("ours-before", "sb3"),
            ("ours-bf16-before", "sb3"),
        ):
            if a in med and b in med:
                ratios[f"{a} / {b}"] = {name: med[a][m] / med[b][m] for name, m in MEASURES.items()}
        result[env] = {
            "steps": steps,
            "repeats": args.repeats,
            "seeds": list(range(args.first_seed, args.first_seed + args.repeats)),
            "threads": args.threads,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "summary": summary,
            "ratios": ratios,
            "runs": runs,
        }
        markdown += [table(env, result[env]), ""]
        print(table(env, result[env]), flush=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text("\n".join(markdown))


if __name__ == "__main__":
    main()
