"""Joining or starting Ray, once for every script: checked before anything is scheduled.

`start_ray(address, workers, cpus_per_worker, gpus_per_worker)` joins the cluster at `address`
(after checking in seconds that it answers: `ray.init` would retry for minutes); with no
address it does what `ray.init()` does: it joins the cluster that RAY_ADDRESS names (as under
`ray job submit`) or that `ray start` left on this machine, and only when there is none starts
a local Ray sized to this machine (or to the CPUs and GPUs its caller declares, in a temp
folder of its own). Either way it refuses, in one line, a job whose workers (env runners or
trials) do not fit in the cluster's CPUs and GPUs, and prints what it joined.
"""

from __future__ import annotations

import os
import socket

from trainables.errors import ClusterError, ConfigError


def check_reachable(address: str) -> None:
    """Fail in seconds on a host:port nobody listens on."""
    hostport = address.removeprefix("ray://")
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--address {address}: cannot reach Ray ({exc})") from None


def _running_cluster() -> bool:
    """Whether `ray.init()` with no address would join a cluster rather than start one: one
    named by RAY_ADDRESS (what `ray job submit` sets for its driver), or one that `ray start`
    left on this machine (Ray records its address under its temp folder)."""
    if os.environ.get("RAY_ADDRESS"):
        return True
    from ray._private.services import find_bootstrap_address  # what ray.init() itself reads

    return find_bootstrap_address(None) is not None


def _token_hint() -> str:
    """How to open a dashboard that asks for Ray's token (Ray 2.5x turns token authentication
    on by itself): its 'Authentication Token Required' dialog takes what `ray get-auth-token`
    prints."""
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        enabled = is_token_auth_enabled()
    except ImportError:
        return ""
    return " (it asks for Ray's token: run `ray get-auth-token`)" if enabled else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def start_ray(
    address: str | None = None,
    workers: int = 1,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    dashboard: bool = False,
    dashboard_host: str = "127.0.0.1",
    flag: str = "--num-env-runners",
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    temp_dir: str | None = None,
) -> dict[str, float]:
    """Join `address` or start a local Ray; returns the cluster's {'CPU': n, 'GPU': m}.

    `workers` x (`cpus_per_worker`, `gpus_per_worker`) must fit; `flag` names the option that
    sets `workers` in the one-line error. A local Ray only: `num_cpus` and `num_gpus` declare its
    logical CPUs and GPUs instead of sizing it to this machine (a caller whose workers mostly
    wait may declare more CPUs than cores); with `temp_dir` it is a new instance of this
    process's own with its files there, never one found through RAY_ADDRESS or `ray start`."""
    import ray

    if not address and temp_dir is None and num_cpus is None and _running_cluster():
        address = "auto"  # Ray's own rule: RAY_ADDRESS (ray job submit) or `ray start` here
    if address:
        check_reachable(address)
        try:
            ctx = ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = _first_line(exc)
            # Ray enables token auth by itself only for address='auto', never for host:port.
            token = "RAY_AUTH_MODE" in os.environ
            hint = "" if token else "; a token-auth cluster needs RAY_AUTH_MODE=token"
            raise ConfigError(f"--address {address}: cannot reach Ray ({first}{hint})") from None
    else:
        # The driver (an RLlib algorithm, Tune's loop) mostly waits on its workers: give it a
        # logical CPU of its own so N one-CPU workers fit on an N-core machine, but never more
        # than one beyond the cores: more workers than that is an error, not oversubscription.
        cores = os.cpu_count() or 1
        need = workers * cpus_per_worker + 1
        if num_cpus is None:  # sized to this machine
            if need > cores + 1:  # say so before Ray starts (and logs)
                raise ConfigError(
                    f"{flag} {workers} x {cpus_per_worker:g} CPU needs {need - 1:g} CPUs; this "
                    f"machine has {cores} (join a cluster with --address, or use fewer)"
                )
            num_cpus = max(cores, min(int(need + 0.999), cores + 1))
        try:
            ctx = ray.init(
                address="local" if temp_dir else None,
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                include_dashboard=dashboard,
                dashboard_host=dashboard_host,
                log_to_driver=False,
                _temp_dir=temp_dir,
            )
        except Exception as exc:  # noqa: BLE001  Ray raises bare Exceptions here
            # e.g. "The current node timed out during startup": Ray gives its raylet a fixed
            # 30 s to register, which a busy machine can run out of. Nothing of this run has
            # been written yet, so trying again is safe.
            raise ClusterError(
                f"could not start a local Ray ({_first_line(exc)}); if this machine is busy, "
                f"try again"
            ) from None
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0), total.get("GPU", 0)
    want_cpu, want_gpu = workers * cpus_per_worker, workers * gpus_per_worker
    if want_cpu > cpus or want_gpu > gpus:
        raise ConfigError(
            f"{flag} {workers} x ({cpus_per_worker:g} CPU, {gpus_per_worker:g} GPU) needs "
            f"{want_cpu:g} CPUs and {want_gpu:g} GPUs; the cluster has {cpus:g} CPUs and "
            f"{gpus:g} GPUs"
        )
    url = getattr(ctx, "dashboard_url", None)
    where = f"; dashboard: http://{url}{_token_hint()}" if url else ""
    print(f"[asg] Ray up: {cpus:g} CPUs, {gpus:g} GPUs{where}", flush=True)
    return {"CPU": cpus, "GPU": gpus}
