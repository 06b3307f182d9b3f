// backup-responder: everything one subscription needs, deployed once per subscription.
//
//   azd up                       (azure.yaml at the repo root; see the README, "Deploy")
//   az deployment sub create --location <region> --template-file infra/main.bicep \
//     --parameters environmentName=<name> location=<region> [connectEventSources=true]
//
// Two phases. Event Grid validates an AzureFunction endpoint when the subscription is
// created, and the action group needs the on_backup_alert function key: both exist only
// once the code is deployed. So the first run (connectEventSources=false) creates the
// resources, the identity and its roles; the code is deployed; the second run
// (connectEventSources=true) connects the sources: the custom topic and the subscription's
// ResourceDeleteSuccess events to their functions, and the "Backup Failure" alerts to
// on_backup_alert. azure.yaml's postdeploy hook does the second run for azd.
//
// The deploying principal needs Owner (or User Access Administrator + Contributor) on the
// subscription: this template creates a custom role definition, role assignments and an
// alert processing rule scoped to the whole subscription.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------
// Deployment
// ---------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Region of the resource group and its resources (one that offers Flex Consumption).')
param location string

@description('Resource group name; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Connect the event sources to the deployed functions (second phase, see above).')
param connectEventSources bool = false

// ---------------------------------------------------------------------------------------
// Behaviour (app settings; meanings in handlers/settings.py and the README)
// ---------------------------------------------------------------------------------------

@description('DRY_RUN: plan and record every action, change nothing in Azure.')
param dryRun bool = true

@allowed([
  'en'
  'ja'
])
@description('TICKET_LANGUAGE: language of remediation text in tickets and notifications.')
param ticketLanguage string = 'en'

@minValue(0)
@maxValue(90)
@description('TICKET_REOPEN_DAYS: a failure whose item and rule had a ticket resolved within this many days reopens it instead of opening a new one (0: always a new ticket); below ServiceNow\'s auto-close.')
param ticketReopenDays int = 7

@description('SUBSCRIPTION_IDS: subscriptions this deployment answers for; empty: this one.')
param subscriptionIds array = []

@description('TABLE_NAME_PREFIX: prefix for every table name (letters and digits).')
param tableNamePrefix string = ''

@description('USER_RULES_PATH: YAML file of your own rules, relative to the app root; empty: none.')
param userRulesPath string = ''

@minValue(60)
@description('CLAIM_LEASE_SECONDS: keep it at or above host.json functionTimeout (300 s).')
param claimLeaseSeconds int = 300

@minValue(1)
@description('CLAIM_RETENTION_DAYS: how long a handled job is remembered (redeliveries only count).')
param claimRetentionDays int = 30

@minValue(0)
@maxValue(60)
@description('AZURE_POLL_SECONDS: seconds between polls of an Azure operation that names no Retry-After.')
param azurePollSeconds int = 10

@minValue(1)
@maxValue(25)
@description('ARM_READS_PER_SECOND: reads a second each instance sends to ARM per subscription (ARM refills about 25).')
param armReadsPerSecond int = 24

@minValue(1)
@maxValue(250)
@description('ARM_READ_BURST: reads sent at once above that rate after a quiet spell (ARM holds 250).')
param armReadBurst int = 50

// Retries

@minLength(3)
@maxLength(63)
@description('RETRY_QUEUE: Storage queue of delayed retries (created here).')
param retryQueueName string = 'backup-retries'

@minValue(1)
@maxValue(9)
@description('RETRY_DAILY_CAP: most on-demand backups per item per UTC day (Azure allows 9).')
param retryDailyCap int = 3

@minValue(1)
@description('RETRY_STAGGER_LIMIT: most retries started per vault within one stagger window.')
param retryStaggerLimit int = 5

@minValue(1)
@description('RETRY_STAGGER_MINUTES: length of the stagger window, minutes.')
param retryStaggerMinutes int = 15

@minValue(1)
@description('RECOVERY_POINT_EXPIRY_DAYS: retention of recovery points made by retries.')
param recoveryPointExpiryDays int = 30

@minValue(1)
@description('FOLLOW_UP_MINUTES: when to check on the backup job a retry started.')
param followUpMinutes int = 60

