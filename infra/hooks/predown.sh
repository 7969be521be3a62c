#!/bin/sh
# Remove what infra/vaults.bicep created outside the app's resource group: event subscriptions, system topics
# it created, and the app's role assignments or access policies on existing vaults. `azd down` deletes the app's
# resource group afterwards, with everything in it. Reused system topics were never part of the deployment, so
# they stay.
set -eu

deployment="certrenew-vaults-${AZURE_ENV_NAME:?AZURE_ENV_NAME is not set}"
app_group="/resourcegroups/$(printf '%s' "${AZURE_RESOURCE_GROUP:-}" | tr '[:upper:]' '[:lower:]')/"

if ! ids=$(az deployment sub show --subscription "${AZURE_SUBSCRIPTION_ID:-}" --name "$deployment" \
        --query "properties.outputResources[].id" --output tsv --only-show-errors 2>/dev/null); then
    echo "predown: deployment $deployment not found, so nothing outside the app's resource group is left to remove."
    exit 0
fi

outside_app_group() {
    case "$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" in
        *"$app_group"*) return 1 ;;
        *) return 0 ;;
    esac
}

# Print the kind of resource an ID names: eventsubscription, systemtopic, roleassignment, accesspolicy or other.
kind_of() {
    case "$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" in
        */eventsubscriptions/*) echo eventsubscription ;;
        */providers/microsoft.eventgrid/systemtopics/*) echo systemtopic ;;
        */providers/microsoft.authorization/roleassignments/*) echo roleassignment ;;
        */accesspolicies/*) echo accesspolicy ;;
        *) echo other ;;
    esac
}

# Subscriptions go first, because a system topic that still has subscriptions cannot be deleted.
for pass in eventsubscription systemtopic roleassignment accesspolicy; do
    for id in $ids; do
        outside_app_group "$id" || continue
        [ "$(kind_of "$id")" = "$pass" ] || continue
        echo "predown: removing $id"
        case "$pass" in
            eventsubscription | systemtopic)
                az resource delete --ids "$id" --only-show-errors --output none
                ;;
            roleassignment)
                az role assignment delete --ids "$id" --only-show-errors --output none
                ;;
            accesspolicy)
                vault_id=$(printf '%s' "$id" | sed 's#/[aA]ccess[pP]olicies/.*##')
                az keyvault delete-policy --name "${vault_id##*/}" \
                    --resource-group "$(printf '%s' "$vault_id" | cut -d/ -f5)" \
                    --object-id "${AZURE_APP_IDENTITY_PRINCIPAL_ID:?AZURE_APP_IDENTITY_PRINCIPAL_ID is not set}" \
                    --only-show-errors --output none
                ;;
        esac
    done
done
