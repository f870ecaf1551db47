// The Exchange app of the default credential kind, `federatedIdentity` (docs/setup-exchange-app.md,
// step 3b): one multi-tenant app registration with the Exchange.ManageAsApp application permission
// and a federated identity credential that trusts the gateway's user-assigned managed identity —
// no certificate or secret exists. Made with the Microsoft Graph Bicep extension (generally
// available since July 2025; bicepconfig.json names it); whoever deploys needs permission to
// create app registrations (Application.ReadWrite.All, e.g. the Application Developer role), else
// deploy with createExchangeApp=false and follow the az steps of the guide. Admin consent in each
// customer tenant and the Exchange role of the app's service principal there stay with that
// tenant's admin (guide step 3b.4).
extension microsoftGraphV1

param resourceToken string

@description('Principal (object) id of the gateway managed identity the app trusts (the federated credential subject).')
param identityPrincipalId string

@description('The gateway\'s onboarding callback (https://<function app>/api/onboarding/callback): where Entra ID sends a customer\'s admin back after consent.')
param onboardingRedirectUri string

var exchangeResourceAppId = '00000002-0000-0ff1-ce00-000000000000' // Office 365 Exchange Online
var manageAsAppRoleId = 'dc50a0fb-09a3-484d-be87-e023b12c6440' // Exchange.ManageAsApp
var graphAppId = '00000003-0000-0000-c000-000000000000' // Microsoft Graph
// Delegated, for onboarding's "assign the role for me" (the customer's admin signs in once):
var roleManagementReadWriteDirectoryScopeId = 'd01b97e9-cbc0-49fe-810a-750afd5527a3' // RoleManagement.ReadWrite.Directory
var applicationReadAllScopeId = 'c79f8feb-a9db-4090-85f9-90d820caa0eb' // Application.Read.All
// Audience of a managed identity token used as a federated credential, per cloud
// (learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
var tokenExchangeAudiences = {
  AzureCloud: 'api://AzureADTokenExchange'
  AzureUSGovernment: 'api://AzureADTokenExchangeUSGov'
  AzureChinaCloud: 'api://AzureADTokenExchangeChina'
}

resource exchangeApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: 'exo-gateway-exchange-${resourceToken}'
  displayName: 'exo-gateway-exchange-${resourceToken}'
  signInAudience: 'AzureADMultipleOrgs'
  requiredResourceAccess: [
    {
      resourceAppId: exchangeResourceAppId
      resourceAccess: [{ id: manageAsAppRoleId, type: 'Role' }]
    }
    {
      resourceAppId: graphAppId
      resourceAccess: [
        { id: roleManagementReadWriteDirectoryScopeId, type: 'Scope' }
        { id: applicationReadAllScopeId, type: 'Scope' }
      ]
    }
  ]
  // Onboarding by admin consent comes back here (docs/tenants.md).
  web: {
    redirectUris: [onboardingRedirectUri]
  }

  // Issuer: this tenant's v2.0 authority; subject: the identity's principal id (case-sensitive).
  resource trustsGatewayIdentity 'federatedIdentityCredentials@v1.0' = {
    name: '${exchangeApp.uniqueName}/exo-gateway-managed-identity'
    description: 'The exo-gateway function app managed identity'
    issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
    subject: identityPrincipalId
    audiences: [tokenExchangeAudiences[environment().name]]
  }
}

// Its service principal in this (home) tenant; customer tenants get theirs by admin consent.
resource exchangeAppServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: exchangeApp.appId
}

output appId string = exchangeApp.appId
output servicePrincipalId string = exchangeAppServicePrincipal.id
