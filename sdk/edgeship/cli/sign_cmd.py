"""``edgeship keygen KEYFILE`` and ``edgeship sign MODEL --key KEYFILE``: release signing.

A device trusts ``KEYFILE.pub`` through ``setup --trust``; ``deploy --sign KEYFILE``
signs at deploy time, ``sign`` signs an artifact beforehand (``deploy --signature``).
See deploy/signing.py for what is checked where, and the trust model.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from edgeship.cli.output import print_json

__all__ = ["register", "run_keygen", "run_sign"]


def register(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("keygen")
    k.add_argument("key", type=Path, metavar="KEYFILE", help="the private key to write")
    k.add_argument("--comment", default=None, help="kept in KEYFILE.pub (default: this host)")
    k.add_argument("--json", action="store_true", help="print JSON only")
    k.set_defaults(handler=run_keygen)
    s = sub.add_parser("sign")
    s.add_argument("model", type=Path, metavar="MODEL", help="the model file to sign")
    s.add_argument(
        "--key", type=Path, required=True, metavar="KEYFILE", help="the private release key"
    )
    s.add_argument("--name", help="the deployment name it is for (default: the file's stem)")
    s.add_argument("--release", type=int, help="its release number (default: the time now, in ns)")
    s.add_argument("--out", type=Path, help="the release file (default: MODEL.release)")
    s.add_argument("--json", action="store_true", help="print JSON only")
    s.set_defaults(handler=run_sign)


def run_keygen(ns: argparse.Namespace) -> int:
    from edgeship.deploy.signing import key_id, keygen, read_public

    private, public = keygen(ns.key, ns.comment if ns.comment is not None else socket.gethostname())
    found = {"private": str(private), "public": str(public), "key_id": key_id(read_public(public))}
    if ns.json:
        print_json(found)
    else:
        print(
            f"wrote {private} (keep it secret: it signs releases) and {public}\n"
            f"  key id {found['key_id']}\n"
            f"  trust it on a device:  edgeship setup DEVICE --trust {public}\n"
            f"  sign a deploy:         edgeship deploy MODEL --target DEVICE --sign {private}"
        )
    return 0


def run_sign(ns: argparse.Namespace) -> int:
    from edgeship.deploy.files import model_files
    from edgeship.deploy.layout import validate_name
    from edgeship.deploy.signing import sign_release, write_release

    name = validate_name(ns.name or ns.model.stem)
    release = sign_release(ns.key, name, model_files(ns.model), ns.release)
    out = ns.out or ns.model.with_name(ns.model.name + ".release")
    write_release(release, out)
    found = {"release_file": str(out), "name": name, **release.fields, "key_id": release.key_id}
    if ns.json:
        print_json(found)
    else:
        print(f"wrote {out}: {name} release {found['release']} ({found['sha256'][:12]})")
    return 0
