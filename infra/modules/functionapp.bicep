// The Function App: Linux, Python 3.11, Flex Consumption (FC1, the plan azd's Functions
// templates use; Linux Consumption Y1 gets no new features and retires in 2028), running as
// the user-assigned identity with identity-based connections only.
//
// App settings: every setting of handlers/settings.py SPECS that is not local_only, plus the
// host's own AzureWebJobsStorage__* keys; tests/test_infra.py keeps this list and SPECS in
// step. Flex Consumption takes the runtime from functionAppConfig and rejects the old
// FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION / WEBSITE_RUN_FROM_PACKAGE settings.

param planName string
param appName string
param location string
param tags object
param identityId string
param identityClientId string
param storageName string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param deploymentContainerName string

@minValue(40)
@maxValue(1000)
@description('Flex Consumption maximum instance count: the plan accepts 40 to 1000.')
param maximumInstanceCount int

param instanceMemoryMB int

@secure()
param appInsightsConnectionString string

@description('App setting values, already rendered as strings (see main.bicep).')
param settings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    //checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption exists only in some regions and needs always-ready instances (cost); the app is event-driven with redelivery (Event Grid retries 24 h, queue retries), so a zone outage delays work, it does not lose it.
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  // azd deploys the 'api' service (azure.yaml) to the app with this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    //checkov:skip=CKV_AZURE_222:Event Grid and Azure Monitor action groups deliver to the app's public endpoint (no private delivery for AzureFunction endpoints or action groups); every trigger is key-protected (function keys, Event Grid system key), except the approvals page, whose links carry signed, expiring, single-use tokens instead.
    publicNetworkAccess: 'Enabled'
    //checkov:skip=CKV_AZURE_17:The callers (Event Grid, Azure Monitor action groups) cannot present client certificates; HTTP triggers use function keys.
    clientCertEnabled: false
    // Key Vault references in the app settings are resolved with the user-assigned identity.
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        //checkov:skip=CKV_AZURE_212:Flex Consumption scales per function from zero; always-ready instances would be paid around the clock for a handful of events a day, and every trigger is redelivered if no instance is up yet.
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      //checkov:skip=CKV_AZURE_78:FTP is disabled by the publishing-credentials policy (basicPublishingCredentialsPolicies 'ftp', allow: false, below); Flex Consumption rejects siteConfig.ftpsState (ARM ExtendedCode 51021).
      http20Enabled: true
      remoteDebuggingEnabled: false
      //checkov:skip=CKV_AZURE_213:Functions on Flex Consumption has no App Service health-check probe to configure; the host's health is monitored through Application Insights.
      appSettings: [
        // Host: identity-based AzureWebJobsStorage (no connection string, shared keys are
        // disabled on the account). Read by the Functions host and by run_retry's queue
        // trigger (connection "AzureWebJobsStorage").
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageName
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: blobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: queueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: tableEndpoint
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // App (handlers/settings.py SPECS).
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'TABLE_NAME_PREFIX'
          value: settings.tableNamePrefix
        }
        {
          name: 'DRY_RUN'
          value: settings.dryRun
        }
        {
          name: 'USER_RULES_PATH'
          value: settings.userRulesPath
        }
        {
          name: 'SUBSCRIPTION_IDS'
          value: settings.subscriptionIds
        }
        {
          name: 'CLAIM_LEASE_SECONDS'
          value: settings.claimLeaseSeconds
        }
        {
          name: 'CLAIM_RETENTION_DAYS'
          value: settings.claimRetentionDays
        }
        {
          name: 'AZURE_MANAGEMENT_URL'
          value: settings.managementUrl
        }
        {
          name: 'AZURE_POLL_SECONDS'
          value: settings.azurePollSeconds
        }
        {
          name: 'ARM_READS_PER_SECOND'
          value: settings.armReadsPerSecond
        }
        {
          name: 'ARM_READ_BURST'
          value: settings.armReadBurst
        }
        {
          name: 'DEADLETTER_CONTAINER'
          value: settings.deadLetterContainer
        }
        {
          name: 'RETRY_QUEUE'
          value: settings.retryQueue
        }
        {
          name: 'RETRY_DAILY_CAP'
          value: settings.retryDailyCap
        }
        {
          name: 'RETRY_STAGGER_LIMIT'
          value: settings.retryStaggerLimit
        }
        {
          name: 'RETRY_STAGGER_MINUTES'
          value: settings.retryStaggerMinutes
        }
        {
          name: 'RECOVERY_POINT_EXPIRY_DAYS'
          value: settings.recoveryPointExpiryDays
        }
        {
          name: 'FOLLOW_UP_MINUTES'
          value: settings.followUpMinutes
        }
        {
          name: 'RETRY_LEARN_FAILED_NIGHTS'
          value: settings.retryLearnFailedNights
        }
        {
          name: 'RETRY_LEARN_WINDOW_NIGHTS'
          value: settings.retryLearnWindowNights
        }
        {
          name: 'TICKET_LANGUAGE'
          value: settings.ticketLanguage
        }
        {
          name: 'TICKET_REOPEN_DAYS'
          value: settings.ticketReopenDays
        }
        {
          name: 'TICKET_WEBHOOK_URL'
          value: settings.ticketWebhookUrl
        }
        {
          name: 'SERVICENOW_INSTANCE_URL'
          value: settings.serviceNowInstanceUrl
        }
        {
          name: 'SERVICENOW_USERNAME'
          value: settings.serviceNowUsername
        }
        {
          name: 'SERVICENOW_PASSWORD'
          value: settings.serviceNowPassword
        }
        {
          name: 'AZURE_DEVOPS_ORG_URL'
          value: settings.azureDevOpsOrgUrl
        }
        {
          name: 'AZURE_DEVOPS_PROJECT'
          value: settings.azureDevOpsProject
        }
        {
          name: 'AZURE_DEVOPS_WORK_ITEM_TYPE'
          value: settings.azureDevOpsWorkItemType
        }
        {
          name: 'AZURE_DEVOPS_PAT'
          value: settings.azureDevOpsPat
        }
        {
          name: 'TEAMS_WEBHOOK_URL'
          value: settings.teamsWebhookUrl
        }
        {
          name: 'SLACK_WEBHOOK_URL'
          value: settings.slackWebhookUrl
        }
        {
          name: 'NOTIFY_WEBHOOK_URL'
          value: settings.notifyWebhookUrl
        }
        {
          name: 'NOTIFY_FILTER'
          value: settings.notifyFilter
        }
        {
          name: 'APPROVAL_REQUIRED'
          value: settings.approvalRequired
        }
        {
          name: 'APPROVAL_TIMEOUT_HOURS'
          value: settings.approvalTimeoutHours
        }
        {
          name: 'APPROVAL_SECRET'
          value: settings.approvalSecret
        }
        {
          name: 'APPROVAL_BASE_URL'
          value: settings.approvalBaseUrl
        }
        {
          name: 'WATCH_SCHEDULE'
          value: settings.watchSchedule
        }
        {
          name: 'WATCH_LOOKBACK_HOURS'
          value: settings.watchLookbackHours
        }
        {
          name: 'WATCH_TIME_BUDGET_SECONDS'
          value: settings.watchTimeBudgetSeconds
        }
        {
          name: 'EVENTGRID_TOPIC_ENDPOINT'
          value: settings.eventGridTopicEndpoint
        }
        {
          name: 'SWEEP_SCHEDULE'
          value: settings.sweepSchedule
        }
        {
          name: 'SWEEP_MODE'
          value: settings.sweepMode
        }
        {
          name: 'SWEEP_MAX_ARM_CALLS'
          value: settings.sweepMaxArmCalls
        }
        {
          name: 'SWEEP_TIME_BUDGET_SECONDS'
          value: settings.sweepTimeBudgetSeconds
        }
        {
          name: 'DIGEST_SCHEDULE'
          value: settings.digestSchedule
        }
        {
          name: 'DIGEST_ENABLED'
          value: settings.digestEnabled
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
      ]
    }
  }
}

// No basic-auth (publishing profile) deployments: azd and the Functions tools deploy to
// Flex Consumption with a Microsoft Entra token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = app.id
output name string = app.name
output url string = 'https://${app.properties.defaultHostName}'
