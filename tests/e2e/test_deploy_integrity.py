"""Deploy integrity under attack and accident, over real SSH: tampered blobs and runtimes,
interrupted versions, a hostile ROOT/tmp, orphaned locks, and profiles racing ``rm``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import threading
import time
import zipapp
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.core.config import ConnectOptions, HealthPolicy, Timeouts
from edgeship.core.errors import DeployError, ModelError, TargetError
from edgeship.deploy.health import HealthCheckFailed
from edgeship.deploy.upload import TAIL
from edgeship.targets import SSHTarget, open_target
from tests.e2e.conftest import cli
from tools.testbed import Testbed
from tools.testbed.device import Device


def _target(
    testbed: Testbed, connect: ConnectOptions, index: int = 0, **changes: object
) -> SSHTarget:
    options = ConnectOptions(**{**connect.__dict__, **changes})  # type: ignore[arg-type]
    target = open_target(testbed.devices[index].name, options)
    assert isinstance(target, SSHTarget)
    return target


def _variant(zoo: Path, tmp_path: Path, tag: str) -> Path:
    """The zoo MLP with its doc string set to ``tag``: a valid model no other test sends."""
    model = onnx.load(str(zoo / "mlp.onnx"))
    model.doc_string = f"{tag} {tmp_path.name}"
    path = tmp_path / f"{tag}.onnx"
    onnx.save(model, str(path))
    return path


def _weight_offset(model: Path) -> int:
    """A byte inside the model's largest weight: flipping it keeps the file a valid model."""
    proto = onnx.load(str(model))
    raw = max((t.raw_data for t in proto.graph.initializer), key=len)
    return model.read_bytes().index(raw[:256]) + len(raw) // 2


def _flip(testbed: Testbed, dev: Device, path: Path, offset: int, keep_mtime: bool) -> None:
    """Flip one byte of ``path`` on the device in place; ``keep_mtime``: then put its size
    and mtime back as they were (``touch -r`` style), as a careful attacker would."""
    script = (
        "import os, sys\n"
        "p, at, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1'\n"
        "st = os.stat(p)\n"
        "with open(p, 'r+b') as f:\n"
        "    f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0xFF]))\n"
        "if keep: os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))\n"
    )
    argv = ["python3", "-c", script, str(path), str(offset), "1" if keep_mtime else "0"]
    testbed.run_as(dev, argv, check=True)


def _x(seed: int = 0) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(seed).standard_normal((1, 1, 8, 8)).astype(np.float32)}


# ------------------------------------------------------------------ 2. re-verification


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["flipped", "flipped-mtime-restored"])
def test_a_tampered_blob_is_refused_at_load_and_a_redeploy_repairs_it(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path, keep_mtime: bool
) -> None:
    dev = clean_testbed.devices[0]
    model = _variant(zoo, tmp_path, "tamper")
    with _target(clean_testbed, connect) as target:
        done = target.deploy(model, "tamper")
        good = target.run(model, _x())["logits"]
    blob = dev.deploy_path / "blobs" / f"{done.sha256}.onnx"
    _flip(clean_testbed, dev, blob, _weight_offset(model), keep_mtime)
    with _target(clean_testbed, connect) as target:
        with pytest.raises(ModelError, match=r"does not match its sha256.*re-deploy"):
            target.run(model, _x())
        again = target.deploy(model, "tamper")  # notices and repairs, same version
        assert again.uploaded and again.version == done.version
        digest = clean_testbed.run_as(dev, ["sha256sum", str(blob)], check=True).stdout.split()[0]
        assert digest == done.sha256
        np.testing.assert_array_equal(target.run(model, _x())["logits"], good)
        target.store().remove("tamper")