@minValue(0)
@maxValue(14)
@description('RETRY_LEARN_FAILED_NIGHTS: withhold a retry and escalate with the evidence when retries of the same item and rule did not help on this many of the last RETRY_LEARN_WINDOW_NIGHTS nights (0: off; at most the window).')
param retryLearnFailedNights int = 3

@minValue(1)
@maxValue(14)
@description('RETRY_LEARN_WINDOW_NIGHTS: how many nights before a failure\'s own night retry learning looks at.')
param retryLearnWindowNights int = 4

// Watcher

@description('WATCH_SCHEDULE: NCRONTAB schedule of watch_backup_jobs (six fields); every 2 minutes by default.')
param watchSchedule string = '0 */2 * * * *'

@minValue(1)
@description('WATCH_LOOKBACK_HOURS: how long before a vault\'s checkpoint the watcher lists jobs from; a job running longer than this before it fails is not found by the watcher.')
param watchLookbackHours int = 24

@minValue(1)
@maxValue(280)
@description('WATCH_TIME_BUDGET_SECONDS: how long one watcher run works; below host.json functionTimeout (300 s).')
param watchTimeBudgetSeconds int = 240

// Ticket sinks and notifications. Secrets are @secure(): kept out of deployment history
// and logs, stored in Key Vault, and given to the app as Key Vault references.

@secure()
@description('TICKET_WEBHOOK_URL: generic JSON webhook for tickets (its URL carries a secret).')
param ticketWebhookUrl string = ''

@description('SERVICENOW_INSTANCE_URL, e.g. https://contoso.service-now.com; empty: no ServiceNow.')
param serviceNowInstanceUrl string = ''

@description('SERVICENOW_USERNAME.')
param serviceNowUsername string = ''

@secure()
@description('SERVICENOW_PASSWORD.')
param serviceNowPassword string = ''

@description('AZURE_DEVOPS_ORG_URL, e.g. https://dev.azure.com/contoso; empty: no Azure DevOps.')
param azureDevOpsOrgUrl string = ''

@description('AZURE_DEVOPS_PROJECT.')
param azureDevOpsProject string = ''

@description('AZURE_DEVOPS_WORK_ITEM_TYPE of tickets.')
param azureDevOpsWorkItemType string = 'Issue'

@secure()
@description('AZURE_DEVOPS_PAT: personal access token (Work Items read & write).')
param azureDevOpsPat string = ''

@secure()
@description('TEAMS_WEBHOOK_URL: Teams Workflows webhook (its URL carries a signature).')
param teamsWebhookUrl string = ''

@secure()
@description('SLACK_WEBHOOK_URL: Slack incoming webhook (its URL is the credential).')
param slackWebhookUrl string = ''

@secure()
@description('NOTIFY_WEBHOOK_URL: generic JSON webhook for notifications.')
param notifyWebhookUrl string = ''

@description('NOTIFY_FILTER, e.g. outcome=retry_exhausted,protection_stopped; empty: everything.')
param notifyFilter string = ''

// Approvals: a verified stop protection waits for a person (README, "Approvals").

@description('APPROVAL_REQUIRED: a verified stop protection waits for a person\'s approval.')
param approvalRequired bool = false

@minValue(1)
@maxValue(168)
@description('APPROVAL_TIMEOUT_HOURS: unanswered approvals become escalated tickets after this.')
param approvalTimeoutHours int = 24

@secure()
@description('APPROVAL_SECRET: signs the approval links (32+ characters); required with approvalRequired.')
param approvalSecret string = ''

@description('APPROVAL_BASE_URL: where approval links point; empty: the app\'s own host name.')
param approvalBaseUrl string = ''

// Orphan sweep and morning digest

@description('SWEEP_SCHEDULE: NCRONTAB schedule of sweep_orphans (six fields); weekly, Mondays 05:00 UTC.')
param sweepSchedule string = '0 0 5 * * 1'

@allowed([
  'off'
  'list'
  'stop'
])
@description('SWEEP_MODE: off; list (find and record protected VM items whose VM is gone); stop (also stop their protection, data kept; only with dryRun=false).')
param sweepMode string = 'off'

