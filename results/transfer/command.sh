# Transfer (ASG's second claim): the policy meta-trained for 128 runs on the embedded task
# (Lite0, 32 px, data_seed 0: its training fonts, renders and splits) deployed, sampled as
# the pipeline deploys it, on tasks it never saw: other fonts and renders (data_seed 1: another
# draw of held-out fonts and of every render), 48 px images, beside the untrained policy and
# the best uniform rate (all:0.1), 10 paired seeds per task. The policies are the learning
# curve's snapshots (results/learning_curve_deploy/).
python3 experiments/power_study.py --seeds 10 --seed-base 60000 --output-dir runs/transfer \
 --schedules 'policy@results/learning_curve_deploy/policy_ep0128;policy@results/learning_curve_deploy/policy_ep0000;all:0.1' \
 --variant seen \
 --variant other_fonts data_seed=1 \
 --variant 48px image_size=48
