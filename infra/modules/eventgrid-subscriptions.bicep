// Event subscriptions to the deployed functions (second phase: Event Grid checks that an
// AzureFunction endpoint exists when the subscription is created).
//
// Delivery: endpoint type AzureFunction (Event Grid fetches the function's system key
// itself and adapts its delivery rate to the function), 30 attempts within 24 hours, then
// dead-lettering to a blob container with the managed identity (no storage key anywhere).

param topicName string
param systemTopicName string
param functionAppId string
param identityId string
param storageId string
param deadLetterContainerName string

param maxDeliveryAttempts int = 30
param eventTimeToLiveInMinutes int = 1440

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

var retryPolicy = {
  maxDeliveryAttempts: maxDeliveryAttempts
  eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
}

// The topic's identity writes dead letters (Storage Blob Data Owner on the account).
var deadLetter = {
  identity: {
    type: 'UserAssigned'
    userAssignedIdentity: identityId
  }
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: {
      resourceId: storageId
      blobContainerName: deadLetterContainerName
    }
  }
}

// BackupResponder.BackupJobFailed (published by watch_backup_jobs) -> on_backup_failure.
resource backupFailures 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'on-backup-failure'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/on_backup_failure'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    filter: {
      includedEventTypes: [
        'BackupResponder.BackupJobFailed'
      ]
    }
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetter
  }
}

// A VM deleted anywhere in the subscription -> on_vm_deleted (stop protection, keep the
// data, before the next scheduled backup fails; the built-in alert is not raised for
// deleted VMs). Event Grid schema, as ARM publishes it.
resource vmDeletions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: systemTopic
  name: 'on-vm-deleted'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/on_vm_deleted'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceDeleteSuccess'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: [
            'Microsoft.Compute/virtualMachines/delete'
          ]
        }
      ]
    }
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetter
  }
}

output backupFailureSubscriptionId string = backupFailures.id
output vmDeletionSubscriptionId string = vmDeletions.id
