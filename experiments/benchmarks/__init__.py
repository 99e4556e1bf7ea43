"""What the environment costs, one measurement a module, for `experiments/benchmark_env.py`.

`timing` (interleaved A/B pairs, the machine's description), `loops` (the plain and best
training loops the env is compared with), `ray_session` (a Ray of the benchmark's own), the
parts `overhead`, `proxy`, `scaling`, `device` (with `gpu_runners`) and `runcost`, and `tables`
(the Markdown each part prints).
"""
