"""The command-line pipeline end to end on the tiny preset, and its one-line errors."""

import contextlib
import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import ray  # noqa: F401  before any capsys test: Ray's log handler binds to the stderr it sees
from conftest import (
    kill_processes_mentioning,
    main_in_process,
    many_ray_processes,
    private_ray_env,
    signal_env_runners,
    tiny_pipeline,
)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "experiments" / "asg_visda.py"


def run(
    *args: str | Path, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def run_in_process(capsys, *args: str | Path) -> tuple[int, list[str], str]:
    """asg_visda's main in this process, as its command line would run it: (exit status,
    stderr lines, stdout). For input errors, which all end before Ray starts; the contract that
    the real process prints one line and no traceback is checked once by subprocess below."""
    from experiments import asg_visda

    code, out, err = main_in_process(capsys, asg_visda.main, *args)
    return code, err.strip().splitlines(), out


SECRET = "canary-7f3a9c51e2"  # a credential in the environment must not reach any log


def shared_run_test(test):
    """Marks a test of the shared run: slow, and with room for the run's four processes
    (3-5 minutes on 2 busy cores), which the first such test pays for."""
    return pytest.mark.slow(pytest.mark.timeout(1500)(test))


@dataclass
class Stage:
    """One process of the shared run: what it printed and how it ended."""

    stdout: str
    stderr: str
    returncode: int
    seconds: float = 0.0  # wall time from start to exit
    killed_at: float = 0.0  # time.time() of the SIGKILL; 0 when it was not killed
    recorded: int = -1  # newest meta-training checkpoint its saved state holds afterwards
    held: list[int] = field(default_factory=list)  # env runners held before the stop


@dataclass
class SharedRun:
    """The tiny pipeline taken to its end through every way a user's run gets cut short:
    Ctrl-C during meta-training, then `--resume` killed (SIGKILL, driver and all) during
    meta-training, then `--resume` killed once an evaluation trial has finished, then
    `--resume` to the end. Tests inspect its stages and its output folder."""

    out: Path
    interrupted: Stage
    killed_in_meta_training: Stage
    killed_in_evaluation: Stage
    finished: Stage
    interrupted_results: dict  # results.json and results.md right after the Ctrl-C
    interrupted_md: str
    finished_trials_at_kill: dict[str, str]

    @property
    def stages(self) -> list[Stage]:
        return [
            self.interrupted,
            self.killed_in_meta_training,
            self.killed_in_evaluation,
            self.finished,
        ]


def recorded_checkpoint(experiment: Path) -> int:
    """The index of the newest checkpoint that the experiment's saved state records (what a
    resume restores), or -1 while there is none or the state is being written. A checkpoint
    folder on disk is not enough: Tune registers it, then snapshots its state in the
    background, and a kill before that snapshot resumes from the one before (Tune's contract)."""
    from ray.tune import ExperimentAnalysis

    try:
        trial = ExperimentAnalysis(str(experiment)).trials[0]
    except Exception:  # noqa: BLE001  no state yet, or caught mid-write: ask again
        return -1
    saved = trial.run_metadata.checkpoint_manager.best_checkpoint_results
    return max((int(Path(r.checkpoint.path).name.split("_")[1]) for r in saved), default=-1)


def finished_trials(out: Path) -> dict[str, str]:
    """Evaluation trial folder -> its last checkpoint and a digest of its saved state, for
    trials whose last checkpoint is a finished run (the checkpoint reaches storage with the
    result; result.json may lag). A run computed again would save a new state there (its
    measured window times alone differ). A kill during a trial's first checkpoint copy can
    leave an empty checkpoint folder that Tune never recorded (the resumed trial starts over in
    a new folder): not a finished run."""
    import hashlib

    from controllers.tune_trainable import STATE_FILE, load_run_state

    trials = {}
    for trial in (out / "tune" / "evaluate").iterdir():  # trial folders, named by method and seed
        checkpoints = sorted(c for c in trial.glob("checkpoint_*") if (c / STATE_FILE).exists())
        if checkpoints and load_run_state(checkpoints[-1])["env"] is None:
            digest = hashlib.sha256((checkpoints[-1] / STATE_FILE).read_bytes()).hexdigest()
            trials[trial.name] = f"{checkpoints[-1].name} {digest[:16]}"
    return trials


def run_stage(
    cmd: list[str],
    env: dict[str, str],
    logs: Path,
    ready=None,
    stop=None,
    timeout: float = 600,
    after_stop=None,
) -> Stage:
    """Run `cmd`; once `ready(stdout so far)` holds, send `stop` (SIGINT to the driver, or
    SIGKILL to the driver and everything it started), call `after_stop()` if given, and wait
    for the end. The driver's stdout is read from its pipe as it prints, so `ready` is asked
    the moment a line arrives (no polling interval for the driver to run ahead in); while
    nothing arrives it is asked again each second, for conditions on files (a checkpoint
    recorded while the stage's env runners are held)."""
    logs.mkdir(parents=True, exist_ok=True)
    out_log, err_log = logs / "stdout", logs / "stderr"
    with err_log.open("w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env, start_new_session=True
        )
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)  # Ray's orphans may keep the pipe open after a kill
    printed = bytearray()

    def drain() -> str:
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(fd, 65536):
                printed.extend(chunk)
        return printed.decode(errors="replace")

    start = time.time()
    deadline, killed_at = start + timeout, 0.0
    with selectors.DefaultSelector() as waiting:
        waiting.register(fd, selectors.EVENT_READ)
        # Read on after the stop too, so that a driver printing its last words never blocks
        # on a full pipe.
        while proc.poll() is None and time.time() < deadline:
            waiting.select(timeout=1.0)  # returns as soon as the driver prints
            text = drain()
            if ready is not None and ready(text):
                ready = None  # once
                if stop == signal.SIGKILL:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed_at = time.time()
                else:
                    proc.send_signal(stop)
                if after_stop is not None:
                    after_stop()
    if proc.poll() is None:  # past the deadline
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if killed_at:
        kill_processes_mentioning(env["RAY_TMPDIR"])  # its orphans, and nobody else's
    stdout = drain()
    proc.stdout.close()
    out_log.write_text(stdout)
    seconds = time.time() - start
    return Stage(stdout, err_log.read_text(), proc.returncode, seconds, killed_at)


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("asg_tiny")
    # One env runner, so one evaluation trial at a time: each runner and each concurrent trial
    # is a process that imports torch and RLlib, and this run restarts four times (the
    # two-node cluster test runs 8 runners).
    cmd = tiny_pipeline(
        "--meta-episodes", "8", "--seeds", "2", "--baselines", "hand_tuned,pbt",
        "--num-env-runners", "1", "--output-dir", out,
    )  # fmt: skip
    meta = out / "tune" / "meta_train"
    with many_ray_processes(tmp_path_factory), private_ray_env() as ray_env:
        env = {**ray_env, "ASG_TEST_API_TOKEN": SECRET}
        logs = tmp_path_factory.mktemp("logs")

        def checkpoint_after(recorded: int, held: list[int]):
            def ready(stdout: str) -> bool:
                # A meta-training iteration of this process: hold its env runners (SIGSTOP),
                # so that meta-training cannot move on, however fast the machine, then signal
                # once that iteration is in the saved state. With the runners held no newer
                # checkpoint can come, and every later write of the state to storage is atomic
                # (controllers/atomic_storage.py), so no wait is needed after that.
                if "meta-train iter" not in stdout:
                    return False
                if not held:
                    held.append(signal_env_runners(env["RAY_TMPDIR"], signal.SIGSTOP))
                return recorded_checkpoint(meta) > recorded

            return ready

        held_1: list[int] = []
        interrupted = run_stage(
            cmd, env, logs / "1", checkpoint_after(-1, held_1), signal.SIGINT,
            after_stop=lambda: signal_env_runners(env["RAY_TMPDIR"], signal.SIGCONT),
        )  # fmt: skip
        interrupted.held = held_1

        interrupted.recorded = recorded_checkpoint(meta)
        interrupted_results = json.loads((out / "results.json").read_text())
        interrupted_md = (out / "results.md").read_text()

        # Only the first process starts Ray's dashboard (the default; checked below): the
        # others run a lighter Ray on the test machine's two cores.
        resume = [*cmd, "--resume", "--no-dashboard"]
        held_2: list[int] = []
        killed_meta = run_stage(
            resume, env, logs / "2", checkpoint_after(interrupted.recorded, held_2), signal.SIGKILL
        )
        killed_meta.held = held_2
        killed_meta.recorded = recorded_checkpoint(meta)
        killed_eval = run_stage(
            resume, env, logs / "3", lambda stdout: "(done)" in stdout, signal.SIGKILL
        )
        at_kill = finished_trials(out)
        finished = run_stage(resume, env, logs / "4")
    stages = (interrupted, killed_meta, killed_eval, finished)
    print("shared run stage seconds:", [round(s.seconds) for s in stages])  # shown with -s
    return SharedRun(
        out, interrupted, killed_meta, killed_eval, finished, interrupted_results,
        interrupted_md, at_kill,
    )  # fmt: skip


