# The learning curve on the new benchmark, meta-trained on the deploy horizon (8 windows x 30
# iterations), PPO with the settings that became its defaults. 64 meta-training runs in 32 min
# and 30 evaluation runs in 17 min, beside other jobs on 2 cores (2026-12-07).
python3 experiments/learning_curve.py --meta-iters-per-window 0 --milestones 0 32 64 --seeds 10 \
    --algo-config 'lr=0.001,num_epochs=10,entropy_coeff=0.0,use_kl_loss=False' \
    --compare-with results/ablation_new_benchmark/ablation.json --output-dir runs/curve_deploy
# The table's "vs untrained" and entropy columns were added after the run and written from its
# learning_curve.json by experiments/lib/curve_results.write_curve_results (no rerun).
# Continued to 128 runs the same session's next day-part (2026-12-07, alone on the 2 cores):
# meta-training went on from the 64-run snapshot (its weights; the optimizer restarts) with
# fresh fine-tuning seeds, 64 runs in 19.2 min, then the new snapshot on the same 10 seeds
# (22.6 min for the command).
python3 experiments/learning_curve.py --meta-iters-per-window 0 --milestones 0 32 64 128 --seeds 10 \
    --algo-config 'lr=0.001,num_epochs=10,entropy_coeff=0.0,use_kl_loss=False' \
    --compare-with results/ablation_new_benchmark/ablation.json --output-dir runs/curve_deploy --resume
