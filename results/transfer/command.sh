# Transfer (ASG's second claim): the policy meta-trained for 128 runs on the embedded task
# (Lite0, 32 px, data_seed 0: its training fonts, renders and splits) deployed, sampled as
# the pipeline deploys it, on tasks it never saw: other fonts and renders (data_seed 1: another
# draw of held-out fonts and of every render), 48 px images, another backbone (EfficientNet-Lite1,
# which has Lite0's layer groups), beside the untrained policy and
# the best uniform rate (all:0.1), 10 paired seeds per task. The policies are the learning
# curve's snapshots (results/learning_curve_deploy/).
python3 experiments/power_study.py --seeds 10 --seed-base 60000 --output-dir runs/transfer \
 --schedules 'policy@results/learning_curve_deploy/policy_ep0128;policy@results/learning_curve_deploy/policy_ep0000;all:0.1' \
 --variant seen \
 --variant other_fonts data_seed=1 \
 --variant 48px image_size=48 \
 --variant lite1 model=efficientnet_lite1
# The first three variants ran first (90 runs, 32.5 min alone); the same command with the
# lite1 variant added kept their runs (runs.jsonl) and ran its 30.