@shared_run_test
def test_ctrl_c_stops_cleanly_with_checkpoint_and_hint(shared_run):
    """SIGINT during meta-training: Tune stops the trial, its checkpoint is recorded, the
    results so far say where things stand, and the script exits 130 saying how to resume
    (instead of evaluating a half-trained policy)."""
    stage = shared_run.interrupted
    assert stage.returncode == 130, stage.stderr[-2000:]
    assert "--resume" in stage.stderr.strip().splitlines()[-1]
    assert stage.recorded >= 0
    results = shared_run.interrupted_results
    assert results["complete"] is False and "runs" not in results  # nothing half-trained scored
    assert "meta-training" in results["stopped"]
    assert "--resume" in shared_run.interrupted_md
    assert "dashboard: http://127.0.0.1:" in stage.stdout  # the default; later stages opt out
    assert "dashboard" not in shared_run.finished.stdout


def meta_results(out: Path) -> list[dict]:
    lines = next((out / "tune" / "meta_train").glob("*/result.json")).read_text().splitlines()
    return [json.loads(line) for line in lines]


@shared_run_test
def test_resume_after_ctrl_c_continues_meta_training(shared_run):
    results = meta_results(shared_run.out)
    killed_at = shared_run.killed_in_meta_training.killed_at
    assert killed_at, shared_run.killed_in_meta_training.stdout[-2000:]
    resumed = [r for r in results if r["iterations_since_restore"] < r["training_iteration"]]
    assert resumed and resumed[0]["timestamp"] < killed_at, [
        (r["training_iteration"], r["iterations_since_restore"]) for r in results
    ]
    assert resumed[0]["training_iteration"] >= shared_run.interrupted.recorded + 2


