// Sentences the plans of restore and switch jobs share, so every plan says the same thing the same way.

/**
 * The plan's plain statement of which etcd the apiservers use when a restore ends: a restore
 * never moves them (the switch does, and "restore … and point the apiservers at it" is a switch
 * with a vault snapshot), so restoring the etcd they do not use leaves it standing by.
 */
export function apiserversAfterRestore(mode: string, restored: 'embedded' | 'external'): string {
  const uses = mode === 'external-up' ? 'external' : mode === 'embedded-up' ? 'embedded' : null;
  if (!uses) return `When the job ends, the apiservers use the etcd their manifests name (the cluster is ${mode}).`;
  if (uses === restored)
    return `When the job ends, the apiservers use the ${restored} etcd, restored from the snapshot.`;
  return `When the job ends, the apiservers still use the ${uses} etcd: the restored ${restored} etcd stands by. To run the cluster on it, restore with "and point the apiservers at it" instead.`;
}
