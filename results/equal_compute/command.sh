# Equal-compute baselines against the learned policy after 64 meta-training runs (the learning
# curve's snapshot, copied to results/learning_curve_deploy/policy_ep0064): 64 search runs on
# seeds 0-1, then 100 evaluation runs on seeds 40000-40019; 69.2 min, beside other jobs on the
# 2 cores (2026-12-07).
python3 experiments/equal_compute.py --budget 64 --seeds 20 \
    --policy-checkpoint results/learning_curve_deploy/policy_ep0064 --output-dir runs/equal_compute