@shared_run_test
def test_killed_driver_resumes_without_losing_work(shared_run):
    """SIGKILL of the driver and everything it started, during meta-training: --resume
    continues from a checkpoint no older than the newest one its saved state recorded
    (checkpoint_00000k holds iteration k + 1), with the episode count carried over."""
    stage = shared_run.killed_in_meta_training
    resumed = shared_run.killed_in_evaluation  # the --resume after the kill
    assert stage.held == [1], "the stage's env runner was not held (SIGSTOP) before the kill"
    assert stage.killed_at and "2/3" not in stage.stdout, stage.stdout[-2000:]
    assert "resuming meta_train" in resumed.stdout
    results = meta_results(shared_run.out)
    after = [r for r in results if r["timestamp"] > stage.killed_at]
    iters = [(r["training_iteration"], r["iterations_since_restore"]) for r in results]
    errors = [e.read_text()[-2000:] for e in (shared_run.out / "tune").rglob("error.txt")]
    assert after and after[0]["training_iteration"] > after[0]["iterations_since_restore"], (
        f"restarted from scratch: {iters} {errors}\n{resumed.stdout[-3000:]}"
    )
    assert after[0]["training_iteration"] >= stage.recorded + 2, (iters, stage.recorded)
    runners = after[0]["env_runners"]
    assert runners["num_episodes_lifetime"] > runners["num_episodes"]
    assert max(r["env_runners"]["num_episodes_lifetime"] for r in results) >= 8


@shared_run_test
def test_killed_driver_during_evaluation_keeps_finished_runs(shared_run):
    """SIGKILL while evaluation trials run; --resume finishes the rest without rerunning the
    trials that had finished (their results are not touched again)."""
    assert shared_run.killed_in_evaluation.killed_at
    before = shared_run.finished_trials_at_kill
    assert before, "no finished trial reached storage before the kill"
    assert "resuming evaluate" in shared_run.finished.stdout
    after = finished_trials(shared_run.out)
    assert {name: after.get(name) for name in before} == before  # not trained again


