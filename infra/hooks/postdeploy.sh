#!/bin/sh
# Deploy infra/vaults.bicep: the function app's access to each vault, the vaults' Event Grid system topics and
# the event subscriptions to the Event Grid functions. azd runs this after `azd deploy`, because Event Grid
# rejects a subscription to a function that is not deployed yet. A second run leaves everything as it is.
set -eu

# Event Grid functions in function_app.py. infra/modules/event-subscriptions.bicep subscribes to the same names.
EVENT_GRID_FUNCTIONS="on_certificate_expiring on_certificate_version_created"
# The host lists the functions some time after a deployment.
# NOTE: 30 x 10 seconds is an estimate of how long that takes. It was never measured on a real deployment.
MAX_ATTEMPTS=30
SLEEP_SECONDS=10

for name in AZURE_SUBSCRIPTION_ID AZURE_LOCATION AZURE_ENV_NAME AZURE_FUNCTION_APP_ID \
    AZURE_APP_IDENTITY_PRINCIPAL_ID AZURE_STORAGE_ACCOUNT_ID CERTRENEW_DEAD_LETTER_CONTAINER CERTRENEW_VAULT_LIST; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        echo "postdeploy: $name is not set in the azd environment. Run 'azd provision' first." >&2
        exit 1
    fi
done

if ! az account show --only-show-errors >/dev/null 2>&1; then
    echo "postdeploy: the Azure CLI is not signed in. Run 'az login', then 'azd hooks run postdeploy'." >&2
    exit 1
fi

for function_name in $EVENT_GRID_FUNCTIONS; do
    attempt=1
    until az resource show --ids "$AZURE_FUNCTION_APP_ID/functions/$function_name" --only-show-errors >/dev/null 2>&1; do
        if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then
            echo "postdeploy: function $function_name is not listed on $AZURE_FUNCTION_APP_ID after $MAX_ATTEMPTS attempts." >&2
            echo "Check the deployment logs with 'azd monitor --logs', then run 'azd hooks run postdeploy'." >&2
            exit 1
        fi
        echo "postdeploy: waiting for function $function_name to be indexed (attempt $attempt of $MAX_ATTEMPTS)."
        attempt=$((attempt + 1))
        sleep "$SLEEP_SECONDS"
    done
done

parameters_file=$(mktemp)
trap 'rm -f "$parameters_file"' EXIT
# CERTRENEW_VAULT_LIST is already JSON: azd stores array outputs as JSON text.
cat >"$parameters_file" <<JSON
{
  "\$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "vaults": { "value": $CERTRENEW_VAULT_LIST },
    "functionAppId": { "value": "$AZURE_FUNCTION_APP_ID" },
    "appPrincipalId": { "value": "$AZURE_APP_IDENTITY_PRINCIPAL_ID" },
    "storageAccountId": { "value": "$AZURE_STORAGE_ACCOUNT_ID" },
    "deadLetterContainerName": { "value": "$CERTRENEW_DEAD_LETTER_CONTAINER" },
    "tags": { "value": { "azd-env-name": "$AZURE_ENV_NAME" } }
  }
}
JSON

echo "postdeploy: deploying infra/vaults.bicep as deployment certrenew-vaults-$AZURE_ENV_NAME."
az deployment sub create \
    --subscription "$AZURE_SUBSCRIPTION_ID" \
    --name "certrenew-vaults-$AZURE_ENV_NAME" \
    --location "$AZURE_LOCATION" \
    --template-file infra/vaults.bicep \
    --parameters "@$parameters_file" \
    --only-show-errors \
    --output none
echo "postdeploy: Key Vault events now reach the function app."
