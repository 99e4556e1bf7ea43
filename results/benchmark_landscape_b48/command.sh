# The landscape at batch 48 (the embedded default from this study on), 20 paired seeds
# (50000-50019): the uniform rate at 1e-3 and 2e-3, the backbone-vs-head pairs at both rates,
# and the random search's per-group schedule (found at batch 16, docs/results.md "Does the
# controller learn?"). The four schedules of results/benchmark_batch and
# results/benchmark_batch48_rates (variant batch48) are copied into runs.jsonl first (CPU runs
# are deterministic), so only the searched schedule runs (19 of its 20 seeds: 12 min). Run again
# with every run in runs.jsonl it only re-analyses (seconds); power.json keeps the runs' 765.8 s.
python experiments/power_study.py --variant batch48 batch_size=48 --seeds 20 \
    --schedules "all:0.1;all:0.2;backbone:0.1,head:0.5;backbone:0.2,head:0.5;stem:0.01,blocks1_2:0.1,blocks3:0.05,blocks4_5:0.5,blocks6_7:0.02,head_conv:0.5,head:0.01" \
    --output-dir results/benchmark_landscape_b48
# The cliff: every group at 5e-3 (multiplier 0.5) beside 2e-3 on 4 seeds (the 2e-3 rows copied
# from above). It ended at chance on the first seed, real and proxy alike, so 20 seeds of it
# were not spent.
python experiments/power_study.py --variant batch48 batch_size=48 --seeds 4 \
    --schedules "all:0.2;all:0.5" --output-dir results/benchmark_landscape_b48/cliff
