"""Deploy integrity under attack and accident, over real SSH: tampered blobs and runtimes,
interrupted versions, a hostile ROOT/tmp, orphaned locks, and profiles racing ``rm``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import zipapp
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.config import ConnectOptions, Timeouts
from edgeship.errors import DeployError, ModelError, TargetError
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
    """No load in between: the re-deploy itself sees the blob's size/mtime changed."""
    dev = clean_testbed.devices[0]
    model = _variant(zoo, tmp_path, "tamper2")
    with _target(clean_testbed, connect) as target:
        done = target.deploy(model, "tamper2")
        blob = dev.deploy_path / "blobs" / f"{done.sha256}.onnx"
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
    zipapp.create_archive(evil, tmp_path / "evil.pyz")
    clean_testbed.run_as(
        dev, ["cp", "--remove-destination", str(tmp_path / "evil.pyz"), pyz], check=True
    )
    with _target(clean_testbed, connect, 1) as target:
        assert target.info()["runtime"]["protocol"] == 1
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
        real_write = store.write_file

        def dies_at_meta(path: str, data: bytes) -> None:
            if path.endswith("meta.json"):
                raise DeployError("simulated: connection lost while writing meta.json")
            real_write(path, data)

        store.write_file = dies_at_meta  # type: ignore[method-assign]
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
    assert text.returncode == 0 and "None" not in text.stdout and "v0003" in text.stdout
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
            target.deploy(big, "blackhole")
    holders = clean_testbed.run_as(dev, ["pgrep", "-u", dev.user, "-f", "LOCK|flock"]).stdout
    assert holders.split(), "the orphaned holder should still be there"
    started = time.monotonic()
    with _target(clean_testbed, connect, 3, lock_wait=10.0) as target:
        retried = target.deploy(big, "blackhole")
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
            assert profiler.profile(model).latency_ms.n == 100  # staged the blob
            deployer.store().remove("race")  # a concurrent rm releases it
            assert profiler.profile(model).latency_ms.n == 100  # staged moments ago: spared


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
