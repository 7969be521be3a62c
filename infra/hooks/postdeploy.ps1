# Deploy infra/vaults.bicep: the function app's access to each vault, the vaults' Event Grid system topics and
# the event subscriptions to the Event Grid functions. azd runs this after `azd deploy`, because Event Grid
# rejects a subscription to a function that is not deployed yet. A second run leaves everything as it is.
$ErrorActionPreference = 'Stop'

# Event Grid functions in function_app.py. infra/modules/event-subscriptions.bicep subscribes to the same names.
$eventGridFunctions = @('on_certificate_expiring', 'on_certificate_version_created')
# The host lists the functions some time after a deployment.
# NOTE: 30 x 10 seconds is an estimate of how long that takes. It was never measured on a real deployment.
$maxAttempts = 30
$sleepSeconds = 10

$required = @('AZURE_SUBSCRIPTION_ID', 'AZURE_LOCATION', 'AZURE_ENV_NAME', 'AZURE_FUNCTION_APP_ID',
    'AZURE_APP_IDENTITY_PRINCIPAL_ID', 'AZURE_STORAGE_ACCOUNT_ID', 'CERTRENEW_DEAD_LETTER_CONTAINER', 'CERTRENEW_VAULT_LIST')
foreach ($name in $required) {
    if ([string]::IsNullOrWhiteSpace([Environment]::GetEnvironmentVariable($name))) {
        Write-Error "postdeploy: $name is not set in the azd environment. Run 'azd provision' first."
    }
}

az account show --only-show-errors *> $null
if ($LASTEXITCODE -ne 0) {
    Write-Error "postdeploy: the Azure CLI is not signed in. Run 'az login', then 'azd hooks run postdeploy'."
}

foreach ($functionName in $eventGridFunctions) {
    $attempt = 1
    while ($true) {
        az resource show --ids "$env:AZURE_FUNCTION_APP_ID/functions/$functionName" --only-show-errors *> $null
        if ($LASTEXITCODE -eq 0) { break }
        if ($attempt -ge $maxAttempts) {
            Write-Error ("postdeploy: function $functionName is not listed on $env:AZURE_FUNCTION_APP_ID after $maxAttempts attempts. " +
                "Check the deployment logs with 'azd monitor --logs', then run 'azd hooks run postdeploy'.")
        }
        Write-Host "postdeploy: waiting for function $functionName to be indexed (attempt $attempt of $maxAttempts)."
        $attempt++
        Start-Sleep -Seconds $sleepSeconds
    }
}

$parameters = @{
    '$schema'      = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#'
    contentVersion = '1.0.0.0'
    parameters     = @{
        # CERTRENEW_VAULT_LIST is already JSON: azd stores array outputs as JSON text.
        vaults                  = @{ value = @(ConvertFrom-Json $env:CERTRENEW_VAULT_LIST) }
        functionAppId           = @{ value = $env:AZURE_FUNCTION_APP_ID }
        appPrincipalId          = @{ value = $env:AZURE_APP_IDENTITY_PRINCIPAL_ID }
        storageAccountId        = @{ value = $env:AZURE_STORAGE_ACCOUNT_ID }
        deadLetterContainerName = @{ value = $env:CERTRENEW_DEAD_LETTER_CONTAINER }
        tags                    = @{ value = @{ 'azd-env-name' = $env:AZURE_ENV_NAME } }
    }
}
$parametersFile = New-TemporaryFile
try {
    $parameters | ConvertTo-Json -Depth 10 | Set-Content -Path $parametersFile -Encoding utf8
    Write-Host "postdeploy: deploying infra/vaults.bicep as deployment certrenew-vaults-$env:AZURE_ENV_NAME."
    az deployment sub create `
        --subscription $env:AZURE_SUBSCRIPTION_ID `
        --name "certrenew-vaults-$env:AZURE_ENV_NAME" `
        --location $env:AZURE_LOCATION `
        --template-file infra/vaults.bicep `
        --parameters "@$parametersFile" `
        --only-show-errors `
        --output none
    if ($LASTEXITCODE -ne 0) {
        Write-Error "postdeploy: the deployment of infra/vaults.bicep failed. Fix the error above, then run 'azd hooks run postdeploy'."
    }
}
finally {
    Remove-Item -Path $parametersFile -ErrorAction SilentlyContinue
}
Write-Host 'postdeploy: Key Vault events now reach the function app.'
