// SSH layer against a real OpenSSH server on loopback: every auth method, host-key trust on
// first use and refusal of a changed key, exec semantics, SFTP with sha256, "Test connection".
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sh, shJoin, shQuote } from '../../src/main/remote/quote';
import { secretAccount } from '../../src/main/secrets/types';
import { HostKeyStore } from '../../src/main/ssh/hostkeys';
import { SshError, type SshTarget } from '../../src/main/ssh/types';
import { receiveCommand } from '../../src/main/ssh/upload';
import { testAccounts } from './fixtures/accounts';
import { startAgent, type Agent } from './fixtures/agent';
import { makePool, target, tempDir, trustSshd, type PoolHarness } from './fixtures/harness';
import { makeKey, type KeyPair } from './fixtures/keys';
import { waitFor } from './fixtures/procs';
import { startSshd, type Sshd } from './fixtures/sshd';

const PASSWORD = `pw with 'quotes' $(and) ünï`;
const PASSPHRASE = 'correct horse battery staple';
const SUDO_USER = 'kessudo';
const PLAIN_USER = 'kesplain';

let dir: string;
let sshd: Sshd;
let h: PoolHarness;
let agent: Agent;
const accounts = testAccounts();
const keys: Record<'ed' | 'rsa' | 'enc' | 'agent' | 'stranger', KeyPair> = {} as never;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SshError);
    return (e as SshError).code;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  dir = await tempDir();
  keys.ed = await makeKey(dir, 'id_ed25519');
  keys.rsa = await makeKey(dir, 'id_rsa', { type: 'rsa' });
  keys.enc = await makeKey(dir, 'id_enc', { passphrase: PASSPHRASE });
  keys.agent = await makeKey(dir, 'id_agent');
  keys.stranger = await makeKey(dir, 'id_stranger');
  await accounts.ensure(SUDO_USER, PASSWORD);
  await accounts.grantSudo(SUDO_USER);
  await accounts.ensure(PLAIN_USER);
  sshd = await startSshd({ authorizedKeys: [keys.ed, keys.rsa, keys.enc, keys.agent].map((k) => k.publicKey) });
  agent = await startAgent(dir);
  await agent.add(keys.agent.path);
  h = await makePool(dir, { agentSocket: agent.socket });
  await trustSshd(h.hostKeys, sshd);
});

