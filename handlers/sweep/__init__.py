"""The orphan sweep: protected Azure VM items whose VM is gone, found before a backup fails.

Deleted VMs whose backup items keep "failing" unseen are what operators ask about most: a VM
deleted while the VM-deleted event was not connected (or lost) leaves an item that is billed
and fails every night. The sweep lists every protected Azure VM item of the configured
subscriptions' vaults, asks ARM for its VM (404 and no VM of that name elsewhere: gone), and
either lists the orphans or stops their protection, data kept, through the same path as the
VM-deleted event: :func:`~handlers.intake.vm_deleted.deleted_vm_failure` → ``respond()`` →
the ``stop_protection`` action, which verifies again, is idempotent and audited.

It is one more way a VM-deleted failure reaches ``respond()``, so it may import
``handlers.intake``, ``handlers.pipeline`` and everything below them.

- :mod:`~handlers.sweep.report`: what one run found (orphans, moved VMs, failed vaults, what
  the budget left unchecked), as JSON and as table rows.
- :mod:`~handlers.sweep.orphans`: the run (``SWEEP_MAX_ARM_CALLS`` bounds it), its timer entry
  (``SWEEP_MODE``) and the ``sweeps`` table row it leaves.
"""
