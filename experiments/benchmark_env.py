"""What the environment costs: env-driven fine-tuning versus a plain PyTorch loop, the price of
proxy-validation, and meta-training throughput as env runners are added.

How to run:
    python experiments/benchmark_env.py                 # all three parts, about 10 min on 2 cores
    python experiments/benchmark_env.py --parts overhead,proxy

Every ratio is measured in this one run, side by side with its baseline, and printed as a table;
`--output` also writes them as JSON. Timings are wall-clock on whatever machine runs this.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import numpy as np
import torch
import torch.nn.functional as F

from trainables.cli import OneLineErrorParser, run_main
from trainables.config import preset


def plain_loop_seconds(env, iters: int, seed: int) -> float:
    """The same model, data, optimiser and KL term as the env, in a bare PyTorch loop."""
    run = env.run
    model = copy.deepcopy(run.model).train()
    teacher = run.guidance.teacher
    cfg = run.cfg
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.base_lr * 0.1,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        run.splits.train, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=gen
    )
    t0 = time.perf_counter()
    done = 0
    while done < iters:
        for x, y in loader:
            out = model(x)
            loss = F.cross_entropy(out.task_logits, y)
            if teacher is not None:
                with torch.no_grad():
                    t = teacher(x).imagenet_logits
                loss = loss + cfg.guidance_weight * F.kl_div(
                    out.imagenet_logits.log_softmax(1),
                    t.log_softmax(1),
                    reduction="batchmean",
                    log_target=True,
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == iters:
                break
    return time.perf_counter() - t0


def env_episode_breakdown(env, seed: int) -> dict[str, float]:
    """Wall time of one env-driven episode, split into its parts."""
    run = env.run
    eval_s = [0.0]
    original = run.evaluate

    def timed_eval(split):
        t = time.perf_counter()
        out = original(split)
        eval_s[0] += time.perf_counter() - t
        return out

    run.evaluate = timed_eval
    try:
        env.reset(seed=seed)
        eval_s[0] = 0.0  # the initial proxy pass belongs to reset, not to the fine-tuning
        action = np.full(len(env.group_names), 1, dtype=np.int64)  # multiplier 0.1 everywhere
        train = teacher = 0.0
        t0 = time.perf_counter()
        done = False
        while not done:
            _, _, term, trunc, info = env.step(action)
            train += info["window_seconds"]
            teacher += info["teacher_seconds"]
            done = term or trunc
        total = time.perf_counter() - t0
    finally:
        run.evaluate = original
    return {
        "total_s": total,
        "train_s": train,
        "teacher_forward_s": teacher,
        "evaluation_s": eval_s[0],
        "observation_and_step_s": total - train - eval_s[0],
    }


def overhead(preset_name: str, seed: int) -> dict[str, float]:
    from envs.syn_to_real import SynToRealEnv

    env = SynToRealEnv(preset=preset_name, report_timing=True, report_test=False)
    iters = env.cfg.total_iters
    env_episode_breakdown(env, seed)  # warm-up (allocator, kernels)
    plain_loop_seconds(env, 10, seed)
    parts = env_episode_breakdown(env, seed)
    plain = plain_loop_seconds(env, iters, seed)
    parts |= {
        "plain_loop_s": plain,
        "iterations": iters,
        "ratio_training_vs_plain": parts["train_s"] / plain,
        "ratio_step_excl_proxy_vs_plain": (parts["total_s"] - parts["evaluation_s"]) / plain,
        "ratio_total_vs_plain": parts["total_s"] / plain,
    }
    # An env runner is a 1-CPU Ray actor, so torch runs 1 thread there: compare like with like.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        parts["direct_episode_1_thread_s"] = env_episode_breakdown(env, seed)["total_s"]
    finally:
        torch.set_num_threads(threads)
    parts |= rllib_overhead(preset_name, parts["direct_episode_1_thread_s"], seed)
    return parts


def rllib_overhead(preset_name: str, direct_episode_s: float, seed: int) -> dict[str, float]:
    """One env runner sampling whole episodes, against the same episode stepped directly."""
    import ray

    from controllers.algorithms import Resources, build_algo_config
    from trainables.config import PRESETS

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cfg = build_algo_config(
            "PPO",
            {"preset": preset_name, "report_test": False},
            PRESETS[preset_name].windows,
            Resources(num_env_runners=1),
            1,
        )
        algo = cfg.build_algo()
        algo.train()  # warm-up: runner start, first episode
        t0 = time.perf_counter()
        r = algo.train()
        sample_s = time.perf_counter() - t0
        per_episode = r["env_runners"]["episode_duration_sec_mean"]
        algo.stop()
    finally:
        ray.shutdown()
    return {
        "rllib_episode_s": per_episode,
        "rllib_iteration_s": sample_s,
        "ratio_rllib_episode_vs_direct": per_episode / direct_episode_s,
    }


def proxy_cost(preset_name: str, sizes: list[int], seed: int) -> list[dict[str, float]]:
    from envs.syn_to_real import SynToRealEnv

    rows = []
    for size in sizes:
        env = SynToRealEnv(
            preset=preset_name, proxy_size=size, report_timing=True, report_test=False
        )
        env.reset(seed=seed)
        action = np.full(len(env.group_names), 1, dtype=np.int64)
        env.step(action)  # warm-up
        t0 = time.perf_counter()
        _, _, _, _, info = env.step(action)
        step = time.perf_counter() - t0
        t1 = time.perf_counter()
        env.run.evaluate("proxy")
        ev = time.perf_counter() - t1
        rows.append(
            {"proxy_size": size, "step_s": step, "proxy_eval_s": ev, "fraction_of_step": ev / step}
        )
    return rows


def scaling(preset_name: str, runners: list[int], iterations: int) -> list[dict[str, float]]:
    import ray

    from controllers.algorithms import Resources, build_algo_config
    from trainables.config import PRESETS

    windows = PRESETS[preset_name].windows
    rows = []
    for n in runners:
        ray.init(num_cpus=max(n + 1, 2), include_dashboard=False, log_to_driver=False)
        try:
            cfg = build_algo_config(
                "PPO",
                {"preset": preset_name, "report_test": False},
                windows,
                Resources(num_env_runners=n),
                episodes_per_iteration=n,
            )
            algo = cfg.build_algo()
            algo.train()  # warm-up
            start = algo.train()["env_runners"]["num_episodes_lifetime"]
            t0 = time.perf_counter()
            for _ in range(iterations):
                r = algo.train()
            minutes = (time.perf_counter() - t0) / 60
            episodes = r["env_runners"]["num_episodes_lifetime"] - start
            algo.stop()
        finally:
            ray.shutdown()
        rows.append(
            {"env_runners": n, "episodes": episodes, "episodes_per_min": episodes / minutes}
        )
    base = rows[0]["episodes_per_min"]
    for row in rows:
        row["speedup"] = row["episodes_per_min"] / base
        row["efficiency"] = row["speedup"] / (row["env_runners"] / rows[0]["env_runners"])
    return rows


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The flags of a command line; no side effects."""
    p = OneLineErrorParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--parts", default="overhead,proxy,scaling", help="which measurements")
    p.add_argument("--preset", default="embedded", help="env preset for overhead and proxy cost")
    p.add_argument("--scaling-preset", default="tiny", help="env preset for the scaling part")
    p.add_argument("--runners", default="1,2,4", help="env runner counts for scaling")
    p.add_argument("--scaling-iterations", type=int, default=3, help="timed RLlib iterations")
    p.add_argument("--proxy-sizes", default="100,250,500,1000,2000", help="proxy split sizes")
    p.add_argument("--output", default=None, help="write the measurements as JSON here")
    args = p.parse_args(argv)
    preset(args.preset)  # fail fast on a bad preset name
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    parts = set(args.parts.split(","))
    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, "
        f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}",
        "command": " ".join(["python experiments/benchmark_env.py", *(argv or sys.argv[1:])]),
    }
    if "overhead" in parts:
        o = overhead(args.preset, seed=0)
        report["overhead"] = o
        print(f"\n## Env overhead ({args.preset}, {o['iterations']} SGD iterations)\n")
        print("| part | seconds |\n|---|---|")
        for k in (
            "plain_loop_s",
            "total_s",
            "train_s",
            "teacher_forward_s",
            "evaluation_s",
            "observation_and_step_s",
            "rllib_episode_s",
        ):
            print(f"| {k} | {o[k]:.2f} |")
        for k in (
            "ratio_training_vs_plain",
            "ratio_step_excl_proxy_vs_plain",
            "ratio_total_vs_plain",
            "ratio_rllib_episode_vs_direct",
        ):
            print(f"| **{k}** | {o[k]:.3f}x |")
    if "proxy" in parts:
        rows = proxy_cost(args.preset, [int(s) for s in args.proxy_sizes.split(",")], seed=0)
        report["proxy_cost"] = rows
        print(f"\n## Proxy-validation cost per step ({args.preset})\n")
        print("| proxy size | step (s) | proxy eval (s) | share of step |\n|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['proxy_size']} | {r['step_s']:.2f} | {r['proxy_eval_s']:.3f} | "
                f"{100 * r['fraction_of_step']:.1f}% |"
            )
    if "scaling" in parts:
        rows = scaling(
            args.scaling_preset, [int(n) for n in args.runners.split(",")], args.scaling_iterations
        )
        report["scaling"] = rows
        print(f"\n## Meta-training throughput ({args.scaling_preset} preset, PPO)\n")
        print("| env runners | episodes/min | speed-up | efficiency |\n|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['env_runners']} | {r['episodes_per_min']:.1f} | {r['speedup']:.2f}x | "
                f"{100 * r['efficiency']:.0f}% |"
            )
    print(f"\nmachine: {report['machine']}")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
