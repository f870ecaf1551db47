// Everything exo-gateway runs on, in one resource group. The app settings block of the Function
// App below is checked against the settings the code reads by test/infra/infra.test.ts: keep
// one `NAME: value` per line.

param location string
param tags object
param resourceToken string
param principalId string
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string
param alertEmail string
param gatewayApiAudiences string
param gatewayAuthTenants string
param tenantsFile string
param policyFile string
param rulesFile string
@secure()
param eventsClientState string
param eventsAadAudience string
param logLevel string
param maximumInstanceCount int
param instanceMemoryMB int
param nodeVersion string
param portalClientId string
param parameterSealingKeyName string
param onboardingAppId string
param delegationClientId string
param delegationClientSecretName string

// Names the app uses (app settings below) and the storage it creates for them.
var commandsQueue = 'exo-commands'
var commandsTable = 'commands'
var auditTable = 'audit'
// User events (docs/events.md): queue of received events and the events/snapshots table.
var eventsQueue = 'exo-events'
var eventsTable = 'events'
// Flex Consumption mounts the deployment package here (read-only); config files travel in it.
var appRoot = '/home/site/wwwroot'

var functionAppName = 'func-exo-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 12)}'

// Built-in role definition ids (least privilege for the gateway's identity).
var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // read certificate secrets (PFX/PEM with the key) and client secrets
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // commands queue + poison queue, queue triggers
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // commands, idempotency keys, audit trail
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // tenant-slot leases, results, host locks, deployment package
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Application Insights with Entra ID auth
  keyVaultCertificatesOfficer: 'a4417e6f-fecd-4de8-b567-7b0420556985' // deploying user: import the Exchange app certificate
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // deploying user: store a client secret
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-exo-${resourceToken}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------- storage (no keys)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stexo${take(resourceToken, 19)}'
  location: location
  tags: tags
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
}

resource resultsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'command-results'
}

resource slotsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'tenant-slots'
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource commandsQueueResource 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: commandsQueue
}

resource poisonQueueResource 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${commandsQueue}-poison'
}

resource eventsQueueResource 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: eventsQueue
}

resource eventsPoisonQueueResource 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${eventsQueue}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource commandsTableResource 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: commandsTable
}

resource auditTableResource 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: auditTable
}

resource eventsTableResource 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: eventsTable
}

// ---------------------------------------------------------------- Key Vault (RBAC, no access policies)

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-exo-${take(resourceToken, 17)}'
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Purge protection cannot be turned off again, and a deleted vault cannot be purged before the 90 days are
    // over: after `azd down` (with or without --purge) the vault name stays taken. Recover it, or use another
    // environment name (docs/operations.md#tearing-down-and-purge-protection).
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

// ---------------------------------------------------------------- monitoring

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-exo-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

// Key Vault audit (every secret and certificate read: AuditEvent) and storage writes/deletes to the workspace. StorageRead
// is left out: the queue triggers poll every few seconds from every instance, so it would be most of the bill.
resource keyVaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: keyVault
  properties: {
    workspaceId: logAnalytics.id
    logs: [{ category: 'AuditEvent', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

resource storageDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage
  properties: {
    workspaceId: logAnalytics.id
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalytics.id
    logs: [{ category: 'StorageWrite', enabled: true }, { category: 'StorageDelete', enabled: true }]
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalytics.id
    logs: [{ category: 'StorageWrite', enabled: true }, { category: 'StorageDelete', enabled: true }]
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalytics.id
    logs: [{ category: 'StorageWrite', enabled: true }, { category: 'StorageDelete', enabled: true }]
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-exo-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------- alerts (log search rules on the workspace)

// The app's log lines and metrics reach the workspace through Application Insights (AppTraces with their fields in
// Properties, AppMetrics, AppRequests for function invocations); docs/operations.md#alerts-worth-setting explains each.
var alertThresholds = {
  certificateDaysLeft: 14 // below this many days the certificate alert fires (the app warns from CERT_EXPIRY_WARNING_DAYS)
  throttledPercent: 10 // share of a tenant's Exchange requests answered with throttling, over 15 minutes
}

resource alertActionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-exo-${resourceToken}'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'exo-gateway'
    enabled: true
    emailReceivers: [{ name: 'operator', emailAddress: alertEmail, useCommonAlertSchema: true }]
  }
}

var alertActions = empty(alertEmail) ? [] : [alertActionGroup.id]

resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: 'alert-exo-poison-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'exo-gateway: poison messages'
    description: 'A command or user event was moved to a poison queue (its message failed maxDequeueCount deliveries) and was failed by the poison handler. docs/operations.md#poison-queue-handling'
    severity: 2
    enabled: true
    scopes: [logAnalytics.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'AppRequests | where Name in ("exoWorkerPoison", "eventsWorkerPoison") | summarize poisoned = count() by functionName = Name'
          timeAggregation: 'Total'
          metricMeasureColumn: 'poisoned'
          dimensions: [{ name: 'functionName', operator: 'Include', values: ['*'] }]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: { actionGroups: alertActions }
  }
}

resource certificateAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: 'alert-exo-certificate-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'exo-gateway: Exchange app certificate expiring'
    description: 'A tenant\'s Exchange app certificate expires within ${alertThresholds.certificateDaysLeft} days, or has expired (the certificateMonitor line certificate_days_left). Rotate it: docs/setup-exchange-app.md.'
    severity: 2
    enabled: true
    scopes: [logAnalytics.id]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT2H'
    criteria: {
      allOf: [
        {
          query: 'AppTraces | where tostring(Properties.metric) == "certificate_days_left" | summarize daysLeft = min(toint(Properties.value)) by domain = tostring(Properties.domain)'
          timeAggregation: 'Minimum'
          metricMeasureColumn: 'daysLeft'
          dimensions: [{ name: 'domain', operator: 'Include', values: ['*'] }]
          operator: 'LessThan'
          threshold: alertThresholds.certificateDaysLeft
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: { actionGroups: alertActions }
  }
}

resource throttlingAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: 'alert-exo-throttling-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'exo-gateway: Exchange throttling'
    description: 'More than ${alertThresholds.throttledPercent}% of a tenant\'s Exchange requests were throttled (exo_gateway.exchange.throttled against exo_gateway.exchange.duration) over 15 minutes: commands are deferred and queue up. docs/operations.md#alerts-worth-setting'
    severity: 3
    enabled: true
    scopes: [logAnalytics.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'AppMetrics | where Name in ("exo_gateway.exchange.throttled", "exo_gateway.exchange.duration") | extend tenant = tostring(Properties["exo.tenant_id"]) | summarize throttled = sumif(Sum, Name == "exo_gateway.exchange.throttled"), requests = sumif(ItemCount, Name == "exo_gateway.exchange.duration") by tenant | where requests > 0 | extend throttledPercent = 100.0 * throttled / requests'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'throttledPercent'
          dimensions: [{ name: 'tenant', operator: 'Include', values: ['*'] }]
          operator: 'GreaterThan'
          threshold: alertThresholds.throttledPercent
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: { actionGroups: alertActions }
  }
}

// ---------------------------------------------------------------- role assignments (the gateway's identity)

resource queueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource blobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource keyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, identity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The deploying principal may put the Exchange app credential into the vault (docs/setup-exchange-app.md): a
// person (principalType User) or a CI pipeline's service principal (ServicePrincipal, AZURE_PRINCIPAL_TYPE).
resource deployerCertificatesRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(keyVault.id, principalId, roles.keyVaultCertificatesOfficer)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCertificatesOfficer)
    principalId: principalId
    principalType: principalType
  }
}

