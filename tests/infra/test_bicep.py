"""Offline checks of infra/: the Bicep parses, and it matches what the app code reads and handles."""

from __future__ import annotations

import functools
import importlib
import json
import re
import sys
from collections import defaultdict

import pytest

from infra_bicep import INFRA, REPO_ROOT, bicep_files, body, loop_array, parse, render, resources_of_type
from shared.events import SUBSCRIPTIONS
from shared.settings import SETTINGS

# Settings the platform reads rather than the app code. Flex Consumption sets the worker runtime and the
# Functions version itself, so FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not among them.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

# Built-in role IDs, as listed in Azure's built-in roles reference.
BUILT_IN_ROLES = {
    "keyVaultCertificatesOfficer": "a4417e6f-fecd-4de8-b567-7b0420556985",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
}

# Every role assignment in infra/: (file, symbolic name) -> (role definition ID expression, scope).
EXPECTED_ROLE_ASSIGNMENTS = {
    ("modules/monitoring.bicep", "appMetricsPublisher"): (
        "roleDefinitionIds.monitoringMetricsPublisher",
        "applicationInsights",
    ),
    ("modules/storage.bicep", "appStorageRoles"): ("roleId", "storageAccount"),
    ("modules/communication.bicep", "appEmailSender"): ("emailSenderRole.id", "communicationService"),
    ("modules/key-vault.bicep", "operatorCertificatesOfficer"): (
        "roleDefinitionIds.keyVaultCertificatesOfficer",
        "vault",
    ),
    ("modules/vault-access.bicep", "appCertificatesOfficer"): (
        "roleDefinitionIds.keyVaultCertificatesOfficer",
        "vault",
    ),
    ("modules/dead-letter-access.bicep", "topicDeadLetterWriter"): (
        "roleDefinitionIds.storageBlobDataContributor",
        "storageAccount::blobServices::container",
    ),
}

ROLE_DEFINITION_PREFIX = "subscription_resource_id(Microsoft.Authorization/roleDefinitions, "


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path):
    parsed = parse(path.relative_to(INFRA).as_posix())

    assert parsed.get("resources") or parsed.get("modules"), f"{path} declares no resource and no module"


def test_subscriptions_match_shared_events():
    mapping = parse("modules/event-subscriptions.bicep")["variables"]["functionSubscriptions"]["value"]

    in_bicep = {entry["functionName"]: tuple(entry["includedEventTypes"]) for entry in mapping}

    assert sorted(in_bicep) == sorted(SUBSCRIPTIONS)
    for function_name, event_types in SUBSCRIPTIONS.items():
        assert sorted(in_bicep[function_name]) == sorted(event_types), function_name


def test_subscriptions_target_the_mapped_function():
    declaration = parse("modules/event-subscriptions.bicep")["resources"]["subscriptions"]
    properties = body(declaration)["properties"]

    assert loop_array(declaration) == "functionSubscriptions"
    assert properties["destination"]["endpointType"] == "AzureFunction"
    assert properties["destination"]["properties"]["resourceId"] == "${functionAppId}/functions/${subscription.functionName}"
    assert render(properties["filter"]["includedEventTypes"]) == "subscription.includedEventTypes"
    assert properties["eventDeliverySchema"] == "EventGridSchema"


def test_subscriptions_retry_then_dead_letter_with_identity():
    parsed = parse("modules/event-subscriptions.bicep")
    properties = body(parsed["resources"]["subscriptions"])["properties"]
    dead_letter = properties["deadLetterWithResourceIdentity"]

    assert parsed["variables"]["maxDeliveryAttempts"]["value"] == 30
    assert parsed["variables"]["eventTimeToLiveInMinutes"]["value"] == 1440
    assert render(properties["retryPolicy"]["maxDeliveryAttempts"]) == "maxDeliveryAttempts"
    assert dead_letter["identity"]["type"] == "SystemAssigned"
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert "deadLetterDestination" not in properties, "key-based dead-lettering is set besides the identity-based one"


def test_subscribed_functions_are_event_grid_functions():
    if not (REPO_ROOT / "function_app.py").exists():
        pytest.skip("function_app.py does not exist yet, so there are no functions to compare the subscriptions with")
    triggers = _function_triggers()

    subscribed = {entry["functionName"] for entry in _function_subscriptions()}
    event_grid_functions = {name for name, trigger in triggers.items() if trigger["type"] == "eventGridTrigger"}

    assert subscribed - set(triggers) == set(), "subscriptions to functions that function_app.py does not define"
    assert subscribed == event_grid_functions


