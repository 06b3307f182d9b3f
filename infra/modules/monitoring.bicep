// Log Analytics workspace and workspace-based Application Insights.

param workspaceName string
param appInsightsName string
param location string
param tags object

@minValue(30)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

// Local (connection-string) ingestion stays on: the app exports telemetry with
// APPLICATIONINSIGHTS_CONNECTION_STRING (handlers/settings.py). The string only allows
// writing telemetry into this component, never reading it.
resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
  }
}

output workspaceId string = workspace.id
output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString
