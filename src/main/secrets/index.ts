// Choose where secrets live: the OS keychain if it answers a probe in time, else session memory
// with the reason (shown to the user: "secrets are kept for this session only because …").
import { KeytarSecretStore, loadKeytar, withTimeout, type KeytarLike } from './keytar';
import { MemorySecretStore } from './memory';
import { SECRET_SERVICE, type SecretStore } from './types';

export { KeytarSecretStore, MemorySecretStore };
export type { KeytarLike };
export { SECRET_SERVICE, secretAccount, type SecretStore } from './types';

export interface CreateSecretStoreOptions {
  /** Deadline for the probe and for every later keychain call (default 3000 ms). */
  timeoutMs?: number;
  /** Force a backend; default from env KES_SECRET_BACKEND ('memory' | 'keytar'), else auto. */
  backend?: 'memory' | 'keytar' | 'auto';
  /** Injected loader (tests); default imports the native 'keytar' module. */
  load?: () => Promise<KeytarLike>;
  /** Keychain service name (tests use a throwaway one). */
  service?: string;
}

/** Account used only to see whether the keychain answers; never holds a value. */
const PROBE_ACCOUNT = '__kes_probe__';

export async function createSecretStore(opts: CreateSecretStoreOptions = {}): Promise<SecretStore> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const forced = opts.backend ?? envBackend();
  if (forced === 'memory') {
    return new MemorySecretStore({
      available: false,
      backend: 'memory',
      reason: 'Keychain disabled (KES_SECRET_BACKEND=memory)',
    });
  }
  try {
    const keytar = await (opts.load ?? loadKeytar)();
    await withTimeout(keytar.getPassword(opts.service ?? SECRET_SERVICE, PROBE_ACCOUNT), timeoutMs, 'the probe');
    return new KeytarSecretStore(keytar, timeoutMs, opts.service ?? SECRET_SERVICE);
  } catch (e) {
    // Asked explicitly for the keychain: failing loudly beats quietly forgetting secrets on exit.
    if (forced === 'keytar') throw e;
    return new MemorySecretStore({
      available: false,
      backend: 'memory',
      reason: `OS keychain unavailable: ${firstLine((e as Error).message)} — secrets are kept in memory for this session only`,
    });
  }
}

function envBackend(): 'memory' | 'keytar' | 'auto' {
  const v = process.env.KES_SECRET_BACKEND;
  return v === 'memory' || v === 'keytar' ? v : 'auto';
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').slice(0, 300);
}
