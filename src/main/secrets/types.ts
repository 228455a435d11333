// Where secrets live. The OS keychain (keytar) when it answers; otherwise memory for this session
// only, and the UI says so. Nothing here ever writes a secret to disk or logs one.
import type { KeychainStatus } from '@shared/domain';

export interface SecretStore {
  readonly status: KeychainStatus;
  get(account: string): Promise<string | null>;
  set(account: string, value: string): Promise<void>;
  delete(account: string): Promise<boolean>;
}

/** Keychain service name under which every secret of the app is stored. */
export const SECRET_SERVICE = 'kube-etcd-switch';

/** Account names: one per node and kind, so removing a node can remove its secrets. */
export function secretAccount(nodeId: string, kind: 'privateKey' | 'passphrase' | 'password'): string {
  return `node:${nodeId}:${kind}`;
}
