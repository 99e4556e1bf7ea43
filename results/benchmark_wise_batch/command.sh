# Two more levers on the paired noise at base 0.01, on the pair that decides the per-layer
# question, 20 paired seeds (50000-50019), as results/benchmark_tail:
# - wise75: a WiSE-FT end, the weights 0.25 x the run's start (the probe) + 0.75 x the
#   fine-tuned ones (a fixed alpha, not picked on the proxy);
# - batch32: batch 32 instead of 16 at the same 8 x 30 iterations (twice the images, about
#   four epochs; twice the SGD time), so that the gradient steps of a pair are less noisy;
# - batch32_tail4: batch 32 and a 4-window tail at 0.1x, the two levers that lowered the
#   noise most (results/benchmark_tail: tail4), together.
# The "last" rows (the default config) are the landscape's runs, copied from
# results/benchmark_tail/runs.jsonl (CPU runs are deterministic), so only the new variants run.
python experiments/power_study.py --schedules "all:0.1;backbone:0.1,head:0.5" \
    --seeds 20 --variant last --variant wise75 wise_alphas=0.75 \
    --variant batch32 batch_size=32 \
    --variant batch32_tail4 batch_size=32 anneal_windows=4 --output-dir results/benchmark_wise_batch