def test_notice_queue_matches_queue_trigger():
    if not (REPO_ROOT / "function_app.py").exists():
        pytest.skip("function_app.py does not exist yet, so there is no queue trigger to compare with")
    queue_triggers = [trigger for trigger in _function_triggers().values() if trigger["type"] == "queueTrigger"]
    storage = parse("modules/storage.bicep")

    declared_queue = storage["parameters"]["noticeQueueName"]["default"]

    assert [trigger["queueName"] for trigger in queue_triggers] == [declared_queue]
    assert queue_triggers[0]["connection"] == "AzureWebJobsStorage"
    assert storage["resources"]["poisonQueue"]["config"]["name"] == "${noticeQueueName}-poison"


def test_required_settings_are_set():
    settings = _app_settings()

    missing = {setting.name for setting in SETTINGS if setting.required} - set(settings)

    assert missing == set()


def test_only_known_settings_are_set():
    settings = _app_settings()

    unknown = set(settings) - {setting.name for setting in SETTINGS} - PLATFORM_SETTINGS

    assert unknown == set()


def test_app_settings_values():
    settings = _app_settings()

    assert settings["CERTRENEW_JOURNAL"] == "table"
    assert render(settings["CERTRENEW_VAULTS"]) == "join(vaultUrls,  )", "CERTRENEW_VAULTS should be the vault URLs joined by spaces"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identity.properties.clientId};Authorization=AAD"
    assert render(parse("modules/function-app.bicep")["resources"]["appSettings"]["config"]["properties"]) == (
        "union(platformSettings, certrenewSettings)"
    )


def test_vault_urls_use_environment_suffix():
    url = parse("main.bicep")["variables"]["vaultUrls"]["value"]

    assert "environment().suffixes.keyvaultDns" in render(url) or "${environment().suffixes.keyvaultDns}" in str(url)
    for path in bicep_files():
        assert "vault.azure.net" not in path.read_text(), f"{path} hard-codes the Key Vault DNS suffix"


def test_role_map_has_built_in_ids():
    roles = json.loads((INFRA / "roles.json").read_text())

    assert roles == BUILT_IN_ROLES


def test_role_assignments_are_expected():
    found = {(file, name) for file, name, _ in resources_of_type("Microsoft.Authorization/roleAssignments")}

    assert found == set(EXPECTED_ROLE_ASSIGNMENTS)


@pytest.mark.parametrize("file, name", sorted(EXPECTED_ROLE_ASSIGNMENTS), ids=lambda value: value)
def test_role_assignment_role_and_scope(file, name):
    role, scope = EXPECTED_ROLE_ASSIGNMENTS[(file, name)]
    config = body(parse(file)["resources"][name])
    properties = config["properties"]
    role_definition = role if role.endswith(".id") else f"{ROLE_DEFINITION_PREFIX}{role})"

    assert render(config["scope"]) == scope
    assert render(properties["roleDefinitionId"]) == role_definition
    assert render(config["name"]) == f"guid({scope}.id, {properties['principalId']}, {role})"


def test_storage_roles_are_blob_owner_queue_and_table():
    app_roles = parse("modules/storage.bicep")["variables"]["appRoles"]["value"]

    assert [render(role) for role in app_roles] == [
        "roleDefinitionIds.storageBlobDataOwner",
        "roleDefinitionIds.storageQueueDataContributor",
        "roleDefinitionIds.storageTableDataContributor",
    ]


def test_email_sender_role_allows_only_sending():
    parsed = parse("modules/communication.bicep")
    permissions = parsed["resources"]["emailSenderRole"]["config"]["properties"]["permissions"]

    assert parsed["variables"]["emailSenderActions"]["value"] == [
        "Microsoft.Communication/CommunicationServices/Read",
        "Microsoft.Communication/CommunicationServices/Write",
        "Microsoft.Communication/EmailServices/write",
    ]
    assert render(permissions) == "[{actions: emailSenderActions, notActions: []}]"