@shared_run_test
def test_no_secret_from_the_environment_is_written(shared_run):
    assert all(SECRET not in s.stdout + s.stderr for s in shared_run.stages)
    out = shared_run.out
    leaked = [p for p in out.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaked


@shared_run_test
def test_pipeline_writes_results(shared_run):
    out, stage = shared_run.out, shared_run.finished
    assert stage.returncode == 0, stage.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["complete"]
    methods = {r["method"] for r in results["table"]}
    assert methods == {"learned (PPO)", "hand_tuned", "pbt"}
    assert len(results["runs"]) == 6  # 3 methods x 2 seeds, none lost to the kills
    for run_ in results["runs"]:
        assert 0.0 <= run_["test_acc"] <= 1.0
        assert len(run_["multipliers"]) >= 1
    assert results["finetune_config"]["windows"] == 3  # the tiny preset, recorded exactly
    assert "| learned (PPO) |" in (out / "results.md").read_text()
    # How far the deployed policy is from sampling uniformly: 2 seeds x 3 windows of 11 levels.
    assert 0.0 <= results["sampled_level_entropy"] <= math.log(11)
    assert "sampled levels: entropy" in (out / "results.md").read_text()
    assert (out / "policy_schedule.png").stat().st_size > 0
    assert results["policy_checkpoint"] == str(out / "policy")
    assert sorted(p.name for p in (out / "policy").iterdir()) == ["module_state.pt", "policy.json"]
    assert list((out / "tune").rglob("events.out.tfevents*")), "no TensorBoard logs"
    assert "meta-train iter" in shared_run.interrupted.stdout  # progress is shown


@shared_run_test
def test_no_gymnasium_warning_about_rllibs_own_debug_env(shared_run):
    """RLlib's registry builds DreamerV3's debug CartPole, and gymnasium warned that *its*
    observation was outside *its* space: a warning that reads as if our env were broken."""
    for stage in shared_run.stages:
        assert "observation space" not in stage.stderr, stage.stderr[-2000:]
        assert "precision lowered" not in stage.stderr, stage.stderr[-2000:]


@shared_run_test
def test_every_method_runs_on_the_same_seeds_and_is_compared_pairwise(shared_run):
    results = json.loads((shared_run.out / "results.json").read_text())
    seeds = {m: sorted(r["seed"] for r in results["runs"] if r["method"] == m) for m in
             {r["method"] for r in results["runs"]}}  # fmt: skip
    assert len(set(map(tuple, seeds.values()))) == 1, seeds  # PBT members included
    assert len(seeds["pbt"]) == len(set(seeds["pbt"])) == 2  # distinct fixed seeds
    kinds = {r["method"]: r["kind"] for r in results["table"]}
    assert kinds == {"learned (PPO)": "learned", "hand_tuned": "baseline", "pbt": "baseline"}
    learned = next(r for r in results["table"] if r["kind"] == "learned")
    assert learned["pairs"] == 2 and learned["vs_reference_ci95"] >= 0


@shared_run_test
def test_meta_training_never_computes_real_accuracy(shared_run):
    meta = "".join(s.stdout.split("2/3")[0] for s in shared_run.stages)
    assert "meta-train iter" in meta
    assert "real" not in meta.lower() and "test acc" not in meta.lower()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--algo", "PPOX"], "--algo"),
        (["--algo", "BC"], "offline"),
        (["--preset", "huge"], "--preset"),
        (["--baselines", "oracle"], "--baselines"),
        (["--policy-checkpoint", "/nonexistent/ckpt"], "--policy-checkpoint"),
        (["--preset", "visda", "--data-root", "/nonexistent/visda"], "/nonexistent/visda"),
        (["--proxy", "oracle"], "--proxy"),
        (["--model", "vgg16"], "--model"),
        (["--seeds", "many"], "--seeds"),
        (["--gpus-per-env-runner", "half"], "--gpus-per-env-runner"),
        (["--preset", "tiny", "--num-env-runners", "64"], "--num-env-runners 64"),
        (["--bn-mode", "eval"], "--bn-mode"),
        (["--schedule", "linear"], "--schedule"),
        (["--reward-metric", "f1"], "--reward-metric"),
        (["--verify-images", "-2"], "--verify-images"),
        (["--algo-config", "learning_rate=1e-3"], "--algo-config learning_rate"),
        (["--algo-config", "lr=fast"], "--algo-config lr=fast"),
    ],
)
def test_bad_flags_fail_fast_with_one_line(args, needle, tmp_path, capsys):
    code, err, _ = run_in_process(capsys, *args, "--output-dir", tmp_path / "out")
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists()  # nothing written half-way


