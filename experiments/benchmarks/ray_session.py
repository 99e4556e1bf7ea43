"""A Ray for one measurement: on a cluster (`address`, or RAY_ADDRESS as under `ray job
submit`) the cluster itself; otherwise a Ray of the benchmark's own, started through
`controllers.cluster.start_ray` with the CPUs and GPUs the measurement declares, in a temp
folder of its own (short: Ray's socket paths), shut down and removed afterwards (a local
`ray start` is not joined: a measurement wants a Ray it knows)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

from controllers.cluster import start_ray


@contextlib.contextmanager
def private_ray(
    workers: int,
    num_cpus: int,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    num_gpus: int = 0,
    flag: str = "--runners",
    address: str | None = None,
) -> Iterator[None]:
    """A new local Ray with `num_cpus` logical CPUs and `num_gpus` GPUs (more CPUs than cores
    where the actors alive mostly wait) that must fit `workers` x (`cpus_per_worker`,
    `gpus_per_worker`); `flag` names the option that sets `workers` in the one-line error."""
    import os

    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        try:
            start_ray(address, workers, cpus_per_worker, gpus_per_worker, flag=flag)
            yield
        finally:
            ray.shutdown()  # this driver's connection only: the cluster stays up
        return
    folder = tempfile.mkdtemp(prefix="asgbench", dir="/tmp")
    try:
        start_ray(
            None,
            workers,
            cpus_per_worker,
            gpus_per_worker,
            flag=flag,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            temp_dir=folder,
        )
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