resource deployerSecretsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(keyVault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: principalType
  }
}

// ---------------------------------------------------------------- Function App (Flex Consumption)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-exo-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  // azd finds the app it deploys `services.api` to by this tag (azure.yaml).
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: { minTlsVersion: '1.2' }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
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
        name: 'node'
        version: nodeVersion
      }
    }
  }
  dependsOn: [queueRole, tableRole, blobRole, keyVaultRole, metricsRole, deploymentContainer]

  resource appSettings 'config' = {
    name: 'appsettings'
    properties: {
      // Storage: identity-based, no keys (shared/config/storage-connection.ts; the host's triggers read the same names).
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identity.properties.clientId
      // DefaultAzureCredential (Key Vault) picks the user-assigned identity by this.
      AZURE_CLIENT_ID: identity.properties.clientId
      APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
      // The app's own settings (shared/config/settings.ts).
      // Tenants and policy are data (docs/tenants.md, docs/policy.md): the table and the blob are
      // edited through /api/tenants and /api/policy; the packaged files only seed them.
      TENANTS_FILE: '${appRoot}/${tenantsFile}'
      TENANTS_TABLE: 'tenants'
      POLICY_FILE: '${appRoot}/${policyFile}'
      POLICY_BLOB: 'config/policy.yaml'
      RULES_FILE: empty(rulesFile) ? '' : '${appRoot}/${rulesFile}'
      EVENTS_CLIENT_STATE: eventsClientState
      EVENTS_AAD_AUDIENCE: eventsAadAudience
      COMMANDS_QUEUE: commandsQueue
      COMMANDS_TABLE: commandsTable
      AUDIT_TABLE: auditTable
      GATEWAY_AUTH: 'entra'
      GATEWAY_API_AUDIENCES: gatewayApiAudiences
      GATEWAY_AUTH_TENANTS: gatewayAuthTenants
      LOG_LEVEL: logLevel
      CERT_REFRESH_INTERVAL_MINUTES: '15'
      CERT_EXPIRY_WARNING_DAYS: '30'
      // Event rules: set RULES_FILE (a file in the package, e.g. config/rules.yaml) to turn them on; Event Grid deliveries
      // need Entra tokens for EVENTS_AAD_AUDIENCE, Graph notifications the EVENTS_CLIENT_STATE (docs/events.md).
      EVENTS_QUEUE: eventsQueue
      EVENTS_TABLE: eventsTable
      // Self-service portal (docs/portal.md): the portal app registration; empty leaves it off.
      PORTAL_CLIENT_ID: portalClientId
      // Secret cmdlet parameters sealed at rest with a key in this vault (docs/security.md); empty: such commands are refused.
      PARAMETER_SEALING_KEY_URL: empty(parameterSealingKeyName) ? '' : '${keyVault.properties.vaultUri}secrets/${parameterSealingKeyName}'
      // Set here, not by hand: this resource replaces every app setting on each provision (a setting
      // added with `az functionapp config appsettings set` is gone after the next `azd provision`).
      // Onboarding (docs/tenants.md): the app customers consent to trusts this identity (its federated credential).
      ONBOARDING_APP_ID: onboardingAppId
      ONBOARDING_MANAGED_IDENTITY_CLIENT_ID: empty(onboardingAppId) ? '' : identity.properties.clientId
      // Delegated mode (docs/delegated.md): the gateway API app and its client secret in this vault.
      DELEGATION_CLIENT_ID: delegationClientId
      DELEGATION_CLIENT_SECRET_URL: empty(delegationClientSecretName) ? '' : '${keyVault.properties.vaultUri}secrets/${delegationClientSecretName}'
    }
  }
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output keyVaultName string = keyVault.name
output keyVaultUri string = keyVault.properties.vaultUri
output storageAccountName string = storage.name
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output applicationInsightsName string = appInsights.name
output logAnalyticsWorkspaceName string = logAnalytics.name
