"""Signed releases: Ed25519 signatures on models, checked on the device before activation.

``edgeship keygen`` writes a key pair (:func:`keygen`). ``edgeship setup DEVICE --trust
KEY.pub`` installs the public key as ROOT/trust/ed25519.pub (:func:`install_trust`).
``edgeship deploy MODEL --sign KEY`` signs a *release manifest* (:func:`sign_release`):
the deployment name, the model's digest (and each file's, for a model of several), and a
release number, the signing time in ns, which only grows.

On a device with a trust key, every new version must come with a manifest signed by that
key, and the check runs **on the device** (:data:`VERIFY_SCRIPT`, with the device's
Python — ``--python``, or setup's venv — under the deploy lock, after the upload, before
the version exists): it
verifies the signature with the installed key, hashes the uploaded bytes itself and
compares them with the signed digest, checks the name, and refuses a release older than
the newest it accepted for that name (ROOT/trust/releases.json) unless
``--allow-downgrade``. The manifest and signature are kept in the version's meta.json,
and every later activation of that version (``rollback``, a rollout's undo) checks them
again on the device (:func:`readmit`): a version without a valid signature is never made
active there, whatever its meta.json claims. ``setup --trust`` runs the check once with
the device's Python before it installs the key (:func:`install_trust`), so a board that
cannot check signatures (no ``cryptography``) is refused at setup, not at its first
deploy. A device without a trust key takes unsigned and signed models alike (a signature
is then recorded in the version's meta.json, marked unverified).

Trust model, honestly: this keeps any edgeship host from activating a model that was not
signed by the release key, or was changed after signing (a swapped file in an artifact
store, a laptop's local build, a replayed older release), since the key and the check
live on the device, not on the host that deploys. It does not stand against someone who
can log in as the device's user: they can replace the trust key, the releases record or
the ``current`` link by hand, as they could replace the model. Install the key as another
user (root) and keep the deploy user from writing it, if that matters. ``rollback``, an
explicit operator action on versions already accepted, is not a downgrade (but it is
checked, as above).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.core.config import Signing
from edgeship.core.errors import DeployError, UsageError

if TYPE_CHECKING:
    from edgeship.deploy.files import ModelFiles
    from edgeship.deploy.store import DeployStore

__all__ = [
    "PUBLIC_PREFIX",
    "SCHEMA",
    "VERIFY_SCRIPT",
    "SignatureRefused",
    "SignedRelease",
    "admit",
    "install_trust",
    "key_id",
    "keygen",
    "read_public",
    "read_release",
    "readmit",
    "release_for",
    "sign_release",
    "trust_key_path",
    "write_release",
]

SCHEMA = "edgeship.release/1"
PUBLIC_PREFIX = "edgeship-ed25519"

# Runs on the device with its Python (reads {"manifest": b64, "signature": b64} on stdin).
# argv: trust key, releases record, blob (file or directory), name, allow downgrade (0/1).
# Prints "ok RELEASE" or "refused WHY" (exit 3). With an empty blob (setup's probe) it
# only loads the key and checks a signature, which must come out invalid: "ok probe".
VERIFY_SCRIPT = r"""
import base64, hashlib, json, os, sys
key_path, record, blob, name, allow = sys.argv[1:6]
def refuse(why):
    print("refused", why, flush=True)
    sys.exit(3)
try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    refuse("this device trusts signed releases only, but its Python (%s) has no "
           "'cryptography' module to check them: install python3-cryptography, or pip "
           "install cryptography into it" % sys.executable)
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
try:
    raw = base64.b64decode(open(key_path).read().split()[1])
    key = Ed25519PublicKey.from_public_bytes(raw)
except Exception as exc:
    refuse("cannot read the trusted key %s: %s" % (key_path, exc))
if not blob:
    try:
        key.verify(bytes(64), b"edgeship probe")
    except InvalidSignature:
        print("ok probe", flush=True)
        sys.exit(0)
    refuse("a signature that cannot be valid checked out as valid")
try:
    given = json.loads(sys.stdin.read())
    manifest = base64.b64decode(given["manifest"])
    key.verify(base64.b64decode(given["signature"]), manifest)
except InvalidSignature:
    refuse("its signature is not by the key this device trusts (or the manifest was changed)")
except Exception:
    refuse("its signature is unreadable")
m = json.loads(manifest)
if m.get("schema") != "edgeship.release/1" or m.get("name") != name:
    refuse("it was signed as %r, not as %r" % (m.get("name"), name))