afterAll(async () => {
  await h?.pool.closeAll();
  await agent?.stop();
  await sshd?.stop();
  await accounts.cleanup();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const keyFile = (k: KeyPair, over: Partial<SshTarget> = {}) =>
  target(sshd, { method: 'key-file', keyPath: k.path }, over);

describe('authentication', () => {
  it('logs in with an ed25519 key file', async () => {
    const r = await h.pool.exec(keyFile(keys.ed), 'id -un');
    expect(r).toMatchObject({ code: 0, stdout: 'root\n' });
  });

  it('logs in with an RSA key file (rsa-sha2 signatures)', async () => {
    expect((await h.pool.exec(keyFile(keys.rsa), 'echo ok')).stdout).toBe('ok\n');
  });

  it('needs the passphrase of an encrypted key from the secret store, and says so when it is missing or wrong', async () => {
    const t = keyFile(keys.enc);
    await expect(h.pool.exec(t, 'true')).rejects.toMatchObject({
      code: 'SECRET_MISSING',
      message: expect.stringMatching(/passphrase/),
    });
    await h.secrets.set(secretAccount(t.nodeId, 'passphrase'), 'wrong one');
    await expect(h.pool.exec(t, 'true')).rejects.toMatchObject({
      code: 'KEY_UNREADABLE',
      message: expect.stringMatching(/passphrase is wrong/),
    });
    await h.secrets.set(secretAccount(t.nodeId, 'passphrase'), PASSPHRASE);
    expect((await h.pool.exec(t, 'echo unlocked')).stdout).toBe('unlocked\n');
  });

  it('logs in with a private key kept in the secret store (key-stored)', async () => {
    const t = target(sshd, { method: 'key-stored' });
    expect(await codeOf(h.pool.exec(t, 'true'))).toBe('SECRET_MISSING');
    await h.secrets.set(secretAccount(t.nodeId, 'privateKey'), readFileSync(keys.ed.path, 'utf8'));
    expect((await h.pool.exec(t, 'echo stored')).stdout).toBe('stored\n');
  });

  it('logs in with a password from the secret store; a wrong one is AUTH_FAILED without echoing it', async () => {
    const t = target(sshd, { method: 'password' }, { user: SUDO_USER });
    expect(await codeOf(h.pool.exec(t, 'true'))).toBe('SECRET_MISSING');
    await h.secrets.set(secretAccount(t.nodeId, 'password'), 'not-the-password');
    const err = (await h.pool.exec(t, 'true').catch((e: unknown) => e)) as SshError;
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).not.toContain('not-the-password');
    await h.secrets.set(secretAccount(t.nodeId, 'password'), PASSWORD);
    expect((await h.pool.exec(t, 'id -un')).stdout).toBe(`${SUDO_USER}\n`);
  });

  it('logs in through ssh-agent', async () => {
    const r = await h.pool.exec(target(sshd, { method: 'agent' }), 'echo agent');
    expect(r.stdout).toBe('agent\n');
  });

  it('reports an unreadable key file and a key the server does not accept', async () => {
    await expect(h.pool.exec(keyFile({ path: join(dir, 'nope'), publicKey: '' }), 'true')).rejects.toMatchObject({
      code: 'KEY_UNREADABLE',
      message: expect.stringContaining('no such file'),
    });
    expect(await codeOf(h.pool.exec(keyFile(keys.stranger), 'true'))).toBe('AUTH_FAILED');
  });
});

describe('host keys', () => {
  let own: Sshd;
  beforeAll(async () => {
    own = await startSshd({ authorizedKeys: [keys.ed.publicKey] });
  });
  afterAll(async () => {
    await own?.stop();
  });

  it('refuses an unknown host, shows the fingerprint ssh-keygen shows, and connects once exactly that key is trusted', async () => {
    const file = join(dir, 'tofu.json');
    const store = await HostKeyStore.open(file);
    const p = await makePool(dir, { hostKeys: store });
    const t = target(own, { method: 'key-file', keyPath: keys.ed.path });
    try {
      const err = (await p.pool.exec(t, 'true').catch((e: unknown) => e)) as SshError;
      expect(err.code).toBe('HOST_KEY_UNKNOWN');
      const fp = await own.fingerprint();
      expect(err.details?.hostKey).toEqual({ host: own.host, port: own.port, keyType: 'ssh-ed25519', fingerprint: fp });
      expect(err.message).toContain(fp);
      expect(p.pool.stats().connects).toBe(0);

      await expect(store.trustPending(own.host, own.port, 'SHA256:' + 'A'.repeat(43))).rejects.toMatchObject({
        code: 'HOST_KEY_CHANGED',
      });
      await store.trustPending(own.host, own.port, fp);
      expect((await p.pool.exec(t, 'echo trusted')).stdout).toBe('trusted\n');
      // Persisted: a new store from the same file trusts it too.
      expect((await HostKeyStore.open(file)).get(own.host, own.port)?.fingerprint).toBe(fp);
    } finally {
      await p.pool.closeAll();
    }
  });

  it('refuses a changed host key with both fingerprints and does not log in', async () => {
    const store = await HostKeyStore.open(join(dir, 'changed.json'));
    const p = await makePool(dir, { hostKeys: store });
    const t = target(own, { method: 'key-file', keyPath: keys.ed.path });
    try {
      const old = await own.fingerprint();
      await store.trust({ host: own.host, port: own.port, keyType: 'ssh-ed25519', fingerprint: old });
      expect((await p.pool.exec(t, 'true')).code).toBe(0);
      await p.pool.closeAll();

      await own.regenerateHostKey();
      const now = await own.fingerprint();
      const err = (await p.pool.exec(t, 'true').catch((e: unknown) => e)) as SshError;
      expect(err.code).toBe('HOST_KEY_CHANGED');
      expect(err.message).toBe(
        `Host key for ${own.host}:${own.port} changed! Expected ${old} got ${now} — refusing to connect until you decide.`,
      );
      expect(err.details?.expected?.fingerprint).toBe(old);
      // Refused before authentication: the server never saw a login on the new key.
      expect((await own.log()).split('Server listening').at(-1)).not.toMatch(/Accepted publickey/);
      expect(store.get(own.host, own.port)?.fingerprint).toBe(old);
      expect(p.pool.state(t.nodeId)).toBe('error');
    } finally {
      await p.pool.closeAll();
    }
  });
});

describe('exec', () => {
  const t = () => keyFile(keys.ed, { nodeId: 'exec-node' });

  it('returns exit codes and signals', async () => {
    expect((await h.pool.exec(t(), 'true')).code).toBe(0);
    expect((await h.pool.exec(t(), 'exit 3')).code).toBe(3);
    const killed = await h.pool.exec(t(), 'kill -TERM $$');
    expect(killed.code).toBeNull();
    expect(killed.signal).toBe('SIGTERM');
  });

  it('streams stdout and stderr chunks in order while the command runs', async () => {
    const seen: Array<[string, string, number]> = [];
    const started = Date.now();
    const r = await h.pool.exec(t(), 'for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; sleep 0.1; done', {
      onStdout: (c) => seen.push(['out', c.toString(), Date.now() - started]),
      onStderr: (c) => seen.push(['err', c.toString(), Date.now() - started]),
    });
    expect(r.stdout).toBe('out1\nout2\nout3\nout4\nout5\n');
    expect(r.stderr).toBe('err1\nerr2\nerr3\nerr4\nerr5\n');
    expect(
      seen
        .filter(([s]) => s === 'out')
        .map(([, c]) => c)
        .join(''),
    ).toBe(r.stdout);
    // The first line arrived long before the command finished.
    expect(seen[0][2]).toBeLessThan(r.durationMs - 250);
  });

  it('carries large output intact (and multi-byte characters across chunk borders)', async () => {
    const r = await h.pool.exec(t(), "seq 1 300000; printf 'ü%.0s' $(seq 1 50000)");
    const lines = r.stdout.split('\n');
    expect(lines.length).toBe(300001);
    expect(lines[299999]).toBe('300000');
    expect(lines[300000]).toBe('ü'.repeat(50000));
  });

  it('feeds a script to bash -s on stdin with hostile arguments quoted by quote.ts', async () => {
    const hostile = [
      'with space',
      "it's",
      '"dq"',
      '$(touch /tmp/kes-pwned)',
      '`id`',
      '; rm -rf / ;',
      'a\nb',
      'ünï ☸',
      '*',
      '$HOME',
      '',
    ];
    const r = await h.pool.exec(t(), sh`bash -s -- ${hostile}`, {
      stdin: 'for a in "$@"; do printf "%s\\0" "$a"; done\n',
    });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(hostile);
    expect(existsSync('/tmp/kes-pwned')).toBe(false);
  });

  it('runs asRoot directly as root, through sudo -n otherwise, and fails fast without a sudo rule', async () => {
    expect((await h.pool.exec(t(), 'id -u', { asRoot: true })).stdout).toBe('0\n');
    const sudoer = keyFile(keys.ed, { user: SUDO_USER });
    expect((await h.pool.exec(sudoer, shJoin(['id', '-u']), { asRoot: true })).stdout).toBe('0\n');
    const plain = keyFile(keys.ed, { user: PLAIN_USER });
    const r = await h.pool.exec(plain, 'id -u', { asRoot: true, timeoutMs: 10_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/password is required|not in the sudoers|may not run sudo/);
  });

  it('kills the remote process of a cancelled command (non-root login: OpenSSH honours the signal)', async () => {
    const plain = keyFile(keys.ed, { user: PLAIN_USER });
    const ac = new AbortController();
    const marker = `sleep 61.${process.pid}`;
    const pending = h.pool.exec(plain, marker, { signal: ac.signal });
    const running = async () =>
      (await h.pool.exec(keyFile(keys.ed), sh`pgrep -f -x ${marker} || true`)).stdout.trim() !== '';
    await waitFor(running, 5000, 'the remote sleep to start');
    ac.abort();
    expect(await codeOf(pending)).toBe('CANCELLED');
    await waitFor(async () => !(await running()), 5000, 'the remote sleep to be killed');
  });

  it('kills the remote process group of a cancelled or timed-out command on a root login too', async () => {
    // OpenSSH ignores signal requests on root logins; the app kills the process group itself.
    for (const how of ['cancel', 'timeout'] as const) {
      const ac = new AbortController();
      const marker = `sleep 62.${process.pid}`;
      // a child of a child, as a script's etcdctl would be; stderr must stay exactly the command's own
      const pending = h.pool.exec(t(), `echo before >&2; sh -c ${shQuote(marker)}`, {
        signal: ac.signal,
        timeoutMs: how === 'timeout' ? 1500 : undefined,
      });
      const running = async () => (await h.pool.exec(t(), sh`pgrep -f -x ${marker} || true`)).stdout.trim() !== '';
      await waitFor(running, 5000, 'the remote sleep to start');
      if (how === 'cancel') ac.abort();
      expect(await codeOf(pending)).toBe(how === 'cancel' ? 'CANCELLED' : 'TIMEOUT');
      await waitFor(async () => !(await running()), 5000, `the remote sleep to be killed (${how})`);
    }
    const r = await h.pool.exec(t(), 'echo out; echo err >&2; exit 3');
    expect([r.code, r.stdout, r.stderr]).toEqual([3, 'out\n', 'err\n']);
  });

  it('cancels with an AbortSignal and enforces timeoutMs; the connection keeps working', async () => {
    // A non-root login, so the server really kills the sleeps (see the test above).
    const plain = keyFile(keys.ed, { user: PLAIN_USER });
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 200);
    expect(await codeOf(h.pool.exec(plain, 'sleep 30', { signal: ac.signal }))).toBe('CANCELLED');
    expect(await codeOf(h.pool.exec(plain, 'sleep 30', { timeoutMs: 300 }))).toBe('TIMEOUT');
    const pre = new AbortController();
    pre.abort();
    expect(await codeOf(h.pool.exec(plain, 'true', { signal: pre.signal }))).toBe('CANCELLED');
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await h.pool.exec(t(), 'echo still')).stdout).toBe('still\n');
  });
});

