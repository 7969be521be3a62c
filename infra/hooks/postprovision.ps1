# Set the certificate contacts of every vault. Key Vault keeps contacts in its data plane, which Azure Resource
# Manager cannot write, so this runs after provisioning with the operator's own sign-in.
$ErrorActionPreference = 'Stop'

$vaults = @("$env:CERTRENEW_VAULTS" -split '\s+' | Where-Object { $_ })
$contacts = @("$env:CERTRENEW_CERTIFICATE_CONTACTS" -split '\s+' | Where-Object { $_ })

if ($contacts.Count -eq 0) {
    Write-Host 'postprovision: no certificate contacts given, so the vaults keep theirs.'
    Write-Host "Set them with 'azd env set CERTRENEW_CERTIFICATE_CONTACTS ""ops@contoso.com pki@contoso.com""' and run 'azd provision'."
    exit 0
}

function Get-VaultName([string] $url) {
    return ([Uri] $url).Host.Split('.')[0]
}

if (Get-Command certrenew -ErrorAction SilentlyContinue) {
    foreach ($url in $vaults) {
        $vault = Get-VaultName $url
        Write-Host "postprovision: setting the certificate contacts of vault $vault."
        certrenew contacts set $vault @contacts
        # A failure here must not stop `azd up`: the contacts can be set again at any time.
        if ($LASTEXITCODE -ne 0) {
            Write-Warning ("postprovision: setting the contacts of vault $vault failed. A new role assignment can take a few " +
                "minutes to apply: run 'azd hooks run postprovision' again later.")
        }
    }
    exit 0
}

Write-Host 'postprovision: the certrenew command is not installed here, so the contacts are not set.'
Write-Host "Run these commands, signed in as someone who may manage the vaults' certificate contacts:"
foreach ($url in $vaults) {
    $vault = Get-VaultName $url
    foreach ($email in $contacts) {
        Write-Host "  az keyvault certificate contact add --vault-name $vault --email $email"
    }
}
