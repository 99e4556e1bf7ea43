# The landscape's runs (results/benchmark_landscape/runs.jsonl, copied: nothing runs again)
# analysed without the two uniform schedules at the cliff (all:0.2, whose sd over seeds is 6.4,
# and all:0.5, at chance): the pooled paired noise of the eight schedules below it.
python experiments/power_study.py --schedules "backbone:0.1,head:0.5;all:0.1;backbone:0.1,head:1;backbone:0.1,head:0.2;early:0.02,late:0.1,head:1;backbone:0.05,head:1;backbone:0.05,head:0.2;all:0.05" \
    --seeds 20 --output-dir results/benchmark_landscape_below_cliff
