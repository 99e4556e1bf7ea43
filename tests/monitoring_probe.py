"""Run by tests/test_monitoring.py in a subprocess with a private Ray: one meta-training
iteration (RLlib, env runner in the driver) and one evaluation run (a Tune trial) of the tiny
preset, then scrape this node's Prometheus endpoint, as Prometheus would, and print the
project's series (JSON lines) on stdout. Arguments: the metrics export port, and optionally a
port for a real Prometheus (Debian's `prometheus`), started on the service-discovery file
Ray's dashboard writes, whose query API's answer for `ray_asg_windows_total` is printed too."""

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import ray

from controllers.algorithms import Resources, build_algo_config
from controllers.callbacks import ASGMetricsCallback
from controllers.spec import baseline
from controllers.tune_runs import TrialResources, run_controllers
from trainables.config import preset

port = int(sys.argv[1])
prometheus_port = int(sys.argv[2]) if len(sys.argv) > 2 else None
ray.init(
    num_cpus=2,
    include_dashboard=prometheus_port is not None,  # the dashboard writes the discovery file
    log_to_driver=False,
    _metrics_export_port=port,
    _system_config={"metrics_report_interval_ms": 500},
)
cfg = preset("tiny")
algo = build_algo_config(
    "PPO",
    {"preset": "tiny", "report_test": False},
    windows_per_episode=cfg.windows,
    resources=Resources(num_env_runners=0),
    episodes_per_iteration=1,
    callbacks=ASGMetricsCallback,
).build_algo()
algo.train()
with tempfile.TemporaryDirectory() as d:
    run_controllers([baseline("hand_tuned")], [0], cfg, Path(d), "probe", TrialResources(1, 0, 1))
# Every series the test asks for: on a loaded machine the node's agent may export a run's
# counters and its gauges in different reports, seconds apart.
deadline = time.monotonic() + 120
while time.monotonic() < deadline:  # until all of them are exported (or give up)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    lines = [line for line in text.splitlines() if line.startswith("ray_asg_")]
    wanted = [("ray_asg_windows_total", "meta_training"), ("ray_asg_windows_total", "evaluation")]
    wanted += [(n, "evaluation") for n in ("ray_asg_multiplier", "ray_asg_proxy_acc")]
    if all(any(x.startswith(n) and f'phase="{p}"' in x for x in lines) for n, p in wanted):
        break
    time.sleep(1)
algo.stop()
if prometheus_port is not None:
    import subprocess

    session = Path(ray._private.worker._global_node.get_session_dir_path())
    discovery = session / "prom_metrics_service_discovery.json"
    folder = Path(tempfile.mkdtemp())
    (folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: ray\n"
        f"    file_sd_configs: [{{files: ['{discovery}']}}]\n"
    )
    server = subprocess.Popen(
        ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
         f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    query = f"http://127.0.0.1:{prometheus_port}/api/v1/query?query=ray_asg_windows_total"
    answer: list = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not answer:
            time.sleep(1)
            try:
                reply = json.loads(urllib.request.urlopen(query, timeout=5).read())
                answer = reply["data"]["result"]
            except OSError:
                continue  # not up yet
    finally:
        server.kill()
        server.wait()
    print(json.dumps({"prometheus": answer}))
for line in lines:
    name, _, rest = line.partition("{")
    labels = dict(kv.split("=", 1) for kv in rest.rsplit("}", 1)[0].split(","))
    labels = {k: v.strip('"') for k, v in labels.items()}
    print(json.dumps({"name": name, "labels": labels, "value": float(line.rsplit(" ", 1)[1])}))
ray.shutdown()
