"""The Markdown tables (and the run-cost line) each part prints to the console."""

from __future__ import annotations

from experiments.benchmarks.device import DeviceThroughput
from experiments.benchmarks.eval_batch import EvalBatchRow, default_size
from experiments.benchmarks.overhead import Overhead
from experiments.benchmarks.proxy import ProxyRow
from experiments.benchmarks.runcost import RunCost
from experiments.benchmarks.scaling import ScalingRow
from experiments.benchmarks.timing import SPREAD


def print_overhead(o: Overhead, pairs: int) -> None:
    print(
        f"\n## Env overhead ({o.preset}, {o.iterations} SGD iterations per episode, "
        f"{pairs} interleaved pairs)\n"
    )
    print("| part | median seconds |\n|---|---|")
    print(f"| plain PyTorch loop | {o.plain_loop_median_s:.2f} |")
    for k, v in o.episode_median_s.items():
        print(f"| env episode: {k} | {v:.2f} |")
    direct = o.direct_episode_1_thread_s
    print(f"| direct episode, 1 torch thread (single measurement) | {direct:.2f} |")
    if o.rllib:
        print(f"| RLlib-sampled episode (single measurement) | {o.rllib['rllib_episode_s']:.2f} |")
    print(f"\n| ratio, A seconds / B seconds | median ({SPREAD}) |\n|---|---|")
    print(f"| env SGD windows / plain loop | {o.training_vs_plain.cell()} |")
    print(
        f"| env episode less proxy-validation / plain loop | {o.step_excl_proxy_vs_plain.cell()} |"
    )
    print(f"| env episode / plain loop | {o.total_vs_plain.cell()} |")
    if o.rllib:
        print(
            "| RLlib episode / direct episode, 1 thread: single measurement, not a ratio "
            f"to trust | {o.rllib['rllib_episode_over_direct']:.3f}x |"
        )


def print_proxy(rows: list[ProxyRow], preset_name: str, pairs: int) -> None:
    print(f"\n## Proxy-validation cost per step ({preset_name}, {pairs} interleaved pairs)\n")
    print(
        f"| proxy size | step, median s | proxy eval, median s | share of step, median "
        f"({SPREAD}) |\n|---|---|---|---|"
    )
    for r in rows:
        s = r.share_of_step
        print(
            f"| {r.proxy_size} | {s.b_median_s:.2f} | {s.a_median_s:.3f} | "
            f"{100 * s.median_ratio:.1f}% ({100 * s.ratio_lo:.1f}-{100 * s.ratio_hi:.1f}%) |"
        )


def print_scaling(rows: list[ScalingRow], preset_name: str, pairs: int) -> None:
    print(f"\n## Meta-training throughput ({preset_name} preset, PPO, {pairs} interleaved pairs)\n")
    print(
        f"| env runners | episodes/min | speed-up, median ({SPREAD}) | efficiency |\n"
        "|---|---|---|---|"
    )
    for r in rows:
        speedup = "1 (reference)" if r.speedup is None else r.speedup.cell()
        print(
            f"| {r.env_runners} | {r.episodes_per_min:.1f} | {speedup} | "
            f"{100 * r.efficiency:.0f}% |"
        )


def print_run_cost(c: RunCost, preset_name: str) -> None:
    total = c.build_s + sum(c.run_s)
    print(
        f"\nRun cost ({preset_name}, {c.runs} runs in one worker): wall {total:.1f} s "
        f"(env build {c.build_s:.1f} s) / SGD windows {sum(c.sgd_s):.1f} s = "
        f"{c.wall_over_sgd:.2f}x"
    )


def print_eval_batch(rows: list[EvalBatchRow], preset_name: str, pairs: int) -> None:
    print(
        f"\n## Scoring the test split by batch size ({preset_name}, one torch thread, {pairs} "
        f"interleaved pairs)\n"
    )
    print(
        f"| batch size | median s | vs batch {default_size()}, median ({SPREAD}) | "
        "same accuracy | NLL difference |\n|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r.batch_size} | {r.vs_default.a_median_s:.2f} | {r.vs_default.cell()} | "
            f"{'yes' if r.same_accuracy else 'NO'} | {r.nll_difference:.1e} |"
        )


def print_device(d: DeviceThroughput, pairs: int) -> None:
    precision = (
        f"autocast {d.autocast or 'off'}, channels_last {'on' if d.channels_last else 'off'}"
    )
    print(
        f"\n## Training throughput on {d.device} ({d.device_type}; {precision}; batch "
        f"{d.batch_size}, {d.image_size} px, {d.iters_per_measurement} iterations per "
        f"measurement, {pairs} interleaved pairs)\n"
    )
    print("| model | loop | images/s | median s | peak GPU memory |\n|---|---|---|---|---|")
    for m in d.models:
        for loop in (m.env, m.plain, m.best):
            peak = "n/a" if loop.peak_memory_gib is None else f"{loop.peak_memory_gib:.2f} GiB"
            print(
                f"| {m.model} | {loop.loop} | {loop.images_per_s:.1f} | {loop.median_s:.3f} | "
                f"{peak} |"
            )
    print(
        "\n| model | env / plain images/s (goal >= 0.95) | plain / best images/s "
        "(goal >= 0.80) |\n|---|---|---|"
    )
    for m in d.models:
        print(f"| {m.model} | {m.env_vs_plain.cell()} | {m.plain_vs_best.cell()} |")
    if any(m.runners for m in d.models):
        shares = "1/n GPU each" if d.device_type == "cuda" else "no GPU: the CPU is shared"
        print(f"\n### Env runners sharing one GPU ({d.device}; Ray actors, {shares})\n")
        print(
            f"| model | runners | aggregate images/s | speed-up vs 1 runner, median ({SPREAD}) "
            "|\n|---|---|---|---|"
        )
        for m in d.models:
            for r in m.runners:
                speedup = "1 (reference)" if r.speedup is None else r.speedup.cell()
                print(f"| {m.model} | {r.runners} | {r.images_per_s:.1f} | {speedup} |")
