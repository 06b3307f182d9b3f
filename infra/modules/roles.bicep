// Data-plane roles of the app's identity, each on the one resource it needs. Names are
// deterministic GUIDs (scope, principal, role), so redeploying never duplicates them.
// The control-plane role on the Recovery Services vaults is in backup-role.bicep.

param principalId string
param storageName string
param topicName string
param vaultName string

// Built-in role definition ids.
var roleIds = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

// Functions host with identity-based AzureWebJobsStorage: host keys and secrets, timer and
// singleton leases (blob); the Flex Consumption deployment package (blob); Event Grid
// dead letters written with this identity (blob). The host documents Blob Data Owner as
// the requirement for AzureWebJobsStorage.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roleIds.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// run_retry's queue trigger (read, delete, and create the -poison queue) and the app's
// delayed retry messages (send). Queue Data Message Sender / Processor together would not
// cover creating the poison queue, so Contributor is the least that works; it is scoped to
// this one account.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roleIds.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The incident store: creates its tables (ensure_tables), inserts, ETag-guarded updates.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roleIds.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// watch_backup_jobs publishes BackupResponder.BackupJobFailed to our topic (local auth off).
resource topicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, roleIds.eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.eventGridDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The platform resolves the app settings' Key Vault references with this identity
// (keyVaultReferenceIdentity): read secret values, nothing else.
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roleIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
