# The lever study: each variant adds one lever to the one before; the old benchmark's settings
# (base 0.003, ASG's linear levels, 10 iterations per window, no tail) are spelled out so that
# the command means the same whatever the preset's defaults become. The last two variants each
# change one thing of probe+long+anneal: the batch (32, with half the iterations: the same
# images) or the image size (48 px).
python experiments/power_study.py --schedules pair --seeds 10 --rate-levels linear \
 --base-lr 0.003 --iters-per-window 10 --anneal-windows 0 --head-warmup-iters 10 \
 --output-dir results/benchmark_levers \
 --variant today head_init=sgd \
 --variant probe head_init=probe \
 --variant probe+long head_init=probe iters_per_window=30 \
 --variant probe+long+anneal head_init=probe iters_per_window=30 anneal_windows=2 \
 --variant probe+long+anneal+batch32 head_init=probe iters_per_window=15 batch_size=32 anneal_windows=2 \
 --variant probe+long+anneal+48px head_init=probe iters_per_window=30 anneal_windows=2 image_size=48
