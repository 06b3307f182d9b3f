// The app's control-plane role on every Recovery Services vault and VM of the subscription
// (the watcher covers all vaults, so the scope is the subscription).
//
// Least privilege: a custom role listing exactly the Azure operations the app makes
// (sandbox/simulator/routes.py mirrors them; error-codes.md §3) and nothing else:
//   * the built-in "Backup Contributor" grants protectionContainers/* (so also
//     protectedItems/delete: stop protection AND DELETE the backup data), backup policies,
//     vault writes, restores and more;
//   * "Backup Operator" cannot delete data but can still restore (recoveryPoints/restore,
//     i.e. write VMs and disks anywhere the vault can) and re-register containers;
//   * "Reader" at subscription scope would let the app read the configuration of every
//     resource of the subscription, where it needs vaults, jobs and VMs only.
// This role has no delete action at all (tests/test_infra.py checks it): the app can never
// delete backup data, whatever its code does.
targetScope = 'subscription'

param principalId string

var actions = [
  // watch_backup_jobs: list the subscription's vaults; stop protection: GET the vault (its
  // Multi-User Authorization setting).
  'Microsoft.RecoveryServices/Vaults/read'
  // stop protection: read the vault's Resource Guard mapping (does a guard protect the stop?).
  'Microsoft.RecoveryServices/Vaults/backupResourceGuardProxies/read'
  // watcher and verify: list failed jobs, GET job details.
  'Microsoft.RecoveryServices/Vaults/backupJobs/read'
  // verify: list a vault's protected items (newer successful backup, job in progress).
  'Microsoft.RecoveryServices/Vaults/backupProtectedItems/read'
  // verify and stop protection: GET the protected item (source VM, protection state).
  'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/read'
  // retry: trigger an on-demand backup (POST …/protectedItems/{item}/backup).
  'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/backup/action'
  // stop protection, retain data: PUT the protected item with protectionState ProtectionStopped.
  'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/write'
  // follow the retry / stop-protection long-running operations (Azure-AsyncOperation, Location).
  'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/operationsStatus/read'
  'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/operationResults/read'
  'Microsoft.RecoveryServices/Vaults/backupOperations/read'
  // orphan sweep: count the recovery points an orphaned item keeps (what a stop retains).
  'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/recoveryPoints/read'
  // verify: GET the VM (404 = deleted) and list VMs (a moved VM is found elsewhere).
  'Microsoft.Compute/virtualMachines/read'
  // SQL and SAP HANA in Azure VMs: GET a workload container (its host VM's id).
  'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/read'
  // Azure Files: GET the storage account (404 = deleted) and list its shares with the
  // soft-deleted ones (a soft-deleted share is never taken for gone).
  'Microsoft.Storage/storageAccounts/read'
  'Microsoft.Storage/storageAccounts/fileServices/shares/read'
]

// One definition per subscription (deterministic name); every environment in the
// subscription shares it. The role name must be unique in the tenant, hence the id in it.
resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'backup-responder-operator')
  properties: {
    roleName: 'Backup Responder Operator (${subscription().subscriptionId})'
    description: 'backup-responder: read vaults, jobs, VMs, workload containers, storage accounts and shares; retry backups; stop protection keeping the data. Cannot delete backup data.'
    type: 'CustomRole'
    permissions: [
      {
        actions: actions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// Every vault and VM of the subscription: retry, stop protection (retain data), read.
resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, role.id)
  properties: {
    roleDefinitionId: role.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output roleDefinitionId string = role.id
