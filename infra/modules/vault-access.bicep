// The function app's access to one existing Key Vault, deployed at the vault's resource group: Key Vault
// Certificates Officer for a vault on Azure RBAC, or an access policy for a vault on the access policy model.

@description('Required. Name of the vault.')
param vaultName string

@description('Optional. True when the vault uses access policies instead of Azure RBAC.')
param useAccessPolicies bool = false

@description('Required. Object ID of the function app\'s identity.')
param appPrincipalId string

var roleDefinitionIds = loadJsonContent('../roles.json')

// What the app does in the access policy model, and the permission each step needs:
// get: read certificates, versions, policies and pending operations.
// list: list certificates and their versions in the sweep.
// update: change attributes, tags and policies, and cancel or delete a pending operation.
// create: start a new version, and merge a signed certificate into a pending operation.
// managecontacts: read the vault's certificate contacts, who receive the notices (there is no read-only permission).
// getissuers, listissuers: read the issuer of a policy to tell integrated CAs from other CAs.
// The app never imports, deletes, purges, backs up or restores certificates, so those stay out.
var certificatePermissions = [
  'get'
  'list'
  'update'
  'create'
  'managecontacts'
  'getissuers'
  'listissuers'
]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

// Certificates Officer covers the same operations (certificates/*, certificatecas/*, certificatecontacts/write)
// and is the narrowest built-in role that does. It grants no access to keys or secrets.
resource appCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!useAccessPolicies) {
  name: guid(vault.id, appPrincipalId, roleDefinitionIds.keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.keyVaultCertificatesOfficer)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The name 'add' merges this entry into the vault's access policies instead of replacing them.
resource appAccessPolicy 'Microsoft.KeyVault/vaults/accessPolicies@2023-07-01' = if (useAccessPolicies) {
  parent: vault
  name: 'add'
  properties: {
    accessPolicies: [
      {
        tenantId: subscription().tenantId
        objectId: appPrincipalId
        permissions: {
          certificates: certificatePermissions
        }
      }
    ]
  }
}

@description('Resource ID of the vault.')
output resourceId string = vault.id

@description('Region of the vault, where its system topic must be.')
output location string = vault.location
