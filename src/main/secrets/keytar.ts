// OS keychain through keytar (libsecret / macOS Keychain / Windows Credential Manager). A locked
// keyring may hang or pop up a prompt, so every call has a deadline: a late keychain must fail a
// request, never freeze the app. Errors carry keytar's message but never the secret value.
import type { KeychainStatus } from '@shared/domain';
import { SECRET_SERVICE, type SecretStore } from './types';

/** The part of keytar's API we use (keeps the dependency swappable in tests). */
export interface KeytarLike {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
}

export class KeychainTimeoutError extends Error {
  constructor(op: string, ms: number) {
    super(`The OS keychain did not answer ${op} within ${ms} ms (is it locked or waiting for a prompt?)`);
    this.name = 'KeychainTimeoutError';
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, op: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new KeychainTimeoutError(op, ms)), ms);
    timer.unref?.();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export class KeytarSecretStore implements SecretStore {
  readonly status: KeychainStatus = { available: true, backend: 'keytar' };

  constructor(
    private readonly keytar: KeytarLike,
    private readonly timeoutMs = 5000,
    private readonly service = SECRET_SERVICE,
  ) {}

  get(account: string): Promise<string | null> {
    return withTimeout(this.keytar.getPassword(this.service, account), this.timeoutMs, 'a read');
  }

  set(account: string, value: string): Promise<void> {
    return withTimeout(this.keytar.setPassword(this.service, account, value), this.timeoutMs, 'a write');
  }

  delete(account: string): Promise<boolean> {
    return withTimeout(this.keytar.deletePassword(this.service, account), this.timeoutMs, 'a delete');
  }
}

/** Load the native keytar module lazily: a missing/broken build must degrade, not crash startup. */
export async function loadKeytar(): Promise<KeytarLike> {
  const mod = (await import('keytar')) as unknown as KeytarLike & { default?: KeytarLike };
  const k = mod.default && typeof mod.default.getPassword === 'function' ? mod.default : mod;
  if (typeof k.getPassword !== 'function') throw new Error('keytar module has no getPassword');
  return k;
}
