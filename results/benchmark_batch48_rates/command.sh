# At batch 48 (8 x 30 iterations, three times the default's images), does a higher rate win back
# the accuracy that the larger batch costs, with the noise still low? Twice the default pair's
# rates: every group at 0.2 (2e-3), and backbone 0.2 with the head at 0.5, 20 paired seeds
# (50000-50019); compare results/benchmark_batch (the same pair at 0.1 and batch 16, 32, 48).
python experiments/power_study.py --schedules "all:0.2;backbone:0.2,head:0.5" \
    --seeds 20 --variant batch48 batch_size=48 --output-dir results/benchmark_batch48_rates