def test_access_policy_grants_certificate_permissions_only():
    parsed = parse("modules/vault-access.bicep")
    policy = parsed["resources"]["appAccessPolicy"]
    permissions = body(policy)["properties"]["accessPolicies"][0]["permissions"]

    assert list(permissions) == ["certificates"]
    assert sorted(parsed["variables"]["certificatePermissions"]["value"]) == sorted(
        ["get", "list", "update", "create", "managecontacts", "getissuers", "listissuers"]
    )
    assert body(policy)["name"] == "add"


def test_new_vault_is_protected():
    properties = body(parse("modules/key-vault.bicep")["resources"]["vault"])["properties"]

    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True


def test_storage_has_no_shared_keys():
    properties = body(parse("modules/storage.bicep")["resources"]["storageAccount"])["properties"]

    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.relative_to(INFRA).as_posix())
def test_no_key_or_secret_reaches_outputs(path):
    text = path.read_text()
    outputs = parse(path.relative_to(INFRA).as_posix()).get("outputs", {})

    assert re.search(r"\blist[A-Za-z]*\(", text) is None, "a list*() call reads keys or secrets"
    assert re.search(r"AccountKey|SharedAccessSignature|primaryKey|secondaryKey", text, re.IGNORECASE) is None
    for name, output in outputs.items():
        assert not any(decorator["type"] == "secure" for decorator in output["decorators"]), name
        assert re.search(r"connectionstring|key|secret|password", name, re.IGNORECASE) is None, name
        assert re.search(r"connectionstring|secret|password", render(output["value"]), re.IGNORECASE) is None, name


def test_connection_string_only_for_application_insights():
    settings = _app_settings()

    holding_one = {name for name, value in settings.items() if "connectionstring" in render(value).lower()}

    assert holding_one == {"APPLICATIONINSIGHTS_CONNECTION_STRING"}


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.relative_to(INFRA).as_posix())
def test_parameters_are_described(path):
    parameters = parse(path.relative_to(INFRA).as_posix()).get("parameters", {})

    for name, parameter in parameters.items():
        descriptions = [decorator["argument"] for decorator in parameter["decorators"] if decorator["type"] == "description"]
        assert descriptions, f"parameter {name} has no @description"
        expected = "Optional. " if parameter["default"] is not None else "Required. "
        assert descriptions[0].startswith(expected), f"parameter {name} should start its description with {expected!r}"


def test_one_api_version_per_resource_type():
    versions = defaultdict(set)
    for path in bicep_files():
        for declaration in parse(path.relative_to(INFRA).as_posix()).get("resources", {}).values():
            versions[declaration["type"]].add(declaration["api_version"])

    mixed = {resource_type: sorted(found) for resource_type, found in versions.items() if len(found) > 1}

    assert mixed == {}


def test_main_parameters_file_matches_main():
    declared = parse("main.bicep")["parameters"]
    provided = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]

    required = {name for name, parameter in declared.items() if parameter["default"] is None}

    assert set(provided) - set(declared) == set()
    assert required - set(provided) == set()


def test_main_outputs_are_upper_snake_case():
    outputs = parse("main.bicep")["outputs"]

    lower = [name for name in outputs if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name)]

    assert lower == []


def test_function_app_is_tagged_for_azd():
    params = body(parse("main.bicep")["modules"]["functionApp"])["params"]

    assert render(params["tags"]) == "union(tags, {'azd-service-name': certrenew})"


def _app_settings() -> dict:
    """Return every app setting the Bicep sets, by name, with its value expression."""
    platform = parse("modules/function-app.bicep")["variables"]["platformSettings"]["value"]
    certrenew = body(parse("main.bicep")["modules"]["functionApp"])["params"]["certrenewSettings"]
    overlap = set(platform) & set(certrenew)
    assert overlap == set(), f"settings set twice: {sorted(overlap)}"
    return {**platform, **certrenew}


def _function_subscriptions() -> list[dict]:
    return parse("modules/event-subscriptions.bicep")["variables"]["functionSubscriptions"]["value"]


@functools.cache
def _function_triggers() -> dict[str, dict]:
    """Import function_app.py from the repository root and return each function's trigger binding by name.

    Cached, because azure-functions raises on a second get_functions() call on the same app.
    """
    sys.path.insert(0, str(REPO_ROOT))
    try:
        function_app = importlib.import_module("function_app")
    finally:
        sys.path.remove(str(REPO_ROOT))
    return {function.get_function_name(): function.get_trigger().get_dict_repr() for function in function_app.app.get_functions()}