def test_a_redeploy_of_a_tampered_active_blob_is_not_unchanged(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    """No load in between: the re-deploy itself sees the blob's mtime changed (SFTP gives
    it in seconds: a change within the second of the deploy is left to the runtime's check,
    which also sees the ctime, in ns, at every load)."""
    dev = clean_testbed.devices[0]
    model = _variant(zoo, tmp_path, "tamper2")
    with _target(clean_testbed, connect) as target:
        done = target.deploy(model, "tamper2")
        blob = dev.deploy_path / "blobs" / f"{done.sha256}.onnx"
        time.sleep(1.1)
        _flip(clean_testbed, dev, blob, _weight_offset(model), keep_mtime=False)
        again = target.deploy(model, "tamper2")
        assert again.uploaded and not again.activated and again.version == done.version
        digest = clean_testbed.run_as(dev, ["sha256sum", str(blob)], check=True).stdout.split()[0]
        assert digest == done.sha256
        target.store().remove("tamper2")


def test_a_tampered_runtime_is_replaced_before_it_runs(
    clean_testbed: Testbed, connect: ConnectOptions, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[1]
    with _target(clean_testbed, connect, 1) as target:
        target.info()
        pyz = target.install_runtime()
    marker = dev.home / "PWNED"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "__main__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    zipapp.create_archive(evil, dev.home / "evil.pyz")  # where the device user can read it
    (dev.home / "evil.pyz").chmod(0o644)
    clean_testbed.run_as(dev, ["mv", "-f", str(dev.home / "evil.pyz"), pyz], check=True)
    with _target(clean_testbed, connect, 1) as target:
        assert target.info()["runtime"]["protocol"] == 2
    assert clean_testbed.run_as(dev, ["test", "-e", str(marker)]).returncode != 0


# ------------------------------------------------------------------ 3. ghost versions


def test_an_interrupted_version_leaves_no_ghost(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    """The connection dies after the version's link and before its meta.json."""
    dev = clean_testbed.devices[0]
    first, second = _variant(zoo, tmp_path, "ghost-a"), _variant(zoo, tmp_path, "ghost-b")
    with _target(clean_testbed, connect) as target:
        target.deploy(first, "ghost")
        store = target.store()
        real_write = store.files.write_file

        def dies_at_meta(path: str, data: bytes) -> None:
            if path.endswith("meta.json"):
                raise DeployError("simulated: connection lost while writing meta.json")
            real_write(path, data)

        store.files.write_file = dies_at_meta  # type: ignore[method-assign]
        with pytest.raises(DeployError, match="simulated"):
            target.deploy(second, "ghost")
    versions = dev.deploy_path / "models" / "ghost" / "versions"
    listed = clean_testbed.run_as(dev, ["ls", str(versions)], check=True).stdout.split()
    assert listed == ["v0001"]
    with _target(clean_testbed, connect) as target:
        assert target.deploy(second, "ghost").version == "v0002"
        target.store().remove("ghost")


def test_old_ghost_versions_are_skipped_with_a_note_and_collected(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[1]
    first, second = _variant(zoo, tmp_path, "old-a"), _variant(zoo, tmp_path, "old-b")
    with _target(clean_testbed, connect, 1) as target:
        one = target.deploy(first, "haunted")
        target.deploy(second, "haunted")
    # what the old, non-atomic code left after a crash: a version with a link, no meta
    versions = dev.deploy_path / "models" / "haunted" / "versions"
    ghost = versions / "v0003"
    clean_testbed.run_as(dev, ["mkdir", str(ghost)], check=True)
    link = f"../../../../blobs/{one.sha256}.onnx"
    clean_testbed.run_as(dev, ["ln", "-s", link, str(ghost / "model.onnx")], check=True)

    listed = cli(clean_testbed, "ls", dev.name, "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = [e for e in json.loads(listed.stdout) if e["name"] == "haunted"]
    assert [v["version"] for v in entry["versions"]] == ["v0001", "v0002"]
    assert any("v0003" in note for note in entry["notes"])
    text = cli(clean_testbed, "ls", dev.name)
    assert text.returncode == 0 and "None" not in text.stdout, text.stdout
    assert "v0003 is incomplete" in text.stdout
    back = cli(clean_testbed, "rollback", "haunted", "--target", dev.name, "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["version"] == "v0001"
    to_ghost = cli(clean_testbed, "rollback", "haunted", "--target", dev.name, "--to", "v0003")
    assert to_ghost.returncode == 1 and "Traceback" not in to_ghost.stderr
    assert "incomplete" in to_ghost.stderr
    with _target(clean_testbed, connect, 1) as target:  # a locked deploy collects the ghost
        target.deploy(_variant(zoo, tmp_path, "old-c"), "haunted")
        assert clean_testbed.run_as(dev, ["test", "-e", str(ghost)]).returncode != 0
        target.store().remove("haunted")


# ------------------------------------------------------------------ 5. ROOT/tmp


def test_a_symlinked_tmp_is_refused_and_what_it_points_to_is_untouched(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[2]
    root = dev.deploy_path
    precious = dev.home / "precious"
    with _target(clean_testbed, connect, 2) as target:
        target.deploy(_variant(zoo, tmp_path, "tmp-a"), "tmplink")  # ROOT exists
    script = (
        f"mkdir -p {precious} && echo keep > {precious}/data.txt && echo keep > {precious}/x.part"
        f" && rm -rf {root}/tmp && ln -s {precious} {root}/tmp"
    )
    clean_testbed.run_as(dev, ["sh", "-c", script], check=True)
    try:
        with (
            _target(clean_testbed, connect, 2) as target,
            pytest.raises(DeployError, match=r"tmp is a symbolic link"),
        ):
            target.deploy(_variant(zoo, tmp_path, "tmp-b"), "tmplink")
        left = clean_testbed.run_as(dev, ["ls", str(precious)], check=True).stdout.split()
        assert left == ["data.txt", "x.part"]
    finally:
        clean_testbed.run_as(dev, ["sh", "-c", f"rm -f {root}/tmp; rm -rf {precious}"])
    # a real ROOT/tmp: what is not ours stays
    clean_testbed.run_as(dev, ["sh", "-c", f"mkdir -p {root}/tmp && echo x > {root}/tmp/notes"])
    with _target(clean_testbed, connect, 2) as target:
        target.deploy(_variant(zoo, tmp_path, "tmp-c"), "tmplink")
        target.store().remove("tmplink")
    assert clean_testbed.run_as(dev, ["cat", f"{root}/tmp/notes"], check=True).stdout == "x\n"
    clean_testbed.run_as(dev, ["rm", "-f", f"{root}/tmp/notes"])


# ------------------------------------------------------------------ 6. orphaned locks


def test_lock_wait_is_configurable(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[3]
    with _target(clean_testbed, connect, 3) as holder, holder.store().locked():
        started = time.monotonic()
        done = cli(clean_testbed, "deploy", str(zoo / "mlp.onnx"), "--target", dev.name,
                   "--lock-wait", "1")  # fmt: skip
        took = time.monotonic() - started
    assert done.returncode == 1 and "another deploy holds it" in done.stderr, done.stderr
    assert took < 8, took


@contextlib.contextmanager
def _host_offline(dev: Device) -> Iterator[None]:
    """This host drops everything it would send to ``dev`` (a blackhole route in the host's
    namespace): its connection fails at once, while the device, which hears nothing more
    and had nothing left to send, keeps that session open (a laptop that lost its Wi-Fi)."""
    route = ["ip", "route", "replace", "blackhole", f"{dev.address}/32"]
    subprocess.run(route, check=True, timeout=10)
    try:
        yield
    finally:
        subprocess.run(["ip", "route", "del", "blackhole", f"{dev.address}/32"], timeout=10)


def test_a_retry_after_a_black_hole_takes_over_the_orphaned_lock(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    """The device never learns that the first deploy's connection died: its session, and
    the lock holder in it, live on. The retry sees the holder's connection is gone from
    this host, ends that session and takes the lock."""
    dev = clean_testbed.devices[3]
    big = tmp_path / "big.onnx"
    big.write_bytes((zoo / "mlp.onnx").read_bytes() + bytes(64 << 20))
    offline = contextlib.ExitStack()

    def go_offline_mid_upload(done: int, total: int) -> None:
        if done > (16 << 20) and not offline._exit_callbacks:
            time.sleep(0.5)  # the device acknowledges all it got: it is idle from now on
            offline.enter_context(_host_offline(dev))

    timeouts = Timeouts(connect=2, auth=2, command=60, unresponsive=2)
    with offline, _target(clean_testbed, connect, 3, timeouts=timeouts) as target:
        target.store().progress = go_offline_mid_upload
        with pytest.raises(TargetError, match="lost the connection"):
            target.deploy(big, "blackhole", health=None)
    holders = clean_testbed.run_as(dev, ["pgrep", "-u", dev.user, "-f", "LOCK|flock"]).stdout
    assert holders.split(), "the orphaned holder should still be there"
    started = time.monotonic()
    with _target(clean_testbed, connect, 3, lock_wait=10.0) as target:
        retried = target.deploy(big, "blackhole", health=None)
        assert retried.activated
        target.store().remove("blackhole")
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------ 7. rm racing profiles


def test_rm_spares_a_blob_a_profile_just_staged(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    model = _variant(zoo, tmp_path, "race")
    with _target(clean_testbed, connect) as deployer:
        deployer.deploy(model, "race")
        with _target(clean_testbed, connect) as profiler:
            assert profiler.profile(model).latency_ms.n >= 100  # staged the blob
            deployer.store().remove("race")  # a concurrent rm releases it
            assert profiler.profile(model).latency_ms.n >= 100  # staged moments ago: spared


def test_profiles_racing_deploy_and_rm_never_lose_their_model(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    model = _variant(zoo, tmp_path, "stress")
    failures: list[BaseException] = []
    stop = threading.Event()

    def churn() -> None:
        with _target(clean_testbed, connect) as target:
            while not stop.is_set():
                target.deploy(model, "stress")
                target.store().remove("stress")

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        for _ in range(15):
            with _target(clean_testbed, connect) as target:
                try:
                    target.run(model, _x())
                except TargetError as exc:
                    failures.append(exc)
                except ModelError as exc:
                    failures.append(exc)
    finally:
        stop.set()
        churner.join()
    assert failures == []


# ------------------------------------------------------------------ resume


@pytest.mark.parametrize("attempt", [1, 2, 3])
@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_a_retry_after_a_cut_sends_only_what_is_missing(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    tmp_path: Path,
    cut: float,
    attempt: int,
) -> None:
    """The connection is cut at 10, 50 or 90 % of a 32 MiB upload (three times each); the
    retry sends what the device did not keep, plus the tail it never trusts."""
    dev = clean_testbed.devices[2]
    size = 32 << 20
    big = tmp_path / "big.onnx"
    big.write_bytes(os.urandom(size))  # deploy never parses it; a blob of its own
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    cut_done = threading.Event()

    def cut_mid_upload(done: int, total: int) -> None:
        if done >= cut * total and not cut_done.is_set():
            cut_done.set()
            clean_testbed.kill_sessions(dev)

    with _target(clean_testbed, connect, 2) as target:
        target.store().progress = cut_mid_upload
        with pytest.raises(TargetError):
            target.deploy(big, "resume", health=None)
    part = dev.deploy_path / "tmp" / f"{sha}.onnx.upload.part"
    held = int(clean_testbed.run_as(dev, ["stat", "-c", "%s", str(part)], check=True).stdout)
    assert held > 0
    with _target(clean_testbed, connect, 2) as target:
        done = target.deploy(big, "resume", health=None)
        store = target.store()
        assert done.activated and done.sha256 == sha
        # exactly what never reached the device's disk, and the tail it does not trust (the
        # receiver was killed with the session here: what its pipe held is lost too;
        # tools/bench/deploy_ssh.py measures the retry against the host's cut point)
        assert store.bytes_resumed == max(0, held - TAIL)
        assert store.bytes_sent == size - held + min(held, TAIL)
        store.remove("resume")
    assert clean_testbed.run_as(dev, ["test", "-e", str(part)]).returncode != 0


# ------------------------------------------------------------------ health-checked activation


def _nan_model(path: Path) -> Path:
    """y = sqrt(x): NaN for the negative half of generated (standard normal) inputs."""
    graph = helper.make_graph(
        [helper.make_node("Sqrt", ["x"], ["y"])],
        "nan",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
    )
    return _save(graph, path)


def _endless_model(path: Path) -> Path:
    """A Loop of 10^9 matrix products: it never answers within any test's timeout."""
    weight = (np.random.default_rng(0).standard_normal((128, 128)) * 0.05).astype(np.float32)
    vector = [1, 128]
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MatMul", ["v_in", "W"], ["mm"]),
            helper.make_node("Tanh", ["mm"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, vector),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, vector),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["M", "C", "x"], ["y"], body=body)],
        "endless",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, vector)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, vector)],
        [
            numpy_helper.from_array(np.array(10**9, np.int64), "M"),
            numpy_helper.from_array(np.array(True), "C"),
            numpy_helper.from_array(weight, "W"),
        ],
    )
    return _save(graph, path)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _kept_and_recorded(target: SSHTarget, name: str, good: str, failed: str) -> None:
    """``good`` is still active, ``failed`` is listed as failed, rollback skips it."""
    described = target.store().describe(name)
    assert described.active == good
    (meta,) = [m for m in described.versions if m["version"] == failed]
    assert meta["state"] == "failed" and not meta["health"]["ok"]


def test_random_bytes_named_onnx_never_become_active(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(os.urandom(4096))
    with _target(clean_testbed, connect) as target:
        good = target.deploy(_variant(zoo, tmp_path, "healthy"), "health")
        assert good.activated
        meta = target.store().describe("health").versions[-1]
        assert meta["health"]["ok"] and meta["health"]["outputs"] == {"logits": [1, 10]}
        with pytest.raises(HealthCheckFailed, match=r"v0002 failed its health check .*ONNX"):
            target.deploy(junk, "health")
        _kept_and_recorded(target, "health", good.version, "v0002")
        # the next good deploy goes past it; a rollback never lands on it
        newer = target.deploy(_variant(zoo, tmp_path, "healthy-2"), "health")
        assert newer.version == "v0003"
        assert target.store().rollback("health").version == "v0001"
        with pytest.raises(DeployError, match="v0002 failed its health check"):
            target.store().rollback("health", "v0002")
        target.store().remove("health")


def test_a_model_with_nan_outputs_or_too_slow_fails_the_check(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    with _target(clean_testbed, connect, 1) as target:
        good = target.deploy(_variant(zoo, tmp_path, "fast"), "gated")
        with pytest.raises(HealthCheckFailed, match=r"output y is not finite"):
            target.deploy(_nan_model(tmp_path / "nan.onnx"), "gated")
        _kept_and_recorded(target, "gated", good.version, "v0002")
        slow = HealthPolicy(max_latency_ms=1e-6)
        with pytest.raises(HealthCheckFailed, match=r"median latency .* above --max-latency"):
            target.deploy(_variant(zoo, tmp_path, "slow"), "gated", health=slow)
        _kept_and_recorded(target, "gated", good.version, "v0003")
        target.store().remove("gated")


def test_a_model_that_hangs_the_runtime_never_becomes_active(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    timeouts = Timeouts(connect=5, auth=5, command=3)
    with _target(clean_testbed, connect, 1, timeouts=timeouts) as target:
        good = target.deploy(_variant(zoo, tmp_path, "before-hang"), "hang")
        with pytest.raises(HealthCheckFailed, match=r"took longer than 3 s|timed out|killed"):
            target.deploy(_endless_model(tmp_path / "endless.onnx"), "hang")
        _kept_and_recorded(target, "hang", good.version, "v0002")
        target.store().remove("hang")


def test_a_model_that_crashes_the_runtime_never_becomes_active(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    """The runtime dies by SIGSEGV while the health check runs the model (as a native
    crash in a backend would end it)."""
    dev = clean_testbed.devices[1]
    endless = _endless_model(tmp_path / "crash.onnx")
    # the runtime itself, not the shell around it that reports its exit status
    runtime_pattern = r"edgeship-runtime-[0-9a-f]+\.pyz serve$"

    def segfault_the_runtime() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = clean_testbed.run_as(dev, ["pgrep", "-u", dev.user, "-f", runtime_pattern])
            if found.stdout.split():
                time.sleep(1.5)  # loading done, running the endless loop
                clean_testbed.run_as(dev, ["pkill", "-SEGV", "-u", dev.user, "-f", runtime_pattern])
                return
            time.sleep(0.1)

    with _target(clean_testbed, connect, 1) as target:
        good = target.deploy(_variant(zoo, tmp_path, "before-crash"), "crash")
        target.restart()  # no runtime left from that check
        killer = threading.Thread(target=segfault_the_runtime)
        killer.start()
        try:
            with pytest.raises(HealthCheckFailed, match=r"SIGSEGV"):
                target.deploy(endless, "crash")
        finally:
            killer.join()
        _kept_and_recorded(target, "crash", good.version, "v0002")
        target.store().remove("crash")


def test_cli_deploy_health_check_exit_status_and_ls(
    clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[2].name
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(os.urandom(1024))
    done = cli(clean_testbed, "deploy", str(junk), "--target", dev, "--name", "clihealth")
    assert done.returncode == 1 and "failed its health check" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    listed = cli(clean_testbed, "ls", dev)
    assert "failed:" in listed.stdout and "clihealth" in listed.stdout
    skipped = cli(clean_testbed, "deploy", str(junk), "--target", dev, "--name", "clihealth",
                  "--no-health-check", "--json")  # fmt: skip
    assert skipped.returncode == 0 and json.loads(skipped.stdout)[0]["activated"]
    assert cli(clean_testbed, "rm", "clihealth", "--target", dev).returncode == 0
