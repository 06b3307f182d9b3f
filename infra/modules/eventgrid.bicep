// Event Grid: our custom topic (the watcher publishes BackupResponder.BackupJobFailed there as
// CloudEvents 1.0) and the subscription's system topic (ARM events such as a VM deletion).
// Their event subscriptions, which need the deployed functions, are in
// eventgrid-subscriptions.bicep.

param topicName string
param systemTopicName string
param location string
param tags object

@description('Resource id of the user-assigned identity (identity-based dead-lettering).')
param identityId string

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: topicName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    // Publishing only with Microsoft Entra ID (EventGrid Data Sender, roles.bicep): no keys.
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    //checkov:skip=CKV_AZURE_193:The watcher publishes from the Flex Consumption app, which has no VNet integration here, so the topic keeps its public endpoint; local auth is disabled, only the app's identity may publish.
    publicNetworkAccess: 'Enabled'
  }
}

// A subscription has at most one system topic of type Microsoft.Resources.Subscriptions.
// If one already exists, this deployment fails with a conflict: delete it, or move its
// event subscriptions here (see the README, "Deploy").
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: 'global'
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

output topicName string = topic.name
output topicId string = topic.id
output topicEndpoint string = topic.properties.endpoint
output systemTopicName string = systemTopic.name
