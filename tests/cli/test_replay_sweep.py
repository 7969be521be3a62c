"""certrenew replay and sweep: the function's code, run by hand."""

import os
import subprocess
import sys
from pathlib import Path

from shared.cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from tests.support.harness import self_signed_policy

CASES = Path(__file__).parent.parent / "cases" / "events"


def test_replay_prints_decision_and_notice(app, capsys):
    client = app.client()
    client.begin_create_certificate("web-frontend", self_signed_policy()).result()
    app.advance(days=345)

    code = main(["replay", str(CASES / "near-expiry.eventgrid.json")])

    output = capsys.readouterr().out
    assert code == EXIT_OK
    assert "start              contoso-certs/web-frontend" in output
    assert "notice renewal-started" in output


def test_replay_of_rejected_event_exits_3_with_reason(app, capsys):
    code = main(["replay", str(CASES / "vault-not-allowed.eventgrid.json")])

    output = capsys.readouterr().out
    assert code == EXIT_REJECTED
    assert "someone-elses-vault' is not configured" in output
    assert app.keyvault.request_log() == []


def test_replay_of_missing_file_names_it(app, capsys, tmp_path):
    code = main(["replay", str(tmp_path / "nope.json")])

    assert code == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err


def test_sweep_dry_run_changes_nothing(app, capsys):
    client = app.client()
    client.begin_create_certificate("web", self_signed_policy()).result()
    app.advance(days=345)
    app.keyvault.clear_request_log()

    code = main(["sweep", "--dry-run"])

    assert code == EXIT_OK
    assert "1 due" in capsys.readouterr().out
    assert [r for r in app.app_requests() if r["method"] != "GET"] == []
    assert len(list(client.list_properties_of_certificate_versions("web"))) == 1


def test_certrenew_command_rejects_forged_event_without_request(tmp_path):
    # A vault URL on which nothing listens: any request would fail the command.
    env = {
        **os.environ,
        "CERTRENEW_VAULTS": "contoso-certs=https://127.0.0.1:9",
        "CERTRENEW_JOURNAL": f"sqlite:{tmp_path / 'journal.sqlite3'}",
    }
    command = Path(sys.executable).parent / "certrenew"

    result = subprocess.run(
        [str(command), "replay", str(CASES / "forged-vault-host.eventgrid.json")],
        capture_output=True, text=True, env=env, timeout=60,
    )

    assert result.returncode == EXIT_REJECTED, result.stderr
    assert "is not a valid Key Vault name" in result.stdout


def test_sweep_dry_run_writes_nothing(app, certrenew, tmp_path):
    client = app.client()
    client.begin_create_certificate("web", self_signed_policy()).result()
    app.advance(days=345)

    result = certrenew("sweep", "--dry-run")

    assert "would start" in result.out
    assert "contoso-certs/web" in result.out
    assert "dry run: nothing was changed" in result.out
    assert list(app.runtime.journal.entries("")) == []
    assert app.runtime.journal.history() == []
    assert not (tmp_path / "outbox").exists()


def test_sweep_dry_run_leaves_notice_to_real_sweep(app, certrenew):
    # GIVEN a renewal the app started, which Key Vault has completed since
    app.client().begin_create_certificate("web", self_signed_policy()).result()
    certrenew("renew", "--vault", "contoso-certs", "web", "--force")

    # WHEN a dry run finds the completion first
    dry = certrenew("sweep", "--dry-run")
    real = certrenew("sweep")

    # THEN only the real sweep announces it
    assert "would send notice renewed" in dry.out
    assert "notice renewed" in real.out
    assert "would send" not in real.out
