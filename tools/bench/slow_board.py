"""Slow boards: how many processes each command starts on the board, and what an
unchanged re-deploy costs against one ``ssh BOARD true``, on an emulated arm64 board.

On a slow board (a Pi Zero 2, a Pi 3, a board under emulation) every process the host
starts there costs: a Python start most of all. This brings up one emulated arm64 board
(``tools/testbed``, Debian under qemu-user; its root is built once per machine and
cached), sets it up as a user would (``edgeship setup BOARD``: a venv from PyPI), then:

- runs each command as the CLI does, in this process, and prints the device processes
  it started: the SSH targets' own count (exec channels and SFTP sessions, summed as
  each target closes), and the same seen from the board, in its sshd's log (sessions it
  began);
- times, as medians of ``--repeats``: ``ssh BOARD true`` (OpenSSH), an unchanged
  re-deploy as a user runs it (a fresh ``edgeship deploy`` process), the same through
  the Python API in one process (connect, deploy, close), and ``edgeship --help`` (the
  host CLI's own start, no device).

    python tools/bench/slow_board.py [--repeats 5] [--workdir DIR]

``--workdir`` keeps the testbed's files there; with a board already up there (``python
-m tools.testbed up --arch aarch64 -n 1 --workdir DIR``) it is reused, set up or not.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.cli.main import main as edgeship_main  # noqa: E402
from edgeship.core.config import ConnectOptions, Timeouts  # noqa: E402
from edgeship.targets import SSHTarget, open_target  # noqa: E402
from tools.testbed import Testbed  # noqa: E402

SESSION_LINE = "Starting session: "  # sshd (LogLevel VERBOSE) logs one per exec or subsystem


@contextlib.contextmanager
def counted_starts() -> Iterator[list[int]]:
    """Within the block, every SSHTarget adds its process_starts to the list as it closes."""
    counts: list[int] = []
    close = SSHTarget.close

    def close_counting(self: SSHTarget) -> None:
        counts.append(self.process_starts)
        close(self)

    SSHTarget.close = close_counting  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        SSHTarget.close = close  # type: ignore[method-assign]


def sessions_logged(bed: Testbed) -> int:
    log = bed.device_dir(bed.devices[0]) / "sshd.log"
    return log.read_text(errors="replace").count(SESSION_LINE)


def starts_of(bed: Testbed, argv: Sequence[str]) -> tuple[int, int, float]:
    """(starts counted by the targets, sessions the board's sshd logged, seconds) of one
    CLI command run in this process."""
    files = ["--ssh-config", str(bed.ssh_config), "--targets", str(bed.targets)]
    logged = sessions_logged(bed)
    started = time.perf_counter()
    with counted_starts() as counts, contextlib.redirect_stdout(io.StringIO()):
        status = edgeship_main([*argv, *files])
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"edgeship {' '.join(argv)} failed (exit {status})")
    time.sleep(0.2)  # sshd writes its log line as the session starts; let it land
    return sum(counts), sessions_logged(bed) - logged, seconds


def median_s(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def shell(argv: Sequence[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=600)


def bench(bed: Testbed, repeats: int) -> None:
    board = bed.devices[0].name
    zoo = REPO / ".zoo"
    files = ["--ssh-config", str(bed.ssh_config), "--targets", str(bed.targets)]
    cli = [sys.executable, "-m", "edgeship.cli.main"]
    print(f"board {board}: emulated {bed.arch} (qemu-user), {bed.devices[0].root}")
    started = time.perf_counter()
    shell([*cli, "setup", board, *files])
    print(f"edgeship setup {board}: {time.perf_counter() - started:.1f} s (venv from PyPI)\n")

    commands = [
        ("probe", ["probe", board]),
        ("deploy (new model)", ["deploy", str(zoo / "mlp.onnx"), "--target", board, "--name", "b"]),
        ("deploy (unchanged)", ["deploy", str(zoo / "mlp.onnx"), "--target", board, "--name", "b"]),
        (
            "deploy (new version)",
            ["deploy", str(zoo / "cnn.onnx"), "--target", board, "--name", "b"],
        ),
        ("rollback", ["rollback", "b", "--target", board]),
        ("ls", ["ls", board]),
        ("info", ["info", board]),
        ("profile (onnx)", ["profile", str(zoo / "mlp.onnx"), "--target", board]),
        ("profile (tflite)", ["profile", str(zoo / "mlp.tflite"), "--target", board]),
    ]
    print(f"{'command':<22} {'starts':>6} {'sshd saw':>8} {'time s':>7}")
    for label, argv in commands:
        counted, logged, seconds = starts_of(bed, argv)
        print(f"{label:<22} {counted:>6} {logged:>8} {seconds:>7.2f}")

    options = ConnectOptions(
        ssh_config=bed.ssh_config, targets_file=bed.targets, timeouts=Timeouts(command=600)
    )

    def api_redeploy() -> None:
        with open_target(board, options) as target:
            assert isinstance(target, SSHTarget)
            target.deploy(zoo / "mlp.onnx", "b2")

    api_redeploy()  # the first deploy of b2 uploads; the timed ones are unchanged
    shell([*cli, "deploy", str(zoo / "mlp.onnx"), "--target", board, "--name", "b2", *files])
    ssh_true = median_s(lambda: shell(bed.ssh_argv(bed.devices[0], "true")), repeats)
    redeploy = median_s(
        lambda: shell(
            [*cli, "deploy", str(zoo / "mlp.onnx"), "--target", board, "--name", "b2", *files]
        ),
        repeats,
    )
    api = median_s(api_redeploy, repeats)
    cli_start = median_s(lambda: shell([*cli, "--help"]), repeats)
    print(f"\nmedians of {repeats}:")
    print(f"  ssh {board} true                       {ssh_true:6.2f} s")
    print(
        f"  edgeship deploy, unchanged (CLI)        {redeploy:6.2f} s  {redeploy / ssh_true:.2f}x"
    )
    print(f"  the same through the API, one process   {api:6.2f} s  {api / ssh_true:.2f}x")
    print(f"  edgeship --help (host CLI start alone)  {cli_start:6.2f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="testbed files (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.workdir and (args.workdir / "testbed.json").exists():
        bench(Testbed.attach(args.workdir), args.repeats)
        return 0
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bed = stack.enter_context(Testbed(1, workdir, prefix="esslow", arch="aarch64"))
        bench(bed, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
