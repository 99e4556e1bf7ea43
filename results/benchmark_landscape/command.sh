python experiments/power_study.py --schedules landscape --seeds 20 --output-dir results/benchmark_landscape
