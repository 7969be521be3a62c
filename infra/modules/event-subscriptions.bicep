// Event Grid subscriptions of one Key Vault system topic to the app's two Event Grid functions. Each function
// receives only the event types it handles (shared/events.py SUBSCRIPTIONS lists the same mapping, and
// tests/infra checks that the two agree).

@description('Required. Name of the vault\'s system topic.')
param systemTopicName string

@description('Required. Resource ID of the function app.')
param functionAppId string

@description('Required. Resource ID of the storage account that receives dead letters.')
param deadLetterStorageAccountId string

@description('Required. Name of the dead-letter container.')
param deadLetterContainerName string

// Event Grid's own defaults, written out so the behaviour does not change if the defaults do: 30 attempts
// with backoff over at most 24 hours, then the event goes to the dead-letter container.
var maxDeliveryAttempts = 30
var eventTimeToLiveInMinutes = 1440

var functionSubscriptions = [
  {
    functionName: 'on_certificate_expiring'
    includedEventTypes: [
      'Microsoft.KeyVault.CertificateNearExpiry'
      'Microsoft.KeyVault.CertificateExpired'
    ]
  }
  {
    functionName: 'on_certificate_version_created'
    includedEventTypes: [
      'Microsoft.KeyVault.CertificateNewVersionCreated'
    ]
  }
]

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

// Subscription names allow letters, digits and hyphens only. The hash of the app keeps two deployments that
// watch the same vault from overwriting each other's subscriptions.
resource subscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = [
  for subscription in functionSubscriptions: {
    parent: systemTopic
    name: take('certrenew-${uniqueString(functionAppId)}-${replace(subscription.functionName, '_', '-')}', 64)
    properties: {
      destination: {
        endpointType: 'AzureFunction'
        properties: {
          resourceId: '${functionAppId}/functions/${subscription.functionName}'
          maxEventsPerBatch: 1
          preferredBatchSizeInKilobytes: 64
        }
      }
      filter: {
        includedEventTypes: subscription.includedEventTypes
      }
      eventDeliverySchema: 'EventGridSchema'
      retryPolicy: {
        maxDeliveryAttempts: maxDeliveryAttempts
        eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
      }
      deadLetterWithResourceIdentity: {
        identity: {
          type: 'SystemAssigned'
        }
        deadLetterDestination: {
          endpointType: 'StorageBlob'
          properties: {
            resourceId: deadLetterStorageAccountId
            blobContainerName: deadLetterContainerName
          }
        }
      }
    }
  }
]

@description('Names of the subscriptions, as "topic/subscription".')
output names array = [for (subscription, index) in functionSubscriptions: '${systemTopicName}/${subscriptions[index].name}']
