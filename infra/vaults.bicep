// Key Vault side of certificate renewal, deployed by the postdeploy hook with `az deployment sub create`:
// for each vault, the function app's access (a role assignment or an access policy), an Event Grid system
// topic (new, or an existing one reused), the topic's right to write dead letters, and the event subscriptions
// to the two Event Grid functions.
//
// It runs after `azd deploy` because Event Grid validates an AzureFunction endpoint when the subscription is
// created, which fails while the function does not exist yet. It stays out of infra/main.bicep because `azd down`
// deletes every resource group that the provisioning deployment touched, and existing vaults live in resource
// groups that azd must not delete. Every resource here is idempotent, so a second run changes nothing.
targetScope = 'subscription'

@description('Required. Vaults to wire up, each {"name": ..., "resourceGroupName": ...} with optional "useAccessPolicies", "systemTopicName" and "systemTopicResourceGroupName". infra/main.bicep outputs this list as CERTRENEW_VAULT_LIST.')
param vaults array

@description('Required. Resource ID of the function app.')
param functionAppId string

@description('Required. Object ID of the function app\'s user-assigned identity.')
param appPrincipalId string

@description('Required. Resource ID of the storage account that holds the dead-letter container.')
param storageAccountId string

@description('Required. Name of the dead-letter container.')
param deadLetterContainerName string

@description('Optional. Tags of the system topics this deployment creates.')
param tags object = {}

var abbreviations = loadJsonContent('abbreviations.json')
var deploymentSuffix = uniqueString(functionAppId)
var storageResourceGroupName = split(storageAccountId, '/')[4]
var storageAccountName = last(split(storageAccountId, '/'))

var vaultSettings = [
  for vault in vaults: {
    name: vault.name
    resourceGroupName: vault.resourceGroupName
    useAccessPolicies: vault.?useAccessPolicies ?? false
    reuseSystemTopic: !empty(vault.?systemTopicName ?? '')
    systemTopicName: empty(vault.?systemTopicName ?? '') ? '${abbreviations.eventGridSystemTopics}${vault.name}' : vault.systemTopicName
    systemTopicResourceGroupName: empty(vault.?systemTopicResourceGroupName ?? '') ? vault.resourceGroupName : vault.systemTopicResourceGroupName
  }
]

module vaultAccess 'modules/vault-access.bicep' = [
  for (vault, index) in vaultSettings: {
    name: 'certrenew-access-${deploymentSuffix}-${index}'
    scope: resourceGroup(vault.resourceGroupName)
    params: {
      vaultName: vault.name
      useAccessPolicies: vault.useAccessPolicies
      appPrincipalId: appPrincipalId
    }
  }
]

module systemTopics 'modules/system-topic.bicep' = [
  for (vault, index) in vaultSettings: {
    name: 'certrenew-topic-${deploymentSuffix}-${index}'
    scope: resourceGroup(vault.systemTopicResourceGroupName)
    params: {
      name: vault.systemTopicName
      reuseExisting: vault.reuseSystemTopic
      location: vaultAccess[index].outputs.location
      vaultId: vaultAccess[index].outputs.resourceId
      tags: tags
    }
  }
]

module deadLetterAccess 'modules/dead-letter-access.bicep' = [
  for (vault, index) in vaultSettings: {
    name: 'certrenew-deadletter-${deploymentSuffix}-${index}'
    scope: resourceGroup(storageResourceGroupName)
    params: {
      storageAccountName: storageAccountName
      containerName: deadLetterContainerName
      topicPrincipalId: systemTopics[index].outputs.principalId
    }
  }
]

module eventSubscriptions 'modules/event-subscriptions.bicep' = [
  for (vault, index) in vaultSettings: {
    name: 'certrenew-subscriptions-${deploymentSuffix}-${index}'
    scope: resourceGroup(vault.systemTopicResourceGroupName)
    params: {
      systemTopicName: systemTopics[index].outputs.name
      functionAppId: functionAppId
      deadLetterStorageAccountId: storageAccountId
      deadLetterContainerName: deadLetterContainerName
    }
    dependsOn: [
      deadLetterAccess[index]
    ]
  }
]

@description('Event subscriptions created, as "topic/subscription" names.')
output CERTRENEW_EVENT_SUBSCRIPTIONS array = [
  for (vault, index) in vaultSettings: eventSubscriptions[index].outputs.names
]
