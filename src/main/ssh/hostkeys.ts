// Our own known-hosts store (known_hosts.json in the data dir): trust on first use, but never
// silently — an unknown or changed key refuses the connection and is remembered as *pending*; the
// user confirms the fingerprint they were shown and only that exact key becomes trusted. The
// renderer only ever sends a fingerprint back, never key material, so it cannot inject a key.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { HostKeyInfo, TrustedHostKey } from '@shared/domain';
import { readJsonFile, writeJsonAtomic } from '../util/jsonfile';
import { fingerprintOf, hostPort, keyTypeOf } from './fingerprint';
import { readKnownHostsFile, type KnownHostEntry } from './knownhosts';
import { SshError } from './types';

export type HostKeyStatus = 'trusted' | 'system' | 'unknown' | 'changed';

export interface HostKeyDecision {
  status: HostKeyStatus;
  /** The key the server presented. */
  presented: HostKeyInfo;
  /** For 'changed': the key we expected. */
  expected?: HostKeyInfo;
}

const FileSchema = z.object({
  version: z.literal(1),
  keys: z.array(
    z.object({
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      keyType: z.string().min(1),
      fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]+$/),
      addedAt: z.string(),
    }),
  ),
});
type StoreFile = z.infer<typeof FileSchema>;

export interface HostKeyStoreOptions {
  /** Also accept keys listed in OpenSSH's known_hosts (status 'system'). */
  readSystemKnownHosts?: boolean;
  /** Default ~/.ssh/known_hosts. */
  systemKnownHostsPath?: string;
}

export const HOST_KEYS_FILE = 'known_hosts.json';

const id = (host: string, port: number) => hostPort(host.toLowerCase(), port);

export class HostKeyStore {
  private keys = new Map<string, TrustedHostKey>();
  private pendingKeys = new Map<string, HostKeyInfo>();
  private system: KnownHostEntry[] = [];
  /** Saves are chained so two quick trusts cannot race their atomic renames. */
  private saving: Promise<void> = Promise.resolve();
  /** Set when the file on disk was unusable: it was moved to `backup` and we started empty. */
  loadProblem: { file: string; backup: string; error: string } | null = null;
  /** Why ~/.ssh/known_hosts could not be read (the fallback is then off). */
  systemProblem: string | null = null;

  private constructor(readonly path: string) {}

  /** `location` is the data dir (the file is `known_hosts.json` in it) or a path ending in `.json`. */
  static async open(location: string, opts: HostKeyStoreOptions = {}): Promise<HostKeyStore> {
    const path = location.endsWith('.json') ? location : join(location, HOST_KEYS_FILE);
    const store = new HostKeyStore(path);
    const loaded = await readJsonFile<StoreFile>(
      path,
      (raw) => FileSchema.parse(raw),
      () => ({ version: 1, keys: [] }),
    );
    if (loaded.status === 'corrupt') store.loadProblem = { file: path, backup: loaded.backup, error: loaded.error };
    for (const k of loaded.value.keys) store.keys.set(id(k.host, k.port), k);
    if (opts.readSystemKnownHosts) await store.setReadSystemKnownHosts(true, opts.systemKnownHostsPath);
    return store;
  }

  /**
   * Turn the ~/.ssh/known_hosts fallback on or off (re-reads the file when turned on). Never
   * rejects: an unreadable file leaves the fallback empty and is reported in `systemProblem`.
   */
  async setReadSystemKnownHosts(on: boolean, path = defaultKnownHostsPath()): Promise<void> {
    this.systemProblem = null;
    try {
      this.system = on ? await readKnownHostsFile(path) : [];
    } catch (e) {
      this.system = [];
      this.systemProblem = `Cannot read ${path}: ${(e as Error).message}`;
    }
  }

