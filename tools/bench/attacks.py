"""The attack suite: one row per attack (arrangement, attack, what must hold, the test that
tries it), run through pytest on the real testbed, with the figures docs/security.md
reports: attacks held / tried, and the slowest clean exit among them.

    python tools/bench/attacks.py                # run every row, print the figures
    python tools/bench/attacks.py --markdown     # the table for docs/security.md

A row holds when its test passes: each test asserts what must hold (one error line and a
non-zero exit, the active version unchanged, the user's files byte for byte, no process
left). The end-to-end rows need root, openssh-server and iproute2 (``.ci/run`` has them);
the emulated-board rows also need qemu-user and the board's cached root.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Attack:
    arrangement: str
    attack: str
    holds: str
    test: str
    """A pytest node id, relative to the repository."""
    fault: bool = False
    """The test breaks something mid-operation (a cut, silence, a stopped process, a full
    disk, a crash): its time is a time to a clean exit after a fault."""


E2E = "tests/e2e/"
ATTACKS = (
    # names and commands: host names and files are data, never shell
    Attack("a target name with `$(...)`, backticks and `;`", "edgeship probe/deploy NAME",
           "nothing runs; one error line", E2E + "test_attacks.py::test_a_target_with_shell_syntax_runs_nothing"),
    Attack("a targets file whose host has shell syntax", "any command on that device",
           "nothing runs; one error line", E2E + "test_attacks.py::test_a_targets_file_host_with_shell_syntax_runs_nothing"),
    Attack("the same names through the Python API", "open_target(NAME)",
           "refused before any connection", E2E + "test_attacks.py::test_the_python_api_refuses_them_too"),
    Attack("hostile model names (`../x`, `a/b`, `-rf`, newlines)", "edgeship deploy --name NAME",
           "refused in one line; the root untouched", E2E + "test_deploy.py::test_hostile_names_are_refused"),
    Attack("a model file named with shell syntax", "deploy it under a chosen name",
           "deployed safely, nothing run", E2E + "test_deploy.py::test_hostile_file_names_deploy_safely_under_a_chosen_name"),
    Attack("an ONNX model whose external-data names climb out (`../../x`)", "deploy it",
           "refused; nothing written outside the model's directory", E2E + "test_deploy.py::test_companion_names_cannot_leave_the_model_directory"),
    # host keys and peers
    Attack("a board whose host key is not in known_hosts", "connect without --accept-new-host-keys",
           "refused, naming the fingerprint", E2E + "test_faults.py::test_unknown_host_key_is_refused_naming_the_fingerprint"),
    Attack("a board whose host key changed (a man in the middle)", "connect, even with --accept-new-host-keys",
           "refused", E2E + "test_faults.py::test_changed_host_key_is_refused_even_with_accept_new"),
    Attack("known_hosts with a @revoked line for the board's key", "connect",
           "refused with a clear line", E2E + "test_attacks.py::test_a_revoked_host_key_is_refused_with_a_clear_message"),
    Attack("known_hosts with @cert-authority and @revoked lines for other hosts", "connect",
           "the file still parses; the right key is used", E2E + "test_attacks.py::test_cert_authority_and_revoked_lines_do_not_break_known_hosts"),
    Attack("hashed and wildcard known_hosts lines", "connect",
           "honoured as OpenSSH does", E2E + "test_attacks.py::test_hashed_and_wildcard_known_hosts_lines_are_honoured"),
    Attack("a wrong user, a wrong key", "connect", "an authentication error, one line",
           E2E + "test_faults.py::test_wrong_user_and_wrong_key_fail_authentication"),
    Attack("a peer that is not an SSH server", "connect", "one line, no traceback",
           E2E + "test_attacks.py::test_a_peer_that_is_not_an_ssh_server_is_one_line"),
    Attack("a peer that accepts and says nothing", "connect", "a timeout, not a hang",
           E2E + "test_attacks.py::test_a_silent_peer_is_a_timeout_not_no_existing_session", fault=True),
    Attack("a connection dropped during the handshake", "connect", "says so in one line",
           E2E + "test_attacks.py::test_a_connection_dropped_early_says_so_not_no_answer", fault=True),
    Attack("an address that black-holes packets", "connect", "times out instead of hanging",
           E2E + "test_faults.py::test_unreachable_host_times_out_instead_of_hanging", fault=True),
    Attack("known_hosts with a stale and the right line of one key type", "connect (OpenSSH connects)",
           "connects as OpenSSH does; only the stale line: CHANGED", E2E + "test_attacks.py::test_a_stale_line_beside_the_right_one_connects_as_with_openssh"),
    Attack("a host that offers a key no known_hosts line names", "slip in a new key (strict and accept-new)",
           "refused as CHANGED; nothing recorded", "tests/sdk/ssh/test_hostkeys.py::test_a_key_no_line_names_is_changed_when_the_host_is_known"),
    Attack("host names with `%u`, `a%rb`, `%%` on the command line or in the targets file", "have them expanded into another host or key path",
           "taken literally; ssh_config's own tokens still expand", "tests/sdk/ssh/test_hostconfig.py::test_a_host_name_is_never_token_expanded"),
    # cuts, black holes and silence
    Attack("an upload in flight", "the connection is cut",
           "the active version intact; nothing activated", E2E + "test_faults.py::test_dropped_connection_mid_upload_leaves_the_active_version_intact", fault=True),
    Attack("an upload in flight", "the board goes silent (black hole)",
           "fails within --unresponsive; the active version kept", E2E + "test_faults.py::test_a_device_gone_silent_mid_upload_fails_fast_and_keeps_the_active_version", fault=True),
    Attack("an upload cut at 10, 50 or 90 %", "deploy again",
           "only what is missing is sent; the result verified", E2E + "test_deploy_integrity.py::test_a_retry_after_a_cut_sends_only_what_is_missing", fault=True),
    Attack("a deploy that black-holed while holding the lock", "deploy again",
           "the orphaned lock is taken over", E2E + "test_deploy_integrity.py::test_a_retry_after_a_black_hole_takes_over_the_orphaned_lock", fault=True),
    Attack("a profile running", "the board goes silent", "lost within --unresponsive",
           E2E + "test_faults.py::test_a_device_gone_silent_mid_profile_is_lost_within_the_unresponsive_time", fault=True),
    Attack("a remote command running", "the board goes silent", "lost, not waited out",
           E2E + "test_faults.py::test_a_remote_command_on_a_silent_device_is_lost_not_timed_out", fault=True),
    Attack("a profile running", "the host is killed", "no runtime keeps computing on the board",
           E2E + "test_faults.py::test_a_killed_host_leaves_no_runtime_computing_on_the_device", fault=True),
    Attack("an operation that hangs on the board", "wait for it", "timed out; no process left",
           E2E + "test_faults.py::test_a_hung_operation_times_out_and_leaves_no_process", fault=True),
    # frozen boards
    Attack("a deploy holding the lock", "its process is stopped (SIGSTOP)",
           "the next deploy takes the lock over within --unresponsive and says so", E2E + "test_faults.py::test_a_stopped_lock_holder_is_taken_over_within_the_unresponsive_time", fault=True),
    Attack("a deploy in its health check", "the runtime is stopped (SIGSTOP)",
           "ends within --unresponsive; the runtime ended; the active version kept", E2E + "test_faults.py::test_a_deploy_with_a_frozen_runtime_ends_within_the_unresponsive_time", fault=True),
    Attack("a deploy uploading", "the board's upload receiver is stopped (SIGSTOP)",
           "ends within --unresponsive in one line; the receiver ended; the active version kept", E2E + "test_faults.py::test_a_deploy_whose_upload_receiver_is_stopped_ends_within_the_unresponsive_time", fault=True),
    Attack("a remote command that runs long and prints nothing", "wait past --unresponsive",
           "not taken for frozen: it runs to its end", E2E + "test_faults.py::test_a_slow_running_remote_command_is_not_ended"),
    Attack("a runtime on this machine (the local target)", "it is stopped (SIGSTOP)",
           "ended within --unresponsive", "tests/sdk/test_local_target.py::test_a_stopped_runtime_is_ended_within_the_unresponsive_time", fault=True),
    Attack("a local deploy holding the lock (the local target)", "its process is stopped (SIGSTOP)",
           "the next deploy takes the lock over within --unresponsive", "tests/sdk/deploy/test_local_lock.py::test_a_stopped_holder_is_taken_over_within_the_unresponsive_time", fault=True),
    # tampering on the board
    Attack("an active blob", "its bytes are changed on the board",
           "refused at load; the next deploy repairs it", E2E + "test_deploy_integrity.py::test_a_tampered_blob_is_refused_at_load_and_a_redeploy_repairs_it"),
    Attack("an active blob changed on the board", "re-deploy the same model",
           "not taken as unchanged: sent again", E2E + "test_deploy_integrity.py::test_a_redeploy_of_a_tampered_active_blob_is_not_unchanged"),
    Attack("the runtime zipapp on the board", "its bytes are changed",
           "replaced before it runs", E2E + "test_deploy_integrity.py::test_a_tampered_runtime_is_replaced_before_it_runs"),
    Attack("a blob corrupted in transit", "deploy", "caught by the hash; never activated",
           E2E + "test_faults.py::test_corrupted_blob_is_caught_by_the_hash_and_never_activated"),
    Attack("a deploy interrupted while writing its version", "deploy again",
           "no ghost version", E2E + "test_deploy_integrity.py::test_an_interrupted_version_leaves_no_ghost"),
    # links under the root
    Attack("ROOT/tmp replaced by a link to a directory of the user's", "deploy",
           "refused; what it points to untouched", E2E + "test_deploy_integrity.py::test_a_symlinked_tmp_is_refused_and_what_it_points_to_is_untouched"),
    Attack("ROOT/blobs replaced by a link to a directory of old user files", "deploy (SFTP and local)",
           "refused naming the link; every user file survives", "tests/sdk/deploy/test_containment.py::test_a_linked_blobs_dir_is_refused_and_every_user_file_survives"),
    Attack("an emulated arm64 board whose ROOT/blobs links to the user's old files", "deploy",
           "refused in one line; the files survive", E2E + "test_arm.py::test_a_link_under_the_root_is_refused_on_the_board_and_the_users_files_survive"),
    Attack("a version directory replaced by a link", "ls, rollback (SFTP and local)",
           "refused, never followed", "tests/sdk/deploy/test_containment.py::test_a_version_dir_that_is_a_link_is_refused"),
    Attack("`current` pointed outside the root", "rollback, profile (SFTP and local)",
           "refused, never followed", "tests/sdk/deploy/test_containment.py::test_a_current_that_points_outside_is_refused_never_followed"),
    # other users of the board
    Attack("a board with other local users", "read meta.json, the trust key, list the root",
           "0700 directories, 0600 files: Permission denied", E2E + "test_deploy.py::test_what_edgeship_keeps_on_the_device_is_its_users_alone"),
    Attack("a root left readable by an older edgeship, with links to the user's files in it", "tighten it through the links",
           "made private once; links not followed; the user's own files untouched", "tests/sdk/deploy/test_containment.py::test_an_older_readable_root_is_made_private_once_and_nothing_else_is_touched"),
    Attack("a version whose blob was removed on the board", "edgeship ls",
           "says `blob missing`, not ok", E2E + "test_deploy.py::test_ls_says_a_version_whose_blob_is_gone_is_missing"),
    # signatures
    Attack("a board that trusts a release key", "deploy unsigned or with another key",
           "refused on the board", E2E + "test_signed_releases.py::test_a_trusting_device_takes_only_what_its_key_signed"),
    Attack("a signed release", "its bytes or manifest changed after signing",
           "refused on the board", E2E + "test_signed_releases.py::test_tampered_bytes_or_manifests_are_refused_on_the_device"),
    Attack("a board at release 5", "deploy release 3 (a downgrade)",
           "refused unless --allow-downgrade", E2E + "test_signed_releases.py::test_an_older_release_is_a_downgrade_unless_allowed"),
    Attack("a trusting board holding an unsigned or forged older version", "rollback to it",
           "refused in one line naming the version", E2E + "test_signed_releases.py::test_rollback_to_a_version_without_a_valid_signature_is_refused"),
    Attack("a board whose venv Python differs from python3", "signed deploys; setup --trust",
           "checked with the board's own Python; setup fails if it cannot check", E2E + "test_signed_releases.py::test_signatures_are_checked_with_the_device_python_and_setup_trust_probes_it"),
    # resources
    Attack("a disk too small for the model", "deploy", "one line; nothing changed",
           E2E + "test_faults.py::test_full_disk_is_a_clear_error_and_changes_nothing", fault=True),
    Attack("a disk filled after the blob arrived", "deploy (the version's small files)",
           "one line naming the space; no half-made version", E2E + "test_faults.py::test_a_disk_full_after_the_upload_is_one_line_and_leaves_no_half_made_version", fault=True),
    Attack("a deploy root the board user cannot write", "deploy", "one line",
           E2E + "test_attacks.py::test_a_deploy_root_the_device_user_cannot_write_is_one_line"),
    Attack("a board without the SFTP subsystem", "deploy", "a clear error",
           E2E + "test_faults.py::test_a_device_without_sftp_gets_a_clear_error"),
    # the wire: what a runtime reads and what it is sent
    Attack("the runtime's stdin", "a tensor descriptor with dtype object (pickle)",
           "never unpickled; an error reply; serving goes on", "tests/runtime/test_frames.py::test_a_bad_descriptor_is_refused_and_serving_goes_on"),
    Attack("a small board (MemAvailable below the request)", "send tensors larger than its memory",
           "refused before allocating, naming the board's memory; the stream stays in sync", "tests/runtime/test_frames.py::test_frames_over_the_boards_memory_are_dropped_naming_it"),
    Attack("the runtime's stdin", "frames cut short by the end of input",
           "a clear error, no hang", "tests/runtime/test_frames.py::test_frames_cut_short_by_the_end_of_input_are_refused", fault=True),
    Attack("a user's --inputs file", "an object (pickled) array in the .npz",
           "never unpickled; the line says how to save strings", "tests/runtime/test_inputs.py::test_an_object_array_file_is_refused_saying_how_to_save_it"),
    Attack("a host and a runtime of different protocols", "connect",
           "a clear version line before anything is sent", "tests/runtime/test_protocol.py::test_check_hello_rejects_another_protocol"),
    Attack("an emulated arm64 board", "string and odd-dtype tensors (the ONNX backend cases)",
           "the reference outputs, as on local", E2E + "test_arm.py::test_onnx_backend_cases_give_the_reference_outputs_on_the_board"),
    # hostile models and races
    Attack("random bytes named .onnx", "deploy", "never active; kept as failed",
           E2E + "test_deploy_integrity.py::test_random_bytes_named_onnx_never_become_active"),
    Attack("a model that returns NaN, or is too slow", "deploy --max-latency",
           "never active", E2E + "test_deploy_integrity.py::test_a_model_with_nan_outputs_or_too_slow_fails_the_check"),
    Attack("a model that hangs the runtime", "deploy", "never active; the runtime ended",
           E2E + "test_deploy_integrity.py::test_a_model_that_hangs_the_runtime_never_becomes_active", fault=True),
    Attack("a model that crashes the runtime", "deploy", "never active",
           E2E + "test_deploy_integrity.py::test_a_model_that_crashes_the_runtime_never_becomes_active", fault=True),
    Attack("two deploys at once", "race them", "serialised by the lock; both consistent",
           E2E + "test_deploy.py::test_concurrent_deploys_are_serialised_by_the_lock"),
    Attack("profiles, deploys and rm at once", "race them", "no profile loses its model",
           E2E + "test_deploy_integrity.py::test_profiles_racing_deploy_and_rm_never_lose_their_model"),
)  # fmt: skip


def run(attacks: tuple[Attack, ...]) -> int:
    """Run every row's test once; print each row's outcome and the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        argv = [sys.executable, "-m", "pytest", "-q", "-m", "", f"--junitxml={report}"]
        subprocess.run([*argv, *(a.test for a in attacks)], cwd=REPO, check=False)
        cases = _cases(report)
    held = 0
    slowest = ("", 0.0)
    for attack in attacks:
        outcome, seconds = cases.get(attack.test, ("not run", 0.0))
        held += outcome == "held"
        if attack.fault:
            slowest = max(slowest, (attack.test, seconds), key=lambda c: c[1])
        print(f"{outcome:>9}  {seconds:6.1f} s  {attack.arrangement}: {attack.attack}")
    faults = sum(a.fault for a in attacks)
    print(f"\n{held} of {len(attacks)} attacks held")
    print(f"slowest clean exit after a fault ({faults} rows break something mid-operation;")
    print(f"the whole test, arrangement included): {slowest[1]:.1f} s, {slowest[0]}")
    return 0 if held == len(attacks) else 1


def _cases(junit: Path) -> dict[str, tuple[str, float]]:
    """Node id -> (held | failed | skipped, seconds), from pytest's JUnit XML."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        name = case.get("name", "").split("[")[0]
        outcome = "held"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        node = f"{module}::{name}"
        seconds = float(case.get("time", 0.0))
        worst = found.get(node, ("held", 0.0))
        found[node] = (outcome if worst[0] == "held" else worst[0], max(worst[1], seconds))
    return found


def markdown(attacks: tuple[Attack, ...]) -> str:
    rows = ["| # | arrangement | attack | what must hold | test |", "|---|---|---|---|---|"]
    for i, a in enumerate(attacks, 1):
        path, name = a.test.split("::")
        rows.append(
            f"| {i} | {a.arrangement} | {a.attack} | {a.holds} | `{Path(path).name}::{name}` |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--markdown", action="store_true", help="print the table and stop")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(ATTACKS))
        return 0
    return run(ATTACKS)


if __name__ == "__main__":
    sys.exit(main())
