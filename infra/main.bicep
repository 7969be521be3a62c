// Certificate renewal for Azure Key Vault: the resources that `azd provision` creates in the app's resource group.
//
// Everything here lives in one new resource group, because `azd down` deletes every resource group that the
// provisioning deployment touched. The Key Vault side (role assignments or access policies on the vaults, Event
// Grid system topics and their subscriptions) is deployed by infra/vaults.bicep from the postdeploy hook, since
// existing vaults can sit in resource groups that azd must never delete, and since an Event Grid subscription to
// a function fails until the function's code is deployed.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Required. Name of the azd environment. It seeds the resource names and is written to the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Required. Region of the resource group and its regional resources. It must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Optional. Object ID of the person or service principal running azd. When this deployment creates a Key Vault, that principal gets Key Vault Certificates Officer on it so it can set certificate contacts and add certificates. Leave empty to grant nothing.')
param principalId string = ''

@description('Optional. Existing Key Vaults to manage, separated by spaces, each RESOURCE_GROUP/VAULT_NAME followed by any of the options :accesspolicies (the vault uses access policies, not Azure RBAC), :topic=NAME (the vault\'s existing Event Grid system topic) and :topicgroup=RESOURCE_GROUP (that topic\'s resource group, if not the vault\'s). Example: "rg-pki/contoso-certs rg-old/legacy-kv:accesspolicies". Empty creates one vault.')
param existingVaults string = ''

@description('Optional. Email addresses, separated by spaces or commas, that the postprovision hook sets as certificate contacts on every vault. Key Vault contacts cannot be set through Azure Resource Manager.')
param certificateContacts string = ''

@description('Optional. Custom domain to send the emails from, for example notices.contoso.com. Empty uses an Azure-managed domain.')
param emailDomainName string = ''

@description('Optional. True once the DNS records of the custom email domain are verified. Communication Services can only link a verified domain, so until then the emails go out from the Azure-managed domain.')
param emailDomainVerified bool = false

@description('Optional. Geography where Communication Services stores its data at rest, for example "United States" or "Europe".')
param communicationDataLocation string = 'United States'

@description('Optional. Addresses, separated by commas, that receive every notice besides the certificate contacts.')
param emailRecipients string = ''

@description('Optional. Address that receives a notice when no other recipient is left.')
param emailFallback string = ''

@description('Optional. NCRONTAB schedule (six fields, UTC) of the timer that checks pending operations and sweeps the vaults.')
param sweepSchedule string = '0 0 * * * *'

@description('Optional. Name of the table that holds the renewal journal.')
param journalTableName string = 'certrenewjournal'

@description('Optional. When true, the app decides and logs but changes nothing in Key Vault and sends no notices.')
param dryRun bool = false

@minValue(1)
@maxValue(1000)
@description('Optional. Maximum number of instances the Flex Consumption plan scales out to.')
param maximumInstanceCount int = 100

@description('Optional. Days that Log Analytics keeps the function logs.')
param logRetentionInDays int = 30

var abbreviations = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

var resourceGroupName = '${abbreviations.resourcesResourceGroups}${environmentName}'
var functionAppName = '${abbreviations.webSitesFunctions}${resourceToken}'
var newVaultName = '${abbreviations.keyVaultVaults}${resourceToken}'

// A plain-text list instead of JSON, because azd versions before early 2026 break a parameters file whose
// environment value contains double quotes.
var vaultEntries = filter(split(trim(existingVaults), ' '), entry => !empty(entry))
var requestedVaults = [
  for entry in vaultEntries: {
    resourceGroupName: split(split(entry, ':')[0], '/')[0]
    name: split(split(entry, ':')[0], '/')[1]
    useAccessPolicies: contains(split(entry, ':'), 'accesspolicies')
    systemTopicName: replace(first(filter(split(entry, ':'), option => startsWith(option, 'topic='))) ?? '', 'topic=', '')
    systemTopicResourceGroupName: replace(first(filter(split(entry, ':'), option => startsWith(option, 'topicgroup='))) ?? '', 'topicgroup=', '')
  }
]
var createVault = empty(requestedVaults)
var newVaults = [
  {
    resourceGroupName: resourceGroupName
    name: newVaultName
    useAccessPolicies: false
    systemTopicName: ''
    systemTopicResourceGroupName: ''
  }
]
var vaults = createVault ? newVaults : requestedVaults
var vaultUrls = [for vault in vaults: 'https://${vault.name}${environment().suffixes.keyvaultDns}']
var contacts = filter(split(replace(certificateContacts, ',', ' '), ' '), contact => !empty(contact))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbreviations.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbreviations.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbreviations.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    logRetentionInDays: logRetentionInDays
    appPrincipalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbreviations.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${take(functionAppName, 32)}'
    journalTableName: journalTableName
    appPrincipalId: identity.outputs.principalId
  }
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    communicationServiceName: '${abbreviations.communicationCommunicationServices}${resourceToken}'
    emailServiceName: '${abbreviations.communicationEmailServices}${resourceToken}'
    dataLocation: communicationDataLocation
    tags: tags
    customDomainName: emailDomainName
    customDomainVerified: emailDomainVerified
    appPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'modules/key-vault.bicep' = if (createVault) {
  name: 'key-vault'
  scope: rg
  params: {
    name: newVaultName
    location: location
    tags: tags
    operatorPrincipalId: principalId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbreviations.webServerFarms}${resourceToken}'
    location: location
    tags: union(tags, {
      'azd-service-name': 'certrenew'
    })
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    maximumInstanceCount: maximumInstanceCount
    certrenewSettings: {
      CERTRENEW_VAULTS: join(vaultUrls, ' ')
      CERTRENEW_SWEEP_SCHEDULE: sweepSchedule
      CERTRENEW_JOURNAL: 'table'
      CERTRENEW_JOURNAL_TABLE: storage.outputs.journalTableName
      CERTRENEW_ACS_ENDPOINT: communication.outputs.endpoint
      CERTRENEW_EMAIL_SENDER: communication.outputs.senderAddress
      CERTRENEW_EMAIL_RECIPIENTS: emailRecipients
      CERTRENEW_EMAIL_FALLBACK: emailFallback
      CERTRENEW_DRY_RUN: string(dryRun)
    }
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.resourceId
output AZURE_APP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_APP_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.resourceId
output AZURE_COMMUNICATION_SERVICE_NAME string = communication.outputs.name
output CERTRENEW_DEAD_LETTER_CONTAINER string = storage.outputs.deadLetterContainerName
output CERTRENEW_VAULTS string = join(vaultUrls, ' ')
// The list that infra/vaults.bicep iterates over: the existing vaults, or the one created here.
output CERTRENEW_VAULT_LIST array = vaults
output CERTRENEW_CERTIFICATE_CONTACTS string = join(contacts, ' ')
output CERTRENEW_ACS_ENDPOINT string = communication.outputs.endpoint
output CERTRENEW_EMAIL_SENDER string = communication.outputs.senderAddress
output CERTRENEW_EMAIL_DOMAIN_RECORDS object = communication.outputs.customDomainVerificationRecords