@minValue(1)
@description('SWEEP_MAX_ARM_CALLS: most ARM requests one sweep sends (retries and polls count).')
param sweepMaxArmCalls int = 500

@minValue(1)
@maxValue(280)
@description('SWEEP_TIME_BUDGET_SECONDS: how long one sweep starts new steps; below host.json functionTimeout (300 s).')
param sweepTimeBudgetSeconds int = 240

@description('DIGEST_SCHEDULE: NCRONTAB schedule of send_digest (six fields); daily 07:00 UTC, at most one digest per UTC day.')
param digestSchedule string = '0 0 7 * * *'

@description('DIGEST_ENABLED: send the morning digest to the configured chat channels (and keep it in the digests table).')
param digestEnabled bool = true

// Hosting and routing

@minValue(40)
@maxValue(1000)
@description('Flex Consumption maximum instance count, 40 to 1000 (bounds parallel calls to the Backup API).')
param maximumInstanceCount int = 40

@allowed([
  2048
  4096
])
@description('Flex Consumption instance memory, MB.')
param instanceMemoryMB int = 2048

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Storage redundancy of the incident audit trail, the retry queue and dead letters.')
param storageSkuName string = 'Standard_GRS'

@description('Built-in alert names routed to on_backup_alert (Azure Backup "Jobs" alerts).')
param backupAlertRuleNames array = [
  'Backup Failure'
]

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'backup-responder'
}
var names = {
  resourceGroup: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  workspace: 'log-${token}'
  appInsights: 'appi-${token}'
  identity: 'id-backup-responder-${token}'
  storage: 'st${token}'
  vault: 'kv-${token}'
  plan: 'plan-${token}'
  functionApp: 'func-${token}'
  topic: 'evgt-backup-responder-${token}'
  systemTopic: 'evst-subscription-${token}'
  actionGroup: 'ag-backup-responder-${token}'
  alertRule: 'apr-backup-failure-${token}'
}
var deploymentContainerName = 'app-package-${token}'
var deadLetterContainerName = 'eventgrid-deadletter'

// ---------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    skuName: storageSkuName
    queueNames: [
      retryQueueName
    ]
    containerNames: [
      deploymentContainerName
      deadLetterContainerName
    ]
  }
}

module keyvault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.vault
    location: location
    tags: tags
    // Only the non-empty ones become secrets (and Key Vault references).
    secrets: {
      'ticket-webhook-url': ticketWebhookUrl
      'servicenow-password': serviceNowPassword
      'azure-devops-pat': azureDevOpsPat
      'teams-webhook-url': teamsWebhookUrl
      'slack-webhook-url': slackWebhookUrl
      'notify-webhook-url': notifyWebhookUrl
      'approval-secret': approvalSecret
    }
  }
}

module eventgrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    topicName: names.topic
    systemTopicName: names.systemTopic
    location: location
    tags: tags
    identityId: identity.outputs.id
  }
}

// The identity's data-plane roles: storage, the topic, the vault.
module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageName: storage.outputs.name
    topicName: eventgrid.outputs.topicName
    vaultName: keyvault.outputs.name
  }
}

// The identity's control-plane role on every Recovery Services vault and VM of the
// subscription: a custom role that can retry and stop protection but never delete.
module backupRole 'modules/backup-role.bicep' = {
  // A subscription-level deployment name is bound to one region: keep it per environment.
  name: 'backup-role-${token}'
  params: {
    principalId: identity.outputs.principalId
  }
}

