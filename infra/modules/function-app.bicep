// Function app on the Flex Consumption plan, running Python 3.11 under a user-assigned managed identity.
// AzureWebJobsStorage, the deployment package and Application Insights all authenticate with that identity, so
// the app settings hold no key or password.

@description('Required. Name of the function app.')
param name string

@description('Required. Name of the Flex Consumption plan.')
param planName string

@description('Optional. Region of the plan and the app.')
param location string = resourceGroup().location

@description('Optional. Tags of the app. azd finds the app to deploy to by its azd-service-name tag.')
param tags object = {}

@description('Required. Name of the user-assigned managed identity that the app runs as.')
param identityName string

@description('Required. Name of the storage account used as AzureWebJobsStorage.')
param storageAccountName string

@description('Required. Name of the blob container in that account that holds the deployment package.')
param deploymentContainerName string

@description('Required. Name of the Application Insights component that receives the telemetry.')
param applicationInsightsName string

@description('Optional. Maximum number of instances the plan scales out to.')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Optional. Memory of each instance in MB.')
param instanceMemoryMB int = 2048

@description('Required. The app\'s own settings (CERTRENEW_*), merged with the platform settings.')
param certrenewSettings object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Identity-based AzureWebJobsStorage. Flex Consumption sets the worker runtime and the Functions version itself
// and rejects FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION as app settings.
var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccount.name
  AzureWebJobsStorage__blobServiceUri: storageAccount.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storageAccount.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storageAccount.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  AZURE_CLIENT_ID: identity.properties.clientId
  // The component has local authentication off, so its connection string only routes telemetry: sending still
  // needs the identity's Entra token, which the authentication string asks for.
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption exists only in some regions, and this template must deploy in any region that offers the plan.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_17:Event Grid delivers to the function's webhook without a client certificate.
  //checkov:skip=CKV_AZURE_222:Event Grid reaches the function over the public endpoint; the app has no virtual network.
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero by design, so there is no minimum instance count.
  //checkov:skip=CKV_AZURE_213:The app serves no HTTP routes that a health check could probe.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// checkov reads every sites/config resource as the 'web' configuration. These checks look for properties that
// only the 'web' configuration has, so they cannot pass on 'appsettings'.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  //checkov:skip=CKV_AZURE_13:Not the 'web' configuration. The only inbound calls are Event Grid deliveries, which App Service authentication would block.
  //checkov:skip=CKV_AZURE_63:Not the 'web' configuration. Flex Consumption sends logs to Application Insights, not to HTTP logs.
  //checkov:skip=CKV_AZURE_65:Not the 'web' configuration, and detailed error pages are for HTTP sites.
  //checkov:skip=CKV_AZURE_66:Not the 'web' configuration. Failed request tracing is an IIS feature that Linux apps lack.
  //checkov:skip=CKV_AZURE_80:Not the 'web' configuration, and the app runs Python, not .NET.
  //checkov:skip=CKV_AZURE_88:Not the 'web' configuration. Flex Consumption deploys from a blob container, not Azure Files.
  //checkov:skip=CKV_AZURE_222:Not the 'web' configuration. Public access is needed for Event Grid (see the same check on the app).
  parent: functionApp
  name: 'appsettings'
  properties: union(platformSettings, certrenewSettings)
}

@description('Name of the function app.')
output name string = functionApp.name

@description('Resource ID of the function app. An Event Grid subscription targets <this>/functions/<function name>.')
output resourceId string = functionApp.id