files = m.get("files")
if os.path.isdir(blob):
    if not isinstance(files, dict):
        refuse("the manifest lists no files for a model of several")
    for rel, digest in files.items():
        path = os.path.normpath(os.path.join(blob, rel))
        if not path.startswith(blob + os.sep) or sha256(path) != digest:
            refuse("its file %s on the device is not the one signed" % rel)
    lines = "".join("%s  %s\n" % (files[n], n) for n in sorted(files))
    digest = hashlib.sha256(lines.encode()).hexdigest()
else:
    digest = sha256(blob)
if digest != m.get("sha256"):
    refuse("the model on the device is not the one signed (sha256 %s, signed %s)"
           % (digest[:12], str(m.get("sha256"))[:12]))
try:
    seen = json.load(open(record))
except (OSError, ValueError):
    seen = {}
last, release = int(seen.get(name, 0)), int(m.get("release", 0))
if release < last and allow != "1":
    refuse("it is a downgrade: release %d is older than %d, the newest accepted for %s "
           "(--allow-downgrade to deploy it anyway)" % (release, last, name))
seen[name] = max(last, release)
with open(record + ".part", "w") as f:
    json.dump(seen, f)
os.replace(record + ".part", record)
print("ok", release, flush=True)
"""


class SignatureRefused(DeployError):
    """The device refused a model: unsigned, wrongly signed, tampered, or a downgrade."""


@dataclass(frozen=True)
class SignedRelease:
    """A release manifest (canonical JSON bytes) and its Ed25519 signature."""

    manifest: bytes
    signature: bytes
    key_id: str

    @property
    def fields(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.manifest)
        return data

    def to_wire(self) -> bytes:
        return json.dumps(
            {
                "manifest": base64.b64encode(self.manifest).decode(),
                "signature": base64.b64encode(self.signature).decode(),
            }
        ).encode()


def release_for(signing: Signing, name: str, files: ModelFiles) -> SignedRelease:
    """The signed release to deploy ``files`` as ``name`` with."""
    if signing.key is not None:
        return sign_release(signing.key, name, files, signing.release)
    assert signing.signature is not None
    release = read_release(signing.signature)
    fields = release.fields
    if fields.get("sha256") != files.digest or fields.get("name") != name:
        raise UsageError(
            f"{signing.signature} signs {fields.get('name')!r} with sha256 "
            f"{str(fields.get('sha256'))[:12]}, not {name!r} with {files.digest[:12]}"
        )
    return release


def keygen(private: Path, comment: str = "") -> tuple[Path, Path]:
    """Write a new Ed25519 key pair: ``private`` (PKCS#8 PEM, mode 0600) and
    ``private`` + ``.pub`` (one line: ``edgeship-ed25519 <base64> <comment>``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = private.with_name(private.name + ".pub")
    for path in (private, public):
        if path.exists():
            raise UsageError(f"{path} exists; keygen never overwrites a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public.write_text(f"{PUBLIC_PREFIX} {base64.b64encode(raw).decode()} {comment}".rstrip() + "\n")
    return private, public


def read_public(path: Path) -> bytes:
    """The 32 raw bytes of a public key file written by :func:`keygen`."""
    try:
        fields = path.read_text().split()
        raw = base64.b64decode(fields[1], validate=True)
    except (OSError, IndexError, ValueError) as exc:
        raise UsageError(f"{path}: not an edgeship public key ({exc})") from None
    if fields[0] != PUBLIC_PREFIX or len(raw) != 32:
        raise UsageError(f"{path}: not an edgeship public key (want '{PUBLIC_PREFIX} <base64>')")
    return raw


def key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


def sign_release(
    private: Path, name: str, files: ModelFiles, release: int | None = None
) -> SignedRelease:
    """Sign ``files`` as ``release`` (default: the time now, in ns) of deployment ``name``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{private}: cannot read the signing key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{private}: not an Ed25519 key (make one with `edgeship keygen`)")
    fields: dict[str, Any] = {
        "schema": SCHEMA,
        "name": name,
        "sha256": files.digest,
        "release": time.time_ns() if release is None else release,
        "source": files.main.name,
    }
    if files.multi_file:
        fields["files"] = files.listing()
    manifest = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SignedRelease(manifest, key.sign(manifest), key_id(raw))


def write_release(release: SignedRelease, path: Path) -> None:
    """A release file (``edgeship sign``): the manifest and signature, as JSON."""
    data = json.loads(release.to_wire())
    path.write_text(json.dumps({**data, "key_id": release.key_id}, indent=2) + "\n")


def read_release(path: Path) -> SignedRelease:
    try:
        data = json.loads(path.read_text())
        manifest = base64.b64decode(data["manifest"], validate=True)
        signature = base64.b64decode(data["signature"], validate=True)
        json.loads(manifest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not an edgeship release file ({exc})") from None
    return SignedRelease(manifest, signature, str(data.get("key_id") or ""))


def trust_key_path(store: DeployStore) -> str:
    return store.layout.path("trust", "ed25519.pub")


def install_trust(store: DeployStore, public: Path) -> str:
    """Make the device trust releases signed by ``public`` (from then on it takes no
    others), once the device's Python has checked a signature with it (the key is written
    beside its place and moved there only then); the device path of the installed key.
    Raises :class:`SignatureRefused` when the device cannot check signatures."""
    raw = read_public(public)
    store.files.makedirs("trust")
    path = trust_key_path(store)
    trying = store.layout.path("trust", "ed25519.pub.new")
    store.files.write_file(trying, f"{PUBLIC_PREFIX} {base64.b64encode(raw).decode()}\n".encode())
    try:
        _verify(store, trying, "", "", "0", b"", "cannot trust signed releases")
    except BaseException:
        store.files.remove(trying)
        raise
    store.files.rename(trying, path)
    return path


def admit(
    store: DeployStore,
    name: str,
    blob: str,
    release: SignedRelease | None,
    allow_downgrade: bool = False,
) -> dict[str, Any]:
    """Check a new version of ``name`` whose bytes are ``blob`` against the device's trust
    key (call with the lock held); what its meta.json records of the signature (the
    manifest and signature with it, for :func:`readmit`). Raises
    :class:`SignatureRefused` when the device does not take it."""
    trusted = store.files.exists(trust_key_path(store))
    if release is None:
        if trusted:
            raise SignatureRefused(
                f"{store.label}: refused {name}: this device trusts signed releases only; sign "
                "it with --sign KEY (the key its trusted public key belongs to)",
                target=store.label,
            )
        return {}
    wire = json.loads(release.to_wire())
    signature = {"key_id": release.key_id, "release": release.fields["release"], **wire}
    if trusted:
        allow = "1" if allow_downgrade else "0"
        key, wire_bytes = trust_key_path(store), release.to_wire()
        _verify(store, key, blob, name, allow, wire_bytes, f"refused {name}")
    return {"signature": {**signature, "verified": trusted}}


def readmit(store: DeployStore, name: str, version: str, meta: dict[str, Any]) -> None:
    """Check, before ``version`` of ``name`` is made active again (a rollback), that the
    device would take it: on a device with a trust key, its signature (kept in ``meta``)
    is checked there as a new release's is (call with the lock held). Raises
    :class:`SignatureRefused` for a version without a valid one."""
    if not store.files.exists(trust_key_path(store)):
        return
    kept = meta.get("signature")
    wire = {k: kept.get(k) for k in ("manifest", "signature")} if isinstance(kept, dict) else {}
    why = f"refused to activate {name} {version}"
    if not wire or not all(isinstance(v, str) for v in wire.values()):
        raise SignatureRefused(
            f"{store.label}: {why}: it carries no signature, and this device trusts signed "
            "releases only",
            target=store.label,
        )
    blob = store.layout.path("blobs", str(meta.get("blob")))
    _verify(store, trust_key_path(store), blob, name, "1", json.dumps(wire).encode(), why)


def _verify(
    store: DeployStore, key: str, blob: str, name: str, allow: str, wire: bytes, why: str
) -> None:
    """Run :data:`VERIFY_SCRIPT` with the device's Python against the trust key ``key``
    (``blob`` "": setup's probe of that key); :class:`SignatureRefused` unless it says ok."""
    files = store.files
    paths = [files.real(p) for p in (key, store.layout.path("trust", "releases.json"))]
    argv = [store.python(), "-c", VERIFY_SCRIPT, *paths, blob and files.real(blob), name, allow]
    result = files.run(argv, stdin=wire, check=False)
    said = result.stdout.decode(errors="replace").strip()
    if not said.startswith("ok"):
        why_not = said.removeprefix("refused").strip() or _last(result.stderr, result.status)
        raise SignatureRefused(f"{store.label}: {why}: {why_not}", target=store.label)


def _last(stderr: str, status: int) -> str:
    lines = stderr.strip().splitlines()
    return lines[-1].strip() if lines else f"the check exited with status {status}, saying nothing"
