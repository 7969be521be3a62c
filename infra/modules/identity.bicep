// User-assigned managed identity of the function app. It is created before the app so that every role
// assignment can name it, and so that it survives a redeployment of the app.

@description('Required. Name of the user-assigned managed identity.')
param name string

@description('Optional. Region of the identity.')
param location string = resourceGroup().location

@description('Optional. Tags of the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Name of the identity.')
output name string = identity.name

@description('Resource ID of the identity.')
output resourceId string = identity.id

@description('Object ID of the identity, the principal that role assignments name.')
output principalId string = identity.properties.principalId

@description('Client ID of the identity, which the app passes to DefaultAzureCredential as AZURE_CLIENT_ID.')
output clientId string = identity.properties.clientId
