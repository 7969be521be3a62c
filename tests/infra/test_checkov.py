"""checkov's Bicep checks over infra/, run offline: every check passes or is skipped with a reason in the Bicep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from infra_bicep import INFRA

# A run over infra/ took about 7 s on a 2-core machine. Past this limit, the run is too slow for `make test`.
MAX_SECONDS = 60


@pytest.fixture(scope="module")
def checkov_report():
    # --skip-download and BC_SKIP_MAPPING keep checkov from fetching policies and guidelines, and
    # CKV_SKIP_PACKAGE_UPDATE_CHECK stops its check for a newer release on PyPI.
    environment = {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
    }
    command = [
        sys.executable, "-m", "checkov.main",
        "--directory", str(INFRA),
        "--framework", "bicep",
        "--skip-download",
        "--compact",
        "--output", "json",
    ]

    started = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=MAX_SECONDS * 3)
    elapsed = time.monotonic() - started

    assert completed.stdout, f"checkov printed nothing. stderr: {completed.stderr[-2000:]}"
    return json.loads(completed.stdout), elapsed


def test_checkov_bicep_checks_pass(checkov_report):
    report, _ = checkov_report
    failed = [f"{check['check_id']} {check['resource']} ({check['file_path']})" for check in report["results"]["failed_checks"]]

    assert report["summary"]["parsing_errors"] == 0
    assert failed == []


def test_checkov_ran_checks(checkov_report):
    report, _ = checkov_report

    assert report["summary"]["passed"] > 0


def test_checkov_skips_have_reasons(checkov_report):
    report, _ = checkov_report

    unexplained = [
        f"{check['check_id']} {check['resource']}"
        for check in report["results"]["skipped_checks"]
        if len(check["check_result"].get("suppress_comment", "").strip()) < 20
    ]

    assert unexplained == []


def test_checkov_is_fast(checkov_report):
    _, elapsed = checkov_report

    assert elapsed < MAX_SECONDS, f"checkov took {elapsed:.0f} s"
