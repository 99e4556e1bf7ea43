# The batch size as a noise lever: does the paired noise fall as 1/sqrt(batch)? The pair that
# decides the per-layer question, 20 paired seeds (50000-50019), 8 x 30 iterations at every
# batch size (so a larger batch sees more images and costs more SGD). The "last" (batch 16,
# the default) and "batch32" rows are copied from results/benchmark_wise_batch/runs.jsonl
# (CPU runs are deterministic), so only batch 48 runs.
python experiments/power_study.py --schedules "all:0.1;backbone:0.1,head:0.5" \
    --seeds 20 --variant last --variant batch32 batch_size=32 \
    --variant batch48 batch_size=48 --output-dir results/benchmark_batch
