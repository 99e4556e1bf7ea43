import contextlib
import os

import pytest

# Two cores on CI: keep torch from oversubscribing when Ray workers run beside the tests.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# pytest-xdist (`--dist loadfile --no-loadscope-reorder`, see pyproject.toml) hands each of
# its two workers one whole test file at a time, in collection order (the next one while the
# last two tests of the current one run). The suite is CPU-bound on 2 cores, so this order
# keeps both busy: the shared pipeline run (test_pipeline.py) goes on one worker while the
# other takes the files that start Ray in-process, then test_env.py and test_csg.py (about as
# long, together, as the shared run); the two-node cluster (test_cluster.py) goes next to
# whichever worker is free first, and waits for the shared run to end if it has not
# (`many_ray_processes`, below); the files that never start Ray come last, beside the
# cluster, filling the gaps its start-up leaves on the two cores. (A Ray started beside the
# cluster's eight starting env runners once missed Ray's fixed 30 s to register.)
FIRST = (
    "test_pipeline.py",
    "test_rllib_algorithms.py",
    "test_rllib_learns.py",
    "test_faults.py",
    "test_monitoring.py",
    "test_env.py",
    "test_csg.py",
    "test_cluster.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return FIRST.index(name) if name in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: collection order within a file


def tiny_pipeline(*flags) -> list[str]:
    """The command line of `experiments/asg_visda.py` on the tiny preset with `flags` added."""
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "experiments" / "asg_visda.py"
    return [sys.executable, str(script), "--preset", "tiny", *map(str, flags)]


def main_in_process(capsys, main, *args) -> tuple[int, str, str]:
    """A script's `main` in this process, as its command line would run it (`run_main`: one
    line and exit 2 for a user-fixable error): (exit status, stdout, stderr)."""
    from trainables.entry import run_main

    with pytest.raises(SystemExit) as exit_:
        run_main(main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


_local_ray_started = False  # by `local_ray`, in this pytest process


@pytest.fixture
def local_ray():
    """A local Ray for the tests that drive RLlib in the test process (3 logical CPUs: a driver
    and two env runners). Started by the first such test of a run of them and shared by the
    rest; shut down by its own handle once the next test of this worker does not use it
    (`pytest_runtest_teardown`), since an idle Ray keeps polling (about 3 CPU-s a minute)."""
    import ray

    global _local_ray_started
    if not _local_ray_started:
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
        _local_ray_started = True
    yield


def pytest_runtest_teardown(item, nextitem):
    global _local_ray_started
    if _local_ray_started and (nextitem is None or "local_ray" not in nextitem.fixturenames):
        import ray

        ray.shutdown()
        _local_ray_started = False


@pytest.fixture(scope="session")
def tiny_env():
    """One tiny-preset env shared by tests that only read from it (building costs seconds)."""
    import gymnasium as gym

    import envs  # noqa: F401  registers ASG/SynToReal-v0

    env = gym.make("ASG/SynToReal-v0", preset="tiny")
    yield env
    env.close()


@pytest.fixture
def untrained_policy(tmp_path):
    """Writes a freshly initialised PPO policy for `model`'s layer groups as a saved-policy
    folder (what --policy-checkpoint takes) and returns its path: no RLlib training needed."""
    import dataclasses

    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from controllers.saved_policy import build_module, save_policy
    from trainables.models import MODEL_GROUPS

    def make(model: str = "efficientnet_lite0"):
        groups = MODEL_GROUPS[model]
        config = dataclasses.asdict(DefaultModelConfig())
        module = build_module("PPO", groups, "multidiscrete", config)
        return save_policy(module, tmp_path / f"policy_{model}", groups, rate_levels="log")

    return make


def kill_processes_mentioning(*markers: str) -> int:
    """SIGKILL every process whose command line contains one of `markers` (a test's private
    Ray temp folder, its head's `--address=host:port`), or whose environment contains one of
    the folders among them (`ray_folder_env`: Ray's agents rewrite their command line to
    `ray::DashboardAgent`), or which holds a file in one of those folders open: the Ray
    processes this test started, and nothing else on the machine. Returns how many were
    signalled."""
    import signal

    return _signal(_processes_mentioning(markers), signal.SIGKILL)


def signal_env_runners(marker: str, sig: int) -> int:
    """Send `sig` (SIGSTOP to hold, SIGCONT to release) to the RLlib env runners of the Ray
    whose private folder is `marker`: with its runners held, meta-training cannot finish an
    iteration, so a test holds the driver mid-phase at a point it controls. Returns how many
    were signalled."""
    runners = (p for p in _processes_mentioning((marker,)) if "EnvRunner" in " ".join(_cmdline(p)))
    return _signal(runners, sig)


def _signal(processes, sig: int) -> int:
    import psutil

    hits = 0
    for proc in processes:
        try:
            proc.send_signal(sig)
            hits += 1
        except psutil.NoSuchProcess:
            pass
    return hits


def _processes_mentioning(markers: tuple[str, ...]):
    """Processes (psutil) whose command line holds a marker, or whose environment or one of
    whose open files a folder one (a node's agents, started by its raylet, were seen with
    neither the command line nor the environment, but they keep their log files in the folder
    open). What cannot be read (the process is gone, or another user's) counts as no mention."""
    import psutil

    folders = tuple(m for m in markers if m.startswith("/"))
    inside = tuple(f.rstrip("/") + "/" for f in folders)
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if any(m in " ".join(_cmdline(proc)) for m in markers):
                yield proc
            elif folders and any(m in v for v in proc.environ().values() for m in folders):
                yield proc
            elif inside and any(f.path.startswith(inside) for f in proc.open_files()):
                yield proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue


def _cmdline(proc) -> list[str]:
    import psutil

    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


@contextlib.contextmanager
def many_ray_processes(tmp_path_factory):
    """Held while a fixture runs many Ray processes at once (the shared pipeline run's stages,
    the two-node cluster): an exclusive lock shared by the xdist workers of this session, so
    that the other waits instead of running beside it. Side by side they cost more CPU in all
    (Ray's polling), and the cluster's eight env runners starting at once kept a stage's local
    Ray from registering within Ray's fixed 30 s (seen once). Without xdist: nothing to wait for."""
    import fcntl

    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    session = tmp_path_factory.getbasetemp().parent  # shared by this session's workers only
    with open(session / "many_ray_processes.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ray_folder_env(folder: str) -> dict[str, str]:
    """Environment that puts a Ray instance's files in `folder` and marks every process of it
    with that folder (Ray passes `RAY_TMPDIR` on to some of its processes but not to all; our
    own variable reaches them all), for `kill_processes_mentioning`."""
    return {"RAY_TMPDIR": folder, "ASG_TEST_RAY_FOLDER": folder}


@contextlib.contextmanager
def private_ray_env():
    """Environment for subprocesses whose Ray instance lives in its own temp folder
    (RAY_TMPDIR); afterwards every process of that instance is killed by process id. Never
    force-stopping all of Ray, which would stop every Ray on the machine, a user's included."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="asgray", dir="/tmp")  # short: Ray's socket paths
    try:
        yield {**os.environ, **ray_folder_env(folder), "RAY_ADDRESS": ""}
    finally:
        kill_processes_mentioning(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def private_ray():
    with private_ray_env() as env:
        yield env