// Key Vault reference for a secret that was given, else the empty default.
var vaultUri = keyvault.outputs.uri
var secretSetting = {
  ticketWebhook: empty(ticketWebhookUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/ticket-webhook-url)'
  serviceNowPassword: empty(serviceNowPassword) ? '' : '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/servicenow-password)'
  devOpsPat: empty(azureDevOpsPat) ? '' : '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/azure-devops-pat)'
  teamsWebhook: empty(teamsWebhookUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/teams-webhook-url)'
  slackWebhook: empty(slackWebhookUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/slack-webhook-url)'
  notifyWebhook: empty(notifyWebhookUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/notify-webhook-url)'
  approvalSecret: empty(approvalSecret) ? '' : '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/approval-secret)'
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  // The host must be able to reach storage (and the vault) when it first starts.
  dependsOn: [
    roles
  ]
  params: {
    planName: names.plan
    appName: names.functionApp
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    settings: {
      tableNamePrefix: tableNamePrefix
      dryRun: dryRun ? 'true' : 'false'
      userRulesPath: userRulesPath
      subscriptionIds: join(empty(subscriptionIds) ? [subscription().subscriptionId] : subscriptionIds, ',')
      claimLeaseSeconds: string(claimLeaseSeconds)
      claimRetentionDays: string(claimRetentionDays)
      azurePollSeconds: string(azurePollSeconds)
      armReadsPerSecond: string(armReadsPerSecond)
      armReadBurst: string(armReadBurst)
      deadLetterContainer: deadLetterContainerName
      managementUrl: environment().resourceManager
      retryQueue: retryQueueName
      retryDailyCap: string(retryDailyCap)
      retryStaggerLimit: string(retryStaggerLimit)
      retryStaggerMinutes: string(retryStaggerMinutes)
      recoveryPointExpiryDays: string(recoveryPointExpiryDays)
      followUpMinutes: string(followUpMinutes)
      retryLearnFailedNights: string(retryLearnFailedNights)
      retryLearnWindowNights: string(retryLearnWindowNights)
      ticketLanguage: ticketLanguage
      ticketReopenDays: string(ticketReopenDays)
      ticketWebhookUrl: secretSetting.ticketWebhook
      serviceNowInstanceUrl: serviceNowInstanceUrl
      serviceNowUsername: serviceNowUsername
      serviceNowPassword: secretSetting.serviceNowPassword
      azureDevOpsOrgUrl: azureDevOpsOrgUrl
      azureDevOpsProject: azureDevOpsProject
      azureDevOpsWorkItemType: azureDevOpsWorkItemType
      azureDevOpsPat: secretSetting.devOpsPat
      teamsWebhookUrl: secretSetting.teamsWebhook
      slackWebhookUrl: secretSetting.slackWebhook
      notifyWebhookUrl: secretSetting.notifyWebhook
      notifyFilter: notifyFilter
      approvalRequired: approvalRequired ? 'true' : 'false'
      approvalTimeoutHours: string(approvalTimeoutHours)
      approvalSecret: secretSetting.approvalSecret
      approvalBaseUrl: approvalBaseUrl
      watchSchedule: watchSchedule
      watchLookbackHours: string(watchLookbackHours)
      watchTimeBudgetSeconds: string(watchTimeBudgetSeconds)
      eventGridTopicEndpoint: eventgrid.outputs.topicEndpoint
      sweepSchedule: sweepSchedule
      sweepMode: sweepMode
      sweepMaxArmCalls: string(sweepMaxArmCalls)
      sweepTimeBudgetSeconds: string(sweepTimeBudgetSeconds)
      digestSchedule: digestSchedule
      digestEnabled: digestEnabled ? 'true' : 'false'
    }
  }
}

// Second phase: the functions exist, connect the sources to them.
module subscriptions 'modules/eventgrid-subscriptions.bicep' = if (connectEventSources) {
  name: 'eventgrid-subscriptions'
  scope: rg
  params: {
    topicName: eventgrid.outputs.topicName
    systemTopicName: eventgrid.outputs.systemTopicName
    functionAppId: functionApp.outputs.id
    identityId: identity.outputs.id
    storageId: storage.outputs.id
    deadLetterContainerName: deadLetterContainerName
  }
}

module alerts 'modules/alerts.bicep' = if (connectEventSources) {
  name: 'alerts'
  scope: rg
  params: {
    actionGroupName: names.actionGroup
    alertProcessingRuleName: names.alertRule
    tags: tags
    functionAppName: functionApp.outputs.name
    alertRuleNames: backupAlertRuleNames
  }
}

// ---------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment)
// ---------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyvault.outputs.name
output EVENTGRID_TOPIC_ENDPOINT string = eventgrid.outputs.topicEndpoint
output BACKUP_ROLE_DEFINITION_ID string = backupRole.outputs.roleDefinitionId
