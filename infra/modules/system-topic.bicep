// Event Grid system topic of one Key Vault, with a system-assigned identity that writes dead letters.
// A vault can have only one system topic, so an existing one is reused instead of created; it must already
// have a system-assigned identity (`az eventgrid system-topic update --identity systemassigned`).

@description('Required. Name of the system topic.')
param name string

@description('Optional. True to reuse the vault\'s existing system topic of this name instead of creating one.')
param reuseExisting bool = false

@description('Required. Region of the vault, which the system topic must share.')
param location string

@description('Required. Resource ID of the vault whose events the topic publishes.')
param vaultId string

@description('Optional. Tags of a new topic. A reused topic keeps its own.')
param tags object = {}

resource newTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (!reuseExisting) {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: vaultId
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource existingTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = if (reuseExisting) {
  name: name
}

@description('Name of the system topic.')
output name string = name

@description('Object ID of the topic\'s system-assigned identity.')
output principalId string = reuseExisting ? existingTopic.identity.principalId : newTopic.identity.principalId
