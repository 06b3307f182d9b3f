// Route Azure Backup's built-in "Backup Failure" alerts (Azure Monitor, common alert schema)
// to on_backup_alert: an alert processing rule over the whole subscription adds our action
// group to every such alert, whatever vault raised it.
//
// Receiver: an Azure Function receiver (not a plain webhook) with the common alert schema.
// Both post to the HTTP trigger with its function key in the URL (Azure Monitor has no other
// way to authenticate to a function-key endpoint; a secure webhook would need an Entra app
// registration and App Service authentication in front of the app). The function receiver
// is Azure Monitor's documented action for Functions and names the function app and the
// function, so the action group shows what it calls. The key is on_backup_alert's own
// function key (listKeys fails the deployment if the function is missing), not the host
// key: whoever can read the action group can call that one function only. Second phase:
// the key exists once the code is deployed.

param actionGroupName string
param alertProcessingRuleName string
param tags object
param functionAppName string

@description('Alert rule names to route (the built-in Azure Backup job-failure alert).')
param alertRuleNames array

param functionName string = 'on_backup_alert'
param route string = 'alerts/backup'

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

var functionId = '${functionApp.id}/functions/${functionName}'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'bkresponder'
    enabled: true
    azureFunctionReceivers: [
      {
        name: 'on_backup_alert'
        functionAppResourceId: functionApp.id
        functionName: functionName
        httpTriggerUrl: 'https://${functionApp.properties.defaultHostName}/api/${route}?code=${listKeys(functionId, '2024-04-01').default}'
        useCommonAlertSchema: true
      }
    ]
  }
}

resource alertProcessingRule 'Microsoft.AlertsManagement/actionRules@2021-08-08' = {
  name: alertProcessingRuleName
  location: 'Global'
  tags: tags
  properties: {
    description: 'Azure Backup job-failure alerts of every Recovery Services vault of the subscription -> backup-responder (on_backup_alert).'
    enabled: true
    scopes: [
      subscription().id
    ]
    conditions: [
      {
        field: 'TargetResourceType'
        operator: 'Equals'
        values: [
          'microsoft.recoveryservices/vaults'
        ]
      }
      {
        field: 'AlertRuleName'
        operator: 'Equals'
        values: alertRuleNames
      }
    ]
    actions: [
      {
        actionType: 'AddActionGroups'
        actionGroupIds: [
          actionGroup.id
        ]
      }
    ]
  }
}

output actionGroupId string = actionGroup.id
output alertProcessingRuleId string = alertProcessingRule.id
