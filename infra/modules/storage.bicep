// The app's storage account: the Functions host (AzureWebJobsStorage), the incident tables,
// the retry queue, the Flex Consumption deployment package and Event Grid dead letters.
// Reached only with Microsoft Entra ID (the managed identity): shared keys are disabled.

param name string
param location string
param tags object
@description('Geo-redundant by default: the incident audit trail outlives a regional outage.')
param skuName string = 'Standard_GRS'
param queueNames array
param containerNames array

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    //checkov:skip=CKV_AZURE_35:No VNet here: the Flex app (no VNet integration) and Event Grid dead-lettering reach storage over its public endpoint, with Entra ID only (shared keys off).
    //checkov:skip=CKV_AZURE_59:Same reason: public endpoint needed without VNet integration; anonymous and shared-key access are both disabled.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The poison queue (<name>-poison) is created by the Functions host when it needs one.
resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

// Tables are created by the app itself (IncidentStore.ensure_tables, with TABLE_NAME_PREFIX).
resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
