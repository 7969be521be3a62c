# Remove what infra/vaults.bicep created outside the app's resource group: event subscriptions, system topics
# it created, and the app's role assignments or access policies on existing vaults. `azd down` deletes the app's
# resource group afterwards, with everything in it. Reused system topics were never part of the deployment, so
# they stay.
$ErrorActionPreference = 'Stop'

if ([string]::IsNullOrWhiteSpace($env:AZURE_ENV_NAME)) {
    Write-Error 'predown: AZURE_ENV_NAME is not set.'
}
$deployment = "certrenew-vaults-$env:AZURE_ENV_NAME"
$appGroup = "/resourcegroups/$("$env:AZURE_RESOURCE_GROUP".ToLowerInvariant())/"

$ids = az deployment sub show --subscription $env:AZURE_SUBSCRIPTION_ID --name $deployment `
    --query 'properties.outputResources[].id' --output tsv --only-show-errors 2> $null
if ($LASTEXITCODE -ne 0) {
    Write-Host "predown: deployment $deployment not found, so nothing outside the app's resource group is left to remove."
    exit 0
}

function Get-ResourceKind([string] $id) {
    $lowered = $id.ToLowerInvariant()
    if ($lowered -like '*/eventsubscriptions/*') { return 'eventsubscription' }
    if ($lowered -like '*/providers/microsoft.eventgrid/systemtopics/*') { return 'systemtopic' }
    if ($lowered -like '*/providers/microsoft.authorization/roleassignments/*') { return 'roleassignment' }
    if ($lowered -like '*/accesspolicies/*') { return 'accesspolicy' }
    return 'other'
}

$outside = @($ids | Where-Object { $_ -and -not $_.ToLowerInvariant().Contains($appGroup) })

# Subscriptions go first, because a system topic that still has subscriptions cannot be deleted.
foreach ($pass in @('eventsubscription', 'systemtopic', 'roleassignment', 'accesspolicy')) {
    foreach ($id in $outside | Where-Object { (Get-ResourceKind $_) -eq $pass }) {
        Write-Host "predown: removing $id"
        switch ($pass) {
            { $_ -in 'eventsubscription', 'systemtopic' } {
                az resource delete --ids $id --only-show-errors --output none
            }
            'roleassignment' {
                az role assignment delete --ids $id --only-show-errors --output none
            }
            'accesspolicy' {
                $vaultId = $id -replace '/accessPolicies/.*$', ''
                az keyvault delete-policy --name ($vaultId -split '/')[-1] --resource-group ($vaultId -split '/')[4] `
                    --object-id $env:AZURE_APP_IDENTITY_PRINCIPAL_ID --only-show-errors --output none
            }
        }
        if ($LASTEXITCODE -ne 0) {
            Write-Error "predown: removing $id failed. Remove it by hand, or fix the error above and run 'azd down' again."
        }
    }
}
