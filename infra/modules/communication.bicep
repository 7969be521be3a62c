// Azure Communication Services with an Email Communication Service: an Azure-managed domain that can send at
// once, an optional custom domain that is linked once its DNS records are verified, and a custom role that lets
// the function app's identity send email and nothing else.

@description('Required. Name of the Communication Services resource.')
param communicationServiceName string

@description('Required. Name of the Email Communication Service resource.')
param emailServiceName string

@description('Optional. Geography where both resources store their data at rest.')
param dataLocation string = 'United States'

@description('Optional. Tags of the resources.')
param tags object = {}

@description('Optional. Custom domain to send from. Empty sends from the Azure-managed domain only.')
param customDomainName string = ''

@description('Optional. True once the custom domain\'s DNS records are verified, which Communication Services requires before it links the domain.')
param customDomainVerified bool = false

@description('Optional. Local part of the sender address.')
param senderUsername string = 'DoNotReply'

@description('Required. Object ID of the function app\'s identity, which gets the email sender role on the Communication Services resource.')
param appPrincipalId string

var useCustomDomain = !empty(customDomainName) && customDomainVerified

// Sending email with a Microsoft Entra token is authorized by these control-plane actions on the Communication
// Services resource (the documented least-privilege set). The built-in Communication and Email Service Owner role
// (09976791-48a7-449e-bb21-39d1a415f350) would also allow listing the access keys.
var emailSenderActions = [
  'Microsoft.Communication/CommunicationServices/Read'
  'Microsoft.Communication/CommunicationServices/Write'
  'Microsoft.Communication/EmailServices/write'
]

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  // Azure-managed domains must carry this name.
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource customDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = if (!empty(customDomainName)) {
  parent: emailService
  name: empty(customDomainName) ? 'unused' : customDomainName
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'CustomerManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: useCustomDomain ? [managedDomain.id, customDomain.id] : [managedDomain.id]
  }
}

resource emailSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'certrenew-email-sender')
  properties: {
    // Role names are unique in the tenant, so the name carries a hash of this resource group.
    roleName: 'CertRenew Email Sender ${uniqueString(resourceGroup().id)}'
    description: 'Sends email through the Communication Services resources of one certrenew deployment.'
    type: 'CustomRole'
    permissions: [
      {
        actions: emailSenderActions
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource appEmailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, appPrincipalId, emailSenderRole.id)
  scope: communicationService
  properties: {
    roleDefinitionId: emailSenderRole.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

@description('Name of the Communication Services resource.')
output name string = communicationService.name

@description('Endpoint that the email client sends to.')
output endpoint string = 'https://${communicationService.properties.hostName}'

@description('Sender address on the linked domain that the notices go out from.')
output senderAddress string = '${senderUsername}@${useCustomDomain ? customDomain.properties.mailFromSenderDomain : managedDomain.properties.mailFromSenderDomain}'

@description('DNS records that verify the custom domain, empty without one. They are public DNS data, not secrets.')
output customDomainVerificationRecords object = empty(customDomainName) ? {} : customDomain.properties.verificationRecords