@pytest.mark.parametrize(
    "args,needle", [(["--algo", "PPOX"], "--algo"), (["--seeds", "x"], "--seeds")]
)
def test_bad_flag_in_a_real_process_is_one_line_without_traceback(args, needle, tmp_path):
    """The contract as a shell sees it, for a flag the parser refuses and one the config checks
    refuse: exit status 2, one line on stderr, no traceback, nothing written."""
    proc = run(*args, "--output-dir", str(tmp_path / "out"), timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and needle in err[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_policy_for_another_model_or_unexported_is_refused(tmp_path, untrained_policy, capsys):
    """A saved policy whose layer groups are not this model's, and a raw RLlib checkpoint
    (a pickle), both fail in one line before Ray starts."""
    policy = untrained_policy("resnet101")  # the tiny preset runs efficientnet_lite0
    rllib = tmp_path / "rllib" / "learner_group" / "learner" / "rl_module" / "default_policy"
    rllib.mkdir(parents=True)
    (rllib / "class_and_ctor_args.pkl").write_bytes(b"never unpickled")
    for checkpoint, needle in [(policy, "layer groups (conv1"), (tmp_path / "rllib", "pickle")]:
        out = tmp_path / "out"
        code, err, _ = run_in_process(
            capsys, "--preset", "tiny", "--policy-checkpoint", checkpoint, "--output-dir", out
        )
        assert code == 2 and len(err) == 1, err
        assert needle in err[0] and str(checkpoint) in err[0], err
        assert not out.exists()


def test_init_policy_that_meta_training_cannot_take_is_refused(tmp_path, untrained_policy, capsys):
    """--init-policy: another model's policy, another algorithm's or recurrence's: one line
    naming the flag, before Ray."""
    ppo = untrained_policy("efficientnet_lite0")  # the tiny preset's model, a PPO policy
    cases = [
        ([untrained_policy("resnet101")], "layer groups"),
        ([tmp_path / "gone"], f"--init-policy {tmp_path / 'gone'}: no such file or folder"),
        ([ppo, "--algo", "APPO"], "PPO policy; this meta-training trains a APPO"),
        ([ppo, "--use-lstm"], "trains a recurrent PPO"),
    ]
    for (policy, *more), needle in cases:
        out = tmp_path / "out"
        code, err, _ = run_in_process(
            capsys, "--preset", "tiny", "--init-policy", policy, *more, "--output-dir", out
        )
        assert code == 2 and len(err) == 1 and needle in err[0], (more, err)
        assert err[0].startswith(f"error: --init-policy {policy}"), err
        assert not out.exists()


def test_embedded_preset_starts_from_the_shipped_policy_where_it_fits(monkeypatch, tmp_path):
    """The embedded preset's meta-training starts from the committed 128-run PPO policy; where
    that policy cannot be the start (another algorithm, other layer groups, the folder gone)
    the run starts fresh and says why; --init-policy None asks for a fresh start."""
    from experiments.asg_visda import parse
    from experiments.lib import pipeline_config
    from experiments.lib.pipeline_config import SHIPPED_POLICY, initial_policy

    def start(*argv):
        _, cfg, pipe = parse(list(argv))
        return initial_policy(pipe, cfg)

    assert (SHIPPED_POLICY / "policy.json").is_file()
    assert start()[0] == str(SHIPPED_POLICY)
    assert start("--model", "efficientnet_lite2")[0] == str(SHIPPED_POLICY)  # same groups
    for argv, why in [
        (["--algo", "DQN"], "PPO policy; this meta-training trains a DQN one"),
        (["--use-lstm"], "trains a recurrent PPO one"),
        (["--model", "resnet50"], "layer groups"),
        (["--rate-levels", "linear"], "rate levels"),
    ]:
        policy, said = start(*argv)
        assert policy is None, argv
        assert said.startswith("a fresh policy (the shipped PPO policy does not fit this run: ")
        assert why in said, (argv, said)
    assert start("--init-policy", "None") == (None, "a fresh policy")
    assert start("--preset", "tiny") == (None, "a fresh policy")
    monkeypatch.setattr(pipeline_config, "SHIPPED_POLICY", tmp_path / "gone")
    assert start()[0] is None and "no such file or folder" in start()[1]


def test_local_ray_that_fails_to_start_is_one_line(tmp_path, capsys, monkeypatch):
    """Ray's own start-up failure (seen on an overloaded machine: the raylet not registered in
    time) is a bare Exception with a traceback; the script says it in one line."""

    def fail(**_):
        raise Exception("The current node timed out during startup.\nmore lines")  # noqa: TRY002

    monkeypatch.setattr(ray, "init", fail)
    code, err, _ = run_in_process(capsys, "--preset", "tiny", "--output-dir", tmp_path / "o")
    assert code == 2 and len(err) == 1, err
    assert "could not start a local Ray (The current node timed out during startup.)" in err[0]


def test_unreachable_address_is_one_line(tmp_path):
    proc = run(
        "--preset", "tiny", "--address", "127.0.0.1:1", "--output-dir", str(tmp_path), timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --address 127.0.0.1:1")


def test_bad_weights_file_fails_before_ray_starts(tmp_path, capsys):
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"not a checkpoint")
    code, err, out = run_in_process(
        capsys, "--preset", "tiny", "--weights", bad, "--output-dir", tmp_path / "out"
    )
    assert code == 2 and len(err) == 1 and str(bad) in err[0], err
    assert "Ray up" not in out
    assert not (tmp_path / "out").exists()


def _break_list(tree: Path, split: str, line: str) -> None:
    """Replace the first line of `split`'s image list with `line`."""
    lst = tree / split / "image_list.txt"
    lines = lst.read_text().splitlines()
    lst.write_text("\n".join([line, *lines[1:]]) + "\n")


def _drop_class(tree: Path, label: int) -> None:
    lst = tree / "train" / "image_list.txt"
    keep = [x for x in lst.read_text().splitlines() if not x.endswith(f" {label}")]
    lst.write_text("\n".join(keep) + "\n")


BAD_TREES = {
    "missing train/": (lambda t: shutil.rmtree(t / "train"), "train: folder not found"),
    "missing validation/": (lambda t: shutil.rmtree(t / "validation"), "validation"),
    "line without label": (lambda t: _break_list(t, "train", "aeroplane/0000.png"), ":1:"),
    "non-integer label": (lambda t: _break_list(t, "train", "aeroplane/0000.png x"), ":1:"),
    "label out of range": (lambda t: _break_list(t, "validation", "bus/0000.jpg 12"), ":1:"),
    "missing image": (lambda t: _break_list(t, "train", "nowhere.png 0"), "nowhere.png"),
    "corrupt image": (
        lambda t: (t / "train" / "knife" / "0001.png").write_bytes(b"not a png" * 9),
        "knife/0001.png: cannot read image",
    ),
    "empty image": (
        lambda t: (t / "validation" / "car" / "0000.jpg").write_bytes(b""),
        "car/0000.jpg is empty",
    ),
    "class missing from training": (lambda t: _drop_class(t, 5), "class 5 (knife)"),
}


@pytest.mark.parametrize("case", list(BAD_TREES))
def test_bad_visda_data_fails_in_one_line_before_ray_starts(case, tmp_path, capsys):
    from trainables.data.image_list import make_image_tree

    tree = make_image_tree(tmp_path / "visda", n_per_class=2, size=16)
    corrupt, needle = BAD_TREES[case]
    corrupt(tree)
    out = tmp_path / "out"
    flags = ["--dataset", "visda", "--data-root", tree, "--fewshot-per-class", "1"]
    code, err, stdout = run_in_process(capsys, "--preset", "tiny", *flags, "--output-dir", out)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and needle in err[0], err
    assert "Ray up" not in stdout and not out.exists()


def test_bad_visda_data_in_a_real_process_is_one_line_without_traceback(tmp_path):
    from trainables.data.image_list import make_image_tree

    tree = make_image_tree(tmp_path / "visda", n_per_class=2, size=16)
    _break_list(tree, "train", "aeroplane/0000.png x")
    proc = run(
        "--preset", "tiny", "--dataset", "visda", "--data-root", tree, "--fewshot-per-class", "1",
        "--output-dir", tmp_path / "out", timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "image_list.txt:1:" in err[0], err
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@shared_run_test
def test_pbt_members_keep_only_their_last_checkpoint(shared_run):
    """None is deleted while the population runs (a member may restore a donor's checkpoint
    after the donor has moved on); once it has finished, only the newest stays."""
    out = shared_run.out
    members = [d for d in (out / "tune" / "pbt").iterdir() if d.is_dir()]
    assert len(members) == 2
    for member in members:
        assert len(list(member.glob("checkpoint_*"))) == 1, member


def test_meta_training_runs_are_never_longer_than_the_runs_judged():
    from experiments.lib.meta_training import meta_iters
    from trainables.config import preset

    visda = preset("visda", data_root="/data", iters_per_window=25)
    assert meta_iters(100, visda) == 25  # the VisDA pipeline's 100, capped at the user's 25
    assert meta_iters(0, visda) == 25
    assert meta_iters(3, preset("embedded")) == 3
