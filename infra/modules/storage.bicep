// Storage account of the function app: AzureWebJobsStorage for the Functions host, the Flex Consumption
// deployment container, the notice queues, the renewal journal table and the dead-letter container of the
// Event Grid subscriptions. Shared keys are off, so every client authenticates with Microsoft Entra ID.

@minLength(3)
@maxLength(24)
@description('Required. Name of the storage account.')
param name string

@description('Optional. Region of the storage account.')
param location string = resourceGroup().location

@description('Optional. Tags of the storage account.')
param tags object = {}

@description('Required. Name of the blob container that Flex Consumption deploys the app package to.')
param deploymentContainerName string

@description('Optional. Name of the blob container where Event Grid writes the events it could not deliver.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Optional. Name of the queue that the functions write notices to. The app reads this name from its code.')
param noticeQueueName string = 'certrenew-notices'

@description('Optional. Name of the renewal journal table.')
param journalTableName string = 'certrenewjournal'

@description('Required. Object ID of the function app\'s identity, which gets blob, queue and table data roles on the account.')
param appPrincipalId string

var roleDefinitionIds = loadJsonContent('../roles.json')

// The Functions host needs Storage Blob Data Owner on AzureWebJobsStorage (leases and the deployment package),
// the notice queue needs Queue Data Contributor and the journal needs Table Data Contributor.
var appRoles = [
  roleDefinitionIds.storageBlobDataOwner
  roleDefinitionIds.storageQueueDataContributor
  roleDefinitionIds.storageTableDataContributor
]

// Flex Consumption without a virtual network reaches its storage over the public endpoint, and Event Grid
// writes dead letters to it as a trusted service, so the firewall stays open and only Entra ID access is allowed.
resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35:Flex Consumption without virtual network integration reaches the account over its public endpoint.
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35. Shared key access is off, so only Entra ID principals with a data role get in.
  //checkov:skip=CKV_AZURE_206:Locally redundant storage is enough for a work queue, the journal and dead letters. The certificates stay in Key Vault.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobServices 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueServices 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
}

resource noticeQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueServices
  name: noticeQueueName
}

// The Functions host moves a notice here after maxDequeueCount failed attempts (host.json).
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueServices
  name: '${noticeQueueName}-poison'
}

resource tableServices 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
}

resource journalTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableServices
  name: journalTableName
}

resource appStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in appRoles: {
    name: guid(storageAccount.id, appPrincipalId, roleId)
    scope: storageAccount
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

@description('Name of the storage account.')
output name string = storageAccount.name

@description('Resource ID of the storage account.')
output resourceId string = storageAccount.id

@description('Name of the Flex Consumption deployment container.')
output deploymentContainerName string = deploymentContainer.name

@description('Name of the dead-letter container.')
output deadLetterContainerName string = deadLetterContainer.name

@description('Name of the renewal journal table.')
output journalTableName string = journalTable.name
