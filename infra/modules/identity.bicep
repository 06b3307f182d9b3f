// The one user-assigned managed identity the app runs as. The Function App (AzureWebJobsStorage,
// deployment package, Key Vault references, the app's own Azure calls) and the Event Grid
// topics (identity-based dead-lettering) all use it; its roles are in roles.bicep and
// backup-role.bicep.

param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
