// Session-only secret store, used when no OS keychain answers (and in tests). Values live in this
// process's memory and are gone when it exits; the status tells the UI to say so.
import type { KeychainStatus } from '@shared/domain';
import type { SecretStore } from './types';

export class MemorySecretStore implements SecretStore {
  private readonly values = new Map<string, string>();

  constructor(readonly status: KeychainStatus = { available: false, backend: 'memory', reason: 'In-memory store' }) {}

  async get(account: string): Promise<string | null> {
    return this.values.get(account) ?? null;
  }

  async set(account: string, value: string): Promise<void> {
    this.values.set(account, value);
  }

  async delete(account: string): Promise<boolean> {
    return this.values.delete(account);
  }
}