  /**
   * Decide about a presented host key (raw SSH wire blob, as ssh2's hostVerifier receives it).
   * Synchronous so it can answer ssh2 directly. Anything not accepted is remembered as pending.
   */
  verify(host: string, port: number, keyBlob: Buffer): HostKeyDecision {
    const presented: HostKeyInfo = { host, port, keyType: keyTypeOf(keyBlob), fingerprint: fingerprintOf(keyBlob) };
    const decision = this.decide(presented);
    if (decision.status === 'unknown' || decision.status === 'changed') this.pendingKeys.set(id(host, port), presented);
    else this.pendingKeys.delete(id(host, port));
    return decision;
  }

  private decide(presented: HostKeyInfo): HostKeyDecision {
    const { host, port } = presented;
    const ours = this.keys.get(id(host, port));
    if (ours) {
      if (ours.fingerprint === presented.fingerprint) return { status: 'trusted', presented };
      return { status: 'changed', presented, expected: strip(ours) };
    }
    const listed = this.system.filter((e) => e.matches(host, port));
    if (listed.some((e) => e.revoked && e.fingerprint === presented.fingerprint)) {
      return { status: 'changed', presented };
    }
    if (listed.some((e) => !e.revoked && e.fingerprint === presented.fingerprint))
      return { status: 'system', presented };
    // Like ssh: only a different key *of the same type* counts as a change; other types are unknown.
    const sameType = listed.find((e) => !e.revoked && e.keyType === presented.keyType);
    if (sameType) {
      return {
        status: 'changed',
        presented,
        expected: { host, port, keyType: sameType.keyType, fingerprint: sameType.fingerprint },
      };
    }
    return { status: 'unknown', presented };
  }

  /** The key presented at the last refused attempt, if any. */
  pending(host: string, port: number): HostKeyInfo | undefined {
    return this.pendingKeys.get(id(host, port));
  }

  /** Trust the pending key of host:port — only if `fingerprint` is exactly the one presented. */
  async trustPending(host: string, port: number, fingerprint: string): Promise<TrustedHostKey> {
    const pending = this.pendingKeys.get(id(host, port));
    if (!pending) {
      throw new SshError(
        'HOST_KEY_UNKNOWN',
        `No host key from ${hostPort(host, port)} is waiting for confirmation. Connect (or test the connection) first.`,
      );
    }
    if (pending.fingerprint !== fingerprint) {
      throw new SshError(
        'HOST_KEY_CHANGED',
        `The fingerprint you confirmed (${fingerprint}) is not the one ${hostPort(host, port)} presented (${pending.fingerprint}). Nothing was trusted; connect again and compare.`,
        { hostKey: pending },
      );
    }
    const trusted = await this.trust(pending);
    this.pendingKeys.delete(id(host, port));
    return trusted;
  }

  /** Trust a key directly (replaces any key stored for host:port). For callers that verified it themselves. */
  async trust(info: HostKeyInfo): Promise<TrustedHostKey> {
    const entry: TrustedHostKey = { ...strip(info), addedAt: new Date().toISOString() };
    this.keys.set(id(info.host, info.port), entry);
    await this.save();
    return entry;
  }

  get(host: string, port: number): TrustedHostKey | undefined {
    return this.keys.get(id(host, port));
  }

  list(): TrustedHostKey[] {
    return [...this.keys.values()].sort((a, b) => a.host.localeCompare(b.host) || a.port - b.port);
  }

  /** Forget the trusted key of host:port (the next connection asks again). */
  async forget(host: string, port: number): Promise<void> {
    this.pendingKeys.delete(id(host, port));
    if (this.keys.delete(id(host, port))) await this.save();
  }

  private save(): Promise<void> {
    const snapshot: StoreFile = { version: 1, keys: this.list() };
    const next = this.saving.then(() => writeJsonAtomic(this.path, snapshot));
    this.saving = next.catch(() => undefined);
    return next;
  }
}

function strip(k: HostKeyInfo): HostKeyInfo {
  return { host: k.host, port: k.port, keyType: k.keyType, fingerprint: k.fingerprint };
}

function defaultKnownHostsPath(): string {
  return join(homedir(), '.ssh', 'known_hosts');
}
