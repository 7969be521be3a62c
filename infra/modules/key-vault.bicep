// Key Vault created when no existing vault is given: Azure RBAC authorization, soft delete and purge protection.
// The function app's access and the vault's Event Grid system topic come from infra/vaults.bicep, like for any
// other vault.

@minLength(3)
@maxLength(24)
@description('Required. Name of the vault.')
param name string

@description('Optional. Region of the vault.')
param location string = resourceGroup().location

@description('Optional. Tags of the vault.')
param tags object = {}

@minValue(7)
@maxValue(90)
@description('Optional. Days that a deleted vault or certificate can be recovered. With purge protection on, the name stays taken for as long.')
param softDeleteRetentionInDays int = 90

@description('Optional. Object ID of the operator, who gets Key Vault Certificates Officer to add certificates and set certificate contacts. Empty grants nothing.')
param operatorPrincipalId string = ''

var roleDefinitionIds = loadJsonContent('../roles.json')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:The function app has no virtual network, so it reaches the vault over the public endpoint. Access is by Azure RBAC only.
  //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource operatorCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, roleDefinitionIds.keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.keyVaultCertificatesOfficer)
    principalId: operatorPrincipalId
  }
}

@description('Name of the vault.')
output name string = vault.name
