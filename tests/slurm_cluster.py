"""A real single-node Slurm cluster for the tests, from the distribution's packages.

``slurm_cluster(folder)`` starts munge (on a private socket and key), slurmctld and slurmd,
all configured inside ``folder`` on free ports, waits for the node to be idle, and yields the
environment that points Slurm's commands at it (``SLURM_CONF``). On exit it cancels every job
and stops the daemons. Where the daemons are not installed or cannot start, it skips with the
reason (Debian: ``apt-get install slurm-wlm munge``), or fails where
``PYTEST_ABLATION_REQUIRE_SLURM=1`` says the cluster must run (as in CI).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")


def _unavailable(reason: str) -> None:
    if os.environ.get("PYTEST_ABLATION_REQUIRE_SLURM") == "1":
        pytest.fail(f"{reason}, and PYTEST_ABLATION_REQUIRE_SLURM=1 requires it")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    """Most of this machine's memory, in MB: what the node offers its jobs."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.8)
    return 1024


def _config(folder: Path, host: str, user: str) -> str:
    return "\n".join(
        [
            "ClusterName=ablation-test",
            f"SlurmctldHost={host}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            "AuthType=auth/munge",
            f"AuthInfo=socket={folder / 'munge.sock'}",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'slurmd.log'}",
            # No cgroups in a container: processes are tracked by their parents.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "ReturnToService=2",
            "MpiDefault=none",
            "JobRequeue=1",
            # A stopped job's processes get SIGTERM, then SIGKILL this many seconds later.
            "KillWait=2",
            f"NodeName={host} CPUs={os.cpu_count() or 1} RealMemory={_memory_mb()} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _tail(path: Path, lines: int = 3) -> str:
    if not path.exists():
        return "(no log)"
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])


@contextlib.contextmanager
def slurm_cluster(folder: Path) -> Iterator[dict[str, str]]:
    missing = [name for name in (*DAEMONS, "sbatch", "srun", "sinfo", "scontrol") if shutil.which(name) is None]
    if missing:
        _unavailable(f"no Slurm here: {', '.join(missing)} not installed (Debian: apt-get install slurm-wlm munge)")
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (folder / sub).mkdir(exist_ok=True)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    host = socket.gethostname().split(".")[0]
    (folder / "slurm.conf").write_text(_config(folder, host, getpass.getuser()))
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    started: list[Path] = []
    try:
        munge = [
            "munged",
            f"--socket={folder / 'munge.sock'}",
            f"--key-file={key}",
            f"--log-file={folder / 'munged.log'}",
            f"--pid-file={folder / 'munged.pid'}",
            f"--seed-file={folder / 'munge.seed'}",
        ]
        if os.geteuid() == 0:
            munge.append("--force")  # munged refuses root without it
        for name, command in (
            ("munged", munge),
            ("slurmctld", ["slurmctld"]),
            ("slurmd", ["slurmd"]),
        ):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            started.append(folder / f"{name}.pid")
            if done.returncode != 0:
                _unavailable(
                    f"this machine cannot run {name}: {(done.stderr or done.stdout).strip()} "
                    f"({_tail(folder / f'{name}.log')})"
                )
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            shown = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=30)
            state = shown.stdout.strip()
            if state in ("idle", "mix", "alloc"):
                break
            time.sleep(0.5)
        else:
            _unavailable(
                f"the Slurm node did not come up (state {state!r}): slurmctld: "
                f"{_tail(folder / 'slurmctld.log')}; slurmd: {_tail(folder / 'slurmd.log')}"
            )
        yield {"SLURM_CONF": env["SLURM_CONF"]}
    finally:
        subprocess.run(["scancel", "--user", getpass.getuser()], env=env, capture_output=True, timeout=30)
        for pid_file in reversed(started):
            with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        time.sleep(0.5)


def run_slurm(env: dict[str, str], *command: str) -> str:
    """A Slurm command's output, pointed at the test cluster."""
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout
