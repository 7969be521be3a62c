// Storage Blob Data Contributor for one system topic's identity on the dead-letter container only, so Event
// Grid can write the events it gave up on without any access to the rest of the account.

@description('Required. Name of the storage account that holds the dead-letter container.')
param storageAccountName string

@description('Required. Name of the dead-letter container.')
param containerName string

@description('Required. Object ID of the system topic\'s identity.')
param topicPrincipalId string

var roleDefinitionIds = loadJsonContent('../roles.json')

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource blobServices 'blobServices' existing = {
    name: 'default'

    resource container 'containers' existing = {
      name: containerName
    }
  }
}

resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount::blobServices::container.id, topicPrincipalId, roleDefinitionIds.storageBlobDataContributor)
  scope: storageAccount::blobServices::container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageBlobDataContributor)
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
  }
}
