// Key Vault (RBAC authorization) for the ticket and notification credentials. The app
// settings hold Key Vault references (@Microsoft.KeyVault(SecretUri=…)), resolved by the
// platform with the app's identity (Key Vault Secrets User, roles.bicep).

param name string
param location string
param tags object

@secure()
@description('Secret name -> value; empty values are not stored.')
param secrets object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    // enablePurgeProtection is left unset (it accepts only true, irreversibly):
    //checkov:skip=CKV_AZURE_110:Every secret here is a copy of a deployment parameter, re-written by each deployment; purge protection would block azd down --purge and a redeploy of the same environment for the retention period. Soft delete stays on.
    //checkov:skip=CKV_AZURE_42:Recoverable through soft delete (7 days); purge protection is off for the reason given for CKV_AZURE_110.
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    //checkov:skip=CKV_AZURE_109:Flex Consumption resolves Key Vault references only from vaults without network restrictions (learn.microsoft.com flex-consumption-plan, Considerations); access is RBAC-only.
    //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: the platform reads the references over the public endpoint.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for item in items(secrets): if (!empty(item.value)) {
    parent: vault
    name: item.key
    properties: {
      //checkov:skip=CKV_AZURE_41:These are third-party credentials (webhook URLs, a password, a PAT) whose lifetime is set by their issuer; an expiry here would silently turn tickets off. Rotation = redeploy with the new value.
      value: item.value
      contentType: 'text/plain'
    }
  }
]

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
