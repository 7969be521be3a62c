"""azure.yaml and the azd hooks: the service, the hook scripts, and the function names the hooks wait for."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from infra_bicep import REPO_ROOT, parse
from shared.events import SUBSCRIPTIONS

HOOKS = ("postprovision", "postdeploy", "predown")


@pytest.fixture(scope="module")
def project():
    return yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())


def test_service_is_python_function(project):
    service = project["services"]["certrenew"]

    assert service == {"project": ".", "language": "python", "host": "function"}


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_scripts_exist_for_both_shells(project, hook):
    definition = project["hooks"][hook]

    for platform, shell in (("posix", "sh"), ("windows", "pwsh")):
        assert definition[platform]["shell"] == shell
        assert (REPO_ROOT / definition[platform]["run"]).is_file(), definition[platform]["run"]


@pytest.mark.parametrize("script", sorted((REPO_ROOT / "infra" / "hooks").glob("*.sh")), ids=lambda path: path.name)
def test_shell_hook_syntax(script):
    completed = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)

    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("script", ["postdeploy.sh", "postdeploy.ps1"])
def test_postdeploy_waits_for_event_grid_functions(script):
    text = (REPO_ROOT / "infra" / "hooks" / script).read_text()
    subscribed = {entry["functionName"] for entry in parse("modules/event-subscriptions.bicep")["variables"]["functionSubscriptions"]["value"]}

    named = set(re.findall(r"on_certificate_\w+", text))

    assert named == subscribed == set(SUBSCRIPTIONS)


def test_postdeploy_passes_every_required_parameter():
    required = {name for name, parameter in parse("vaults.bicep")["parameters"].items() if parameter["default"] is None}

    for script in ("postdeploy.sh", "postdeploy.ps1"):
        text = (REPO_ROOT / "infra" / "hooks" / script).read_text()
        passed = set(re.findall(r"\"?(\w+)\"?\s*[:=]\s*(?:@)?\{\s*\"?value", text))
        assert required - passed == set(), script


def test_hooks_read_outputs_that_main_declares():
    outputs = set(parse("main.bicep")["outputs"])
    # Set by azd itself, not by the template.
    azd_variables = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION"}

    for script in sorted((REPO_ROOT / "infra" / "hooks").iterdir()):
        used = set(re.findall(r"\b((?:AZURE|CERTRENEW)_[A-Z_]+)\b", script.read_text()))
        assert used - outputs - azd_variables == set(), script.name
