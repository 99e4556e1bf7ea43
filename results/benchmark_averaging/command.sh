# The "last" rows are the landscape's runs of these schedules (results/benchmark_landscape, same
# config, same seeds; CPU runs are deterministic), copied into runs.jsonl so only "avg4" runs.
# (A first launch with all:0.05 and all:0.2 as well was cut to this pair for time; its finished
# avg4 runs of those schedules stay in runs.jsonl, unused.)
python experiments/power_study.py --schedules "all:0.1;backbone:0.1,head:0.5" \
    --seeds 20 --variant last --variant avg4 average_windows=4 \
    --output-dir results/benchmark_averaging
