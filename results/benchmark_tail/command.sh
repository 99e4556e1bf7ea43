# Does a longer or smoother low-rate end lower the paired noise at base 0.01? The pair that
# decides the per-layer question, 20 paired seeds (the landscape's, 50000-50019).
# The "last" rows are the landscape's runs of these schedules (results/benchmark_landscape, the
# default config: 2 tail windows at 0.1x; CPU runs are deterministic), copied into runs.jsonl so
# only the new variants run: a 4-window tail, and a half-cosine decay to zero with no tail.
# (The second command finds the first one's runs in runs.jsonl and runs only tail6.)
python experiments/power_study.py --schedules "all:0.1;backbone:0.1,head:0.5" \
    --seeds 20 --variant last --variant tail4 anneal_windows=4 \
    --variant cosine schedule=cosine anneal_windows=0 \
    --output-dir results/benchmark_tail
# Then a 6-window tail (2 windows at the chosen rates, 6 at 0.1x): how far the tail can take
# the noise down, and at what cost.
python experiments/power_study.py --schedules "all:0.1;backbone:0.1,head:0.5" \
    --seeds 20 --variant last --variant tail4 anneal_windows=4 \
    --variant cosine schedule=cosine anneal_windows=0 --variant tail6 anneal_windows=6 \
    --output-dir results/benchmark_tail
