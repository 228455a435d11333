// Host-key decisions: trust on first use only through an explicit, fingerprint-matched confirm;
// a changed key is refused; the store survives restarts and never loses a corrupt file.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprintOf, keyTypeOf } from '../../src/main/ssh/fingerprint';
import { HostKeyStore } from '../../src/main/ssh/hostkeys';
import { parseKnownHosts } from '../../src/main/ssh/knownhosts';

/** An SSH wire-format public key blob: string type, then key bytes. */
function blob(type = 'ssh-ed25519'): Buffer {
  const t = Buffer.from(type);
  const k = randomBytes(32);
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([len(t.length), t, len(k.length), k]);
}

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-hostkeys-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('fingerprints', () => {
  it('are OpenSSH SHA256 form and name the key type from the blob', () => {
    const b = blob();
    expect(fingerprintOf(b)).toBe('SHA256:' + createHash('sha256').update(b).digest('base64').replace(/=+$/, ''));
    expect(fingerprintOf(b)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(keyTypeOf(b)).toBe('ssh-ed25519');
    expect(keyTypeOf(Buffer.from([0, 0]))).toBe('unknown');
  });
});

describe('HostKeyStore', () => {
  it('refuses an unknown key and remembers it as pending', async () => {
    const store = await HostKeyStore.open(dir);
    const key = blob();
    const d = store.verify('198.18.0.1', 22, key);
    expect(d.status).toBe('unknown');
    expect(store.pending('198.18.0.1', 22)?.fingerprint).toBe(fingerprintOf(key));
    expect(store.list()).toEqual([]);
  });

  it('trusts a pending key only when the confirmed fingerprint matches it', async () => {
    const store = await HostKeyStore.open(dir);
    const key = blob();
    store.verify('198.18.0.1', 22, key);
    await expect(store.trustPending('198.18.0.1', 22, fingerprintOf(blob()))).rejects.toMatchObject({
      code: 'HOST_KEY_CHANGED',
    });
    await expect(store.trustPending('198.18.0.2', 22, fingerprintOf(key))).rejects.toMatchObject({
      code: 'HOST_KEY_UNKNOWN',
    });
    expect(store.list()).toEqual([]);
    const trusted = await store.trustPending('198.18.0.1', 22, fingerprintOf(key));
    expect(trusted).toMatchObject({
      host: '198.18.0.1',
      port: 22,
      keyType: 'ssh-ed25519',
      fingerprint: fingerprintOf(key),
    });
    expect(store.verify('198.18.0.1', 22, key).status).toBe('trusted');
    expect(store.pending('198.18.0.1', 22)).toBeUndefined();
  });

  it('reports a changed key with both fingerprints, keeps the old trust, and lets the user trust the new one', async () => {
    const store = await HostKeyStore.open(dir);
    const old = blob();
    const now = blob();
    await store.trust({ host: 'node', port: 2222, keyType: 'ssh-ed25519', fingerprint: fingerprintOf(old) });
    const d = store.verify('node', 2222, now);
    expect(d).toMatchObject({
      status: 'changed',
      presented: { fingerprint: fingerprintOf(now) },
      expected: { fingerprint: fingerprintOf(old) },
    });
    expect(store.get('node', 2222)?.fingerprint).toBe(fingerprintOf(old));
    await store.trustPending('node', 2222, fingerprintOf(now));
    expect(store.verify('node', 2222, now).status).toBe('trusted');
    expect(store.verify('node', 2222, old).status).toBe('changed');
  });

  it('keys by host and port (same host, other port is a different entry)', async () => {
    const store = await HostKeyStore.open(dir);
    const key = blob();
    await store.trust({ host: 'Node.Example', port: 22, keyType: 'ssh-ed25519', fingerprint: fingerprintOf(key) });
    expect(store.verify('node.example', 22, key).status).toBe('trusted');
    expect(store.verify('node.example', 2222, key).status).toBe('unknown');
  });

  it('persists trust atomically and forgets on request', async () => {
    const key = blob();
    const store = await HostKeyStore.open(dir);
    await store.trust({ host: 'a', port: 22, keyType: 'ssh-ed25519', fingerprint: fingerprintOf(key) });
    const again = await HostKeyStore.open(dir);
    expect(again.verify('a', 22, key).status).toBe('trusted');
    await again.forget('a', 22);
    expect((await HostKeyStore.open(dir)).verify('a', 22, key).status).toBe('unknown');
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect((await fs.stat(join(dir, 'known_hosts.json'))).mode & 0o777).toBe(0o600);
  });

  it('backs up a corrupt file, reports it, and starts empty', async () => {
    await fs.writeFile(join(dir, 'known_hosts.json'), '{ not json');
    const store = await HostKeyStore.open(dir);
    expect(store.loadProblem).toMatchObject({ file: join(dir, 'known_hosts.json'), error: expect.any(String) });
    expect(await fs.readFile(store.loadProblem!.backup, 'utf8')).toBe('{ not json');
    expect(store.list()).toEqual([]);
    // A valid JSON file of the wrong shape is corrupt too.
    await fs.writeFile(join(dir, 'known_hosts.json'), JSON.stringify({ version: 1, keys: [{ host: 'x' }] }));
    expect((await HostKeyStore.open(dir)).loadProblem).not.toBeNull();
  });

  it('accepts keys from ~/.ssh/known_hosts as "system" when enabled, and flags a same-type mismatch as changed', async () => {
    const key = blob();
    const other = blob();
    const b64 = key.toString('base64');
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[hashed.example]:2222').digest('base64')}`;
    const file = join(dir, 'known_hosts');
    await fs.writeFile(
      file,
      [
        `# comment`,
        `plain.example,198.18.1.1 ssh-ed25519 ${b64}`,
        `${hashed} ssh-ed25519 ${b64}`,
        `[ported]:2200 ssh-ed25519 ${b64}`,
        `*.wild ssh-ed25519 ${b64}`,
        '',
      ].join('\n'),
    );
    const store = await HostKeyStore.open(dir, { readSystemKnownHosts: true, systemKnownHostsPath: file });
    expect(store.verify('plain.example', 22, key).status).toBe('system');
    expect(store.verify('198.18.1.1', 22, key).status).toBe('system');
    expect(store.verify('hashed.example', 2222, key).status).toBe('system');
    expect(store.verify('hashed.example', 22, key).status).toBe('unknown');
    expect(store.verify('ported', 2200, key).status).toBe('system');
    expect(store.verify('a.wild', 22, key).status).toBe('system');
    expect(store.verify('plain.example', 22, other)).toMatchObject({
      status: 'changed',
      expected: { fingerprint: fingerprintOf(key) },
    });
    expect(store.verify('plain.example', 22, blob('ecdsa-sha2-nistp256')).status).toBe('unknown');
    await store.setReadSystemKnownHosts(false);
    expect(store.verify('plain.example', 22, key).status).toBe('unknown');
  });

  it('parses known_hosts markers: @revoked kept, @cert-authority skipped, negation wins', () => {
    const b64 = blob().toString('base64');
    const entries = parseKnownHosts(
      `@revoked bad ssh-ed25519 ${b64}\n@cert-authority *.ca ssh-ed25519 ${b64}\n*.corp,!secret.corp ssh-ed25519 ${b64}\n`,
    );
    expect(entries.map((e) => e.revoked)).toEqual([true, false]);
    expect(entries[1].matches('web.corp', 22)).toBe(true);
    expect(entries[1].matches('secret.corp', 22)).toBe(false);
  });
});