describe('file transfers (upload: exec channel into cat; download: SFTP)', () => {
  const t = () => keyFile(keys.ed, { nodeId: 'sftp-node' });
  let local: string;
  let data: Buffer;
  let remoteDir: string;
  beforeAll(async () => {
    data = randomBytes(5 * 1024 * 1024 + 123);
    local = join(dir, 'payload.bin');
    await fs.writeFile(local, data);
    remoteDir = join(dir, 'remote');
    await fs.mkdir(remoteDir);
  });
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('uploads a few MB with progress and the sha256 of what was sent, then downloads it back', async () => {
    const remote = join(remoteDir, 'up.bin');
    const progress: number[] = [];
    const commands: string[] = [];
    const up = await h.pool.upload(t(), local, remote, {
      mode: 0o600,
      onCommand: (c) => commands.push(c),
      onProgress: (done, total) => (expect(total).toBe(data.length), progress.push(done)),
    });
    expect(up).toEqual({ bytes: data.length, sha256: sha(data) });
    expect(progress.at(-1)).toBe(data.length);
    expect((await h.pool.exec(t(), sh`sha256sum ${remote}`)).stdout.split(' ')[0]).toBe(sha(data));
    expect((await fs.stat(remote)).mode & 0o777).toBe(0o600);
    expect(existsSync(remote + '.part')).toBe(false);
    // the command that received it, for the job log (one line): node, quoted paths, mode, size, local source
    expect(commands).toEqual([
      expect.stringMatching(
        /^node-\S+\$ sh -c '.*' kes-upload \S+\/up\.bin\.part \S+\/up\.bin 600 (\d+) {2}# < \S+payload\.bin$/,
      ),
    ]);
    expect(commands[0]).toContain(` 600 ${data.length}  # < `);

    const back = join(dir, 'down.bin');
    const down = await h.pool.download(t(), remote, back);
    expect(down).toEqual({ bytes: data.length, sha256: sha(data) });
    expect(sha(await fs.readFile(back))).toBe(sha(data));
    expect(existsSync(back + '.part')).toBe(false);
  });

  it('uploads without hashing on the way when the node checks the copy itself (restores)', async () => {
    const remote = join(remoteDir, 'nohash.bin');
    const up = await h.pool.upload(t(), local, remote, { hash: false });
    expect(up).toEqual({ bytes: data.length, sha256: '' });
    expect((await h.pool.exec(t(), sh`sha256sum ${remote}`)).stdout.split(' ')[0]).toBe(sha(data));
  });

  it('overwrites an existing remote file atomically', async () => {
    const remote = join(remoteDir, 'over.bin');
    await fs.writeFile(remote, 'old');
    await h.pool.upload(t(), local, remote);
    expect(sha(await fs.readFile(remote))).toBe(sha(data));
  });

  it('leaves neither the file nor a .part behind when a download fails or is cancelled', async () => {
    const missing = join(dir, 'missing.bin');
    await expect(h.pool.download(t(), join(remoteDir, 'does-not-exist'), missing)).rejects.toBeInstanceOf(SshError);
    expect(existsSync(missing) || existsSync(missing + '.part')).toBe(false);

    const cancelled = join(dir, 'cancelled.bin');
    const ac = new AbortController();
    const err = await h.pool
      .download(t(), join(remoteDir, 'up.bin'), cancelled, {
        signal: ac.signal,
        onProgress: (done) => done > 1 << 20 && ac.abort(),
      })
      .catch((e: unknown) => e);
    expect((err as SshError).code).toBe('CANCELLED');
    expect(existsSync(cancelled) || existsSync(cancelled + '.part')).toBe(false);
  });

  it('leaves neither the file nor a .part behind when an upload is cancelled halfway', async () => {
    const remote = join(remoteDir, 'cancelled-up.bin');
    const ac = new AbortController();
    const err = await h.pool
      .upload(t(), local, remote, { signal: ac.signal, onProgress: (done) => done > 1 << 20 && ac.abort() })
      .catch((e: unknown) => e);
    expect((err as SshError).code).toBe('CANCELLED');
    // the node's side ends when the channel closes; give it a moment to tidy up
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(remote) || existsSync(remote + '.part')).toBe(false);
  });

  it('the node renames an upload only when every byte arrived (a stream cut short is not a file)', async () => {
    // the receiving command fed 10 bytes of the 100 it was told: what a closed channel looks like
    const remote = join(remoteDir, "it's short.bin");
    const r = await h.pool.exec(t(), receiveCommand(remote, 0o600, 100), { stdin: Buffer.alloc(10) });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/upload cut short: 10 of 100 bytes arrived/);
    expect(existsSync(remote) || existsSync(remote + '.part')).toBe(false);
  });

  it('uploads to a path with spaces and quotes, with the exact mode whatever the umask', async () => {
    const remote = join(remoteDir, `a dir 'q' $(x)`, 'snap $HOME.db');
    await fs.mkdir(join(remoteDir, `a dir 'q' $(x)`));
    await h.pool.upload(t(), local, remote, { mode: 0o640 });
    expect(sha(await fs.readFile(remote))).toBe(sha(data));
    expect((await fs.stat(remote)).mode & 0o777).toBe(0o640);
  });

  it('fails an upload into a missing directory without leaving a .part', async () => {
    const remote = join(remoteDir, 'no-such-dir', 'x.bin');
    await expect(h.pool.upload(t(), local, remote)).rejects.toBeInstanceOf(SshError);
    expect(existsSync(remote + '.part')).toBe(false);
  });
});

