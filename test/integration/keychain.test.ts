// The real OS keychain path: keytar against gnome-keyring's Secret Service in a private D-Bus
// session with a throwaway keyring, and the fallback to memory when no keychain answers.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretStore, KeytarSecretStore, type KeytarLike } from '../../src/main/secrets/index';
import { killTree, track } from './fixtures/procs';

const ROOT = resolve(__dirname, '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const PROBE = join(ROOT, 'test/integration/fixtures/keychain-probe.ts');
const haveTools = existsSync('/usr/bin/dbus-run-session') && existsSync('/usr/bin/gnome-keyring-daemon');
if (!haveTools)
  console.warn(
    'keychain.test: skipping the gnome-keyring test: dbus-run-session or gnome-keyring-daemon is not installed',
  );

let home: string;
beforeAll(async () => {
  home = await fs.mkdtemp(join(tmpdir(), 'kes-keychain-'));
});
afterAll(async () => {
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** Run a command with a clean environment (no inherited D-Bus/X11) and parse its JSON line. */
function runProbe(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  ms = 30_000,
): Promise<{ json: Record<string, unknown>; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const untrack = track(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // dbus-run-session ends the bus (and gnome-keyring with it) when its child exits; the timer
    // is the backstop for a hung keychain.
    const timer = setTimeout(() => killTree(child.pid!), ms);
    child.on('exit', () => {
      clearTimeout(timer);
      untrack();
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolvePromise({ json: JSON.parse(line) as Record<string, unknown>, stderr });
      } catch {
        reject(new Error(`probe printed no JSON.\nstdout: ${stdout}\nstderr: ${stderr}`));
      }
    });
  });
}

describe('keytar against gnome-keyring', () => {
  it.skipIf(!haveTools)(
    'stores, reads and deletes a secret through createSecretStore in a throwaway unlocked keyring',
    async () => {
      const kept = `kept-secret-${process.pid}-${Date.now()}`;
      const runtime = join(home, 'run');
      await fs.mkdir(runtime, { mode: 0o700 });
      const { json, stderr } = await runProbe(
        'dbus-run-session',
        [
          '--',
          'sh',
          '-c',
          // --unlock creates the login keyring with this password and unlocks it; the daemon prints
          // the variables clients need.
          'eval "$(printf %s throwaway-pw | gnome-keyring-daemon --unlock --components=secrets)"; export GNOME_KEYRING_CONTROL; exec "$0" "$1"',
          TSX,
          PROBE,
        ],
        {
          HOME: home,
          XDG_DATA_HOME: join(home, 'data'),
          XDG_RUNTIME_DIR: runtime,
          KES_PROBE_SERVICE: 'kes-test',
          KES_PROBE_KEEP: kept,
        },
      );
      expect(json, stderr).toMatchObject({
        status: { available: true, backend: 'keytar' },
        roundTrip: true,
        deleted: true,
        afterDelete: null,
      });
      // The keyring on disk is encrypted: the kept secret is not there in clear.
      const dir = join(home, 'data', 'keyrings');
      const files = await fs.readdir(dir);
      expect(files).toContain('login.keyring');
      for (const f of files) expect((await fs.readFile(join(dir, f))).includes(kept)).toBe(false);
    },
  );
});

describe('fallback to memory', () => {
  it('answers quickly with the memory backend and the reason when there is no Secret Service', async () => {
    const started = Date.now();
    const { json } = await runProbe(TSX, [PROBE], { HOME: home, KES_PROBE_TIMEOUT_MS: '3000' });
    expect(json).toMatchObject({
      status: { available: false, backend: 'memory', reason: expect.stringMatching(/D-Bus|secrets|keychain/i) },
    });
    expect(json.createMs as number).toBeLessThan(3000);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('gives up on a keychain that never answers after the timeout', async () => {
    const hanging: KeytarLike = {
      getPassword: () => new Promise(() => undefined),
      setPassword: () => new Promise(() => undefined),
      deletePassword: () => new Promise(() => undefined),
    };
    const started = Date.now();
    const store = await createSecretStore({ timeoutMs: 200, backend: 'auto', load: async () => hanging });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(store.status).toMatchObject({
      available: false,
      backend: 'memory',
      reason: expect.stringContaining('did not answer'),
    });
    // Memory backend works for the session.
    await store.set('a', 'b');
    expect(await store.get('a')).toBe('b');
    expect(await store.delete('a')).toBe(true);
    // And a keytar store whose calls hang fails each call after its timeout instead of freezing.
    await expect(new KeytarSecretStore(hanging, 100).get('x')).rejects.toThrow(/did not answer/);
  });

  it('is forced to memory by KES_SECRET_BACKEND=memory without touching keytar', async () => {
    const old = process.env.KES_SECRET_BACKEND;
    process.env.KES_SECRET_BACKEND = 'memory';
    try {
      let loaded = false;
      const store = await createSecretStore({
        load: async () => {
          loaded = true;
          throw new Error('must not load');
        },
      });
      expect(store.status).toMatchObject({
        available: false,
        backend: 'memory',
        reason: expect.stringContaining('KES_SECRET_BACKEND'),
      });
      expect(loaded).toBe(false);
    } finally {
      if (old === undefined) delete process.env.KES_SECRET_BACKEND;
      else process.env.KES_SECRET_BACKEND = old;
    }
  });

  it('fails loudly when the keychain is demanded but broken', async () => {
    await expect(
      createSecretStore({ backend: 'keytar', load: async () => Promise.reject(new Error('no keytar build')) }),
    ).rejects.toThrow('no keytar build');
  });
});
