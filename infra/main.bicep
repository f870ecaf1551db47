// exo-gateway on Azure (`azd up`): a resource group with everything in infra/resources.bicep —
// Function App on Flex Consumption (Linux, Node 22), storage with identity-based connections
// only, Key Vault (RBAC), a user-assigned managed identity with least-privilege roles,
// Application Insights on Log Analytics. See docs/setup-exchange-app.md and docs/operations.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region with Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the principal running azd (AZURE_PRINCIPAL_ID): may import the Exchange app certificate/secret into Key Vault. Empty: nobody.')
param principalId string = ''

@description('What principalId is (AZURE_PRINCIPAL_TYPE): User for a person running azd, ServicePrincipal for a CI pipeline signed in with azd auth login --client-id or federated credentials, Group for an Entra group. Azure refuses a role assignment whose type does not match the principal.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@description('E-mail address that gets the gateway\'s alerts (poison messages, certificate expiry, Exchange throttling). Empty: the alerts fire in Azure Monitor without notifying anyone.')
param alertEmail string = ''

@minLength(1)
@description('Accepted audiences of caller tokens: the gateway API app id and/or its identifier URI (comma-separated).')
param gatewayApiAudiences string

@description('Tenants whose caller tokens are accepted (comma-separated). Default: this subscription\'s tenant.')
param gatewayAuthTenants string = ''

@description('Tenant registry in the deployment package, relative to the app root (see config/tenants.example.json).')
param tenantsFile string = 'config/tenants.json'

@description('Policy file in the deployment package, relative to the app root (see config/policy.example.yaml).')
param policyFile string = 'config/policy.yaml'

@description('Event rules in the deployment package, relative to the app root (see config/rules.example.yaml). Empty: events are recorded, no rule runs.')
param rulesFile string = ''

@secure()
@description('clientState that Microsoft Graph subscriptions send with every notification (8-128 characters). Required by /api/events/graph (refused while empty); Event Grid deliveries are checked by token (eventsAadAudience).')
param eventsClientState string = ''

@description('Audience of the tokens Event Grid sends with Microsoft Entra protected webhook delivery to /api/events/eventgrid (the app id or app id URI set on the event subscription). Default: the first gatewayApiAudiences entry.')
param eventsAadAudience string = ''

@allowed(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
param logLevel string = 'info'

@description('Self-service portal (/api/portal/): app (client) id of the portal\'s SPA registration. Empty: portal off. See docs/portal.md.')
param portalClientId string = ''

@description('Name of the secret in the app\'s Key Vault holding the 256-bit key (base64) that seals secret cmdlet parameters at rest (create it: az keyvault secret set --name command-sealing-key --value "$(openssl rand -base64 32)"). Empty: commands with passwords are refused. See docs/security.md.')
param parameterSealingKeyName string = ''

@description('Onboarding by admin consent (docs/tenants.md): client id of the multi-tenant app customers consent to — after the first provision, azd env set ONBOARDING_APP_ID "$(azd env get-value AZURE_EXCHANGE_APP_ID)" and provision again. Empty: onboarding off (501).')
param onboardingAppId string = ''

@description('Delegated mode (docs/delegated.md): the gateway API app (client) id that trades users\' tokens on-behalf-of. Set together with delegationClientSecretName. Empty: delegated mode off.')
param delegationClientId string = ''

@description('Name of the secret in the app\'s Key Vault holding that app\'s client secret. Set together with delegationClientId.')
param delegationClientSecretName string = ''

@description('Flex Consumption: the most instances the app scales out to. Per-tenant Exchange caps hold at any count.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

// Node 20 reached end of life in April 2026; the Azure SDK releases the app ships declare Node >= 22:
// add a newer LTS here once Flex Consumption offers it and CI runs the tests on it.
@description('Node.js major version of the Flex Consumption runtime (az functionapp list-flexconsumption-runtimes).')
@allowed(['22'])
param nodeVersion string = '22'

@description('Create the multi-tenant Exchange app with a federated credential trusting the gateway identity (credential kind federatedIdentity, no certificate or secret; needs permission to create app registrations). false: register the Exchange app yourself (docs/setup-exchange-app.md).')
param createExchangeApp bool = true

var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'exo-gateway-resources'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: toLower(uniqueString(subscription().id, environmentName, location))
    principalId: principalId
    principalType: principalType
    alertEmail: alertEmail
    gatewayApiAudiences: gatewayApiAudiences
    gatewayAuthTenants: empty(gatewayAuthTenants) ? tenant().tenantId : gatewayAuthTenants
    tenantsFile: tenantsFile
    policyFile: policyFile
    rulesFile: rulesFile
    eventsClientState: eventsClientState
    eventsAadAudience: empty(eventsAadAudience) ? first(split(gatewayApiAudiences, ',')) : eventsAadAudience
    logLevel: logLevel
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    nodeVersion: nodeVersion
    portalClientId: portalClientId
    parameterSealingKeyName: parameterSealingKeyName
    onboardingAppId: onboardingAppId
    delegationClientId: delegationClientId
    delegationClientSecretName: delegationClientSecretName
  }
}

// The default credential kind: an Exchange app whose only credential is the trust in the gateway identity.
module exchangeApp 'exchange-app.bicep' = if (createExchangeApp) {
  name: 'exo-gateway-exchange-app'
  scope: rg
  params: {
    resourceToken: toLower(uniqueString(subscription().id, environmentName, location))
    identityPrincipalId: resources.outputs.identityPrincipalId
    onboardingRedirectUri: '${resources.outputs.functionAppUrl}/api/onboarding/callback'
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.functionAppName
output AZURE_FUNCTION_APP_URL string = resources.outputs.functionAppUrl
output AZURE_KEY_VAULT_NAME string = resources.outputs.keyVaultName
output AZURE_KEY_VAULT_URI string = resources.outputs.keyVaultUri
output AZURE_STORAGE_ACCOUNT_NAME string = resources.outputs.storageAccountName
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.identityClientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = resources.outputs.identityPrincipalId
output AZURE_EXCHANGE_APP_ID string = createExchangeApp ? exchangeApp!.outputs.appId : ''
output APPLICATIONINSIGHTS_NAME string = resources.outputs.applicationInsightsName
output LOG_ANALYTICS_WORKSPACE_NAME string = resources.outputs.logAnalyticsWorkspaceName
