"""A Ray cluster on this machine for tests and benchmarks: nodes of one CPU each in a network
namespace of their own (everything stays on its 127.0.0.1) and in a mount namespace where
`driver-only/` is an empty folder, so what lies there exists for the driver alone, as on a
workstation whose disks the cluster does not mount. Drivers run in the same network namespace.
Needs root, `ip` and `unshare`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import default_sigint

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
PORT = 6379


def can_start() -> bool:
    return os.geteuid() == 0 and bool(shutil.which("ip")) and bool(shutil.which("unshare"))


@dataclass
class Cluster:
    namespace: str
    base: Path
    hidden: Path
    env: dict[str, str]
    nodes: dict[str, subprocess.Popen[bytes]]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{PORT}"

    def inside(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *command]

    def start_node(self, name: str, *options: str) -> None:
        script = f"mount -t tmpfs none {self.hidden} && exec {RAY} start --block " + " ".join(
            options
        )
        command = self.inside("unshare", "-m", "--propagation", "private", "sh", "-c", script)
        self.nodes[name] = subprocess.Popen(
            command,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill_node(self, name: str) -> None:
        os.killpg(self.nodes.pop(name).pid, signal.SIGKILL)

    def wait_for_nodes(self, count: int, timeout: float = 300.0) -> None:
        alive = (
            f"import ray; ray.init(address='{self.address}', log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run(
                self.inside(sys.executable, "-c", alive),
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1.0)
        raise TimeoutError(f"the Ray cluster did not reach {count} nodes")

    def studio(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.inside(sys.executable, "-m", "studio", *args, "--json"),
            env=self.env,
            preexec_fn=default_sigint,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def batch(self, *args: str) -> tuple[int, list[dict[str, object]], str]:
        proc = self.studio("batch", *args)
        out, err = proc.communicate(timeout=600)
        return proc.returncode, [json.loads(line) for line in out.splitlines()], err


@contextlib.contextmanager
def local_cluster(base: Path, nodes: int = 2) -> Iterator[Cluster]:
    """A head node and `nodes - 1` worker nodes, stopped and removed on exit."""
    hidden = base / "driver-only"
    hidden.mkdir(parents=True, exist_ok=True)
    namespace = f"studio-ray-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",  # a private loopback network: no token to hand around
        "RAY_health_check_initial_delay_ms": "0",
        "RAY_health_check_period_ms": "1000",
        "RAY_health_check_failure_threshold": "5",
    }
    made = Cluster(namespace, base, hidden, env, {})
    try:
        made.start_node(
            "head", "--head", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false"
        )
        made.wait_for_nodes(1)
        for number in range(1, nodes):
            made.start_node(f"worker{number}", f"--address={made.address}", "--num-cpus=1")
            made.wait_for_nodes(number + 1)
        yield made
    finally:
        for name in list(made.nodes):
            made.kill_node(name)
        subprocess.run(made.inside(str(RAY), "stop", "--force"), env=env, capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