describe('testConnection', () => {
  const osName = () => /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];

  it('reports host, OS, user and root for a root login with a trusted key', async () => {
    const t = keyFile(keys.ed);
    const r = await h.pool.testConnection(t);
    expect(r).toMatchObject({
      reachable: true,
      authOk: true,
      hostname: hostname(),
      os: osName(),
      user: 'root',
      isRoot: true,
      hostKey: {
        host: sshd.host,
        port: sshd.port,
        keyType: 'ssh-ed25519',
        fingerprint: await sshd.fingerprint(),
        status: 'trusted',
      },
    });
    expect(r.error).toBeUndefined();
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('tells passwordless sudo apart from none for non-root users', async () => {
    expect(await h.pool.testConnection(keyFile(keys.ed, { user: SUDO_USER }))).toMatchObject({
      authOk: true,
      user: SUDO_USER,
      isRoot: false,
      passwordlessSudo: true,
    });
    expect(await h.pool.testConnection(keyFile(keys.ed, { user: PLAIN_USER }))).toMatchObject({
      authOk: true,
      user: PLAIN_USER,
      isRoot: false,
      passwordlessSudo: false,
    });
  });

  it('reports an unknown host key and an unreachable port as results, not exceptions', async () => {
    const p = await makePool(dir);
    try {
      const unknown = await p.pool.testConnection(keyFile(keys.ed));
      expect(unknown).toMatchObject({
        reachable: true,
        authOk: false,
        hostKey: { status: 'unknown', fingerprint: await sshd.fingerprint() },
        error: { code: 'HOST_KEY_UNKNOWN' },
      });
      const closed = await p.pool.testConnection(keyFile(keys.ed, { port: 1 }));
      expect(closed).toMatchObject({ reachable: false, authOk: false, error: { code: 'UNREACHABLE' } });
    } finally {
      await p.pool.closeAll();
    }
  });
});
