// The pool's connection management against real sshd processes: one connection shared by
// exec/SFTP/shells, queueing past MaxSessions, reconnect after drops, keepalive, jump hosts,
// timeouts, idle close and explicit disconnect.
import { promises as fs } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshError, type SshTarget } from '../../src/main/ssh/types';
import { makePool, target, tempDir, trustSshd, type PoolHarness } from './fixtures/harness';
import { makeKey, type KeyPair } from './fixtures/keys';
import { killQuietly, waitFor } from './fixtures/procs';
import { freePort, startSshd, type Sshd } from './fixtures/sshd';

let dir: string;
let key: KeyPair;
let sshd: Sshd;
let h: PoolHarness;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  dir = await tempDir();
  key = await makeKey(dir, 'id_ed25519');
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  h = await makePool(dir);
  await trustSshd(h.hostKeys, sshd);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await h?.pool.closeAll();
  await sshd?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const auth = () => ({ method: 'key-file' as const, keyPath: key.path });
const accepted = async (s: Sshd) => ((await s.log()).match(/Accepted publickey/g) ?? []).length;

describe('sharing one connection', () => {
  it('runs many execs, an SFTP transfer and a shell over a single SSH connection', async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys });
    const t = target(sshd, auth());
    const before = await accepted(sshd);
    try {
      for (let i = 0; i < 30; i++) expect((await p.pool.exec(t, `echo ${i}`)).stdout).toBe(`${i}\n`);
      await Promise.all(Array.from({ length: 5 }, (_, i) => p.pool.exec(t, `echo par${i}`)));
      await fs.writeFile(join(dir, 'small.txt'), 'hello');
      await p.pool.upload(t, join(dir, 'small.txt'), join(dir, 'small-up.txt'));
      const shell = await p.pool.shell(t, { cols: 80, rows: 24 });
      shell.close();
      expect(p.pool.stats()).toMatchObject({ connects: 1, attempts: 1, open: 1 });
      // The server agrees: one login.
      expect((await accepted(sshd)) - before).toBe(1);
    } finally {
      await p.pool.closeAll();
    }
  });

  it('queues commands beyond the server MaxSessions (10) instead of failing them', async () => {
    const t = target(sshd, auth());
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) => h.pool.exec(t, `sleep 0.2; echo ${i}`)));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 25 }, (_, i) => `${i}\n`));
  });

  it('opens a PTY shell that runs commands, resizes and can be paused', async () => {
    const shell = await h.pool.shell(target(sshd, auth()), { cols: 100, rows: 30 });
    let out = '';
    shell.onData((d) => (out += d.toString()));
    const closed = new Promise<number | null>((r) => shell.onClose(r));
    shell.write('stty size; echo $((6*7))x\n');
    await waitFor(() => out.includes('42x') && out.includes('30 100'), 10_000, 'shell output');
    shell.resize(120, 40);
    shell.pause();
    shell.write('stty size\n');
    await new Promise((r) => setTimeout(r, 300));
    const whilePaused = out;
    shell.resume();
    await waitFor(() => out.includes('40 120'), 10_000, 'resized output');
    expect(whilePaused).not.toContain('40 120');
    shell.write('exit 5\n');
    expect(await closed).toBe(5);
  });
});

describe('drops and reconnects', () => {
  it('fails an in-flight command with DISCONNECTED when the server drops us, then reconnects on next use', async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys });
    const t = target(sshd, auth());
    try {
      await p.pool.exec(t, 'true');
      const inflight = p.pool.exec(t, 'sleep 30');
      await new Promise((r) => setTimeout(r, 300));
      expect(await sshd.killSessions()).toBeGreaterThan(0);
      await expect(inflight).rejects.toMatchObject({ code: 'DISCONNECTED' });
      expect(p.pool.state(t.nodeId)).toBe('disconnected');
      expect((await p.pool.exec(t, 'echo back')).stdout).toBe('back\n');
      expect(p.pool.stats()).toMatchObject({ connects: 2, open: 1 });
      expect(p.events.filter((e) => e.nodeId === t.nodeId).map((e) => e.state)).toEqual([
        'connecting',
        'connected',
        'disconnected',
        'connecting',
        'connected',
      ]);
    } finally {
      await p.pool.closeAll();
    }
  });

  it('keeps working after sshd restarts', async () => {
    const t = target(sshd, auth());
    await h.pool.exec(t, 'true');
    await sshd.restart();
    expect((await h.pool.exec(t, 'echo after-restart')).stdout).toBe('after-restart\n');
  });

  it('notices a silent server through keepalive', async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys, keepaliveIntervalMs: 300 });
    const t = target(sshd, auth());
    const stopped = () => sshd.sessionPids();
    try {
      await p.pool.exec(t, 'true');
      const pids = stopped();
      for (const pid of pids) killQuietly(pid, 'SIGSTOP');
      cleanups.push(async () => pids.forEach((pid) => killQuietly(pid, 'SIGCONT')));
      const started = Date.now();
      await waitFor(() => p.pool.state(t.nodeId) === 'disconnected', 10_000, 'keepalive to give up');
      expect(Date.now() - started).toBeLessThan(5000);
      for (const pid of pids) killQuietly(pid, 'SIGCONT');
    } finally {
      await p.pool.closeAll();
    }
  });

  it('fails an upload whose server goes silent mid-transfer within seconds (keepalive), no hang', async () => {
    // A link cut with SFTP writes outstanding: the dead connection never answers them; the pool's
    // drop must end the transfer (found by the system test that cuts a master's link mid-restore).
    const p = await makePool(dir, { hostKeys: h.hostKeys, keepaliveIntervalMs: 300 });
    const t = target(sshd, auth());
    const big = join(dir, 'silent-upload.bin');
    await fs.writeFile(big, Buffer.alloc(0));
    await fs.truncate(big, 512 << 20);
    try {
      await p.pool.exec(t, 'true');
      let stoppedAt = 0;
      let pids: number[] = [];
      const up = p.pool.upload(t, big, join(dir, 'silent-upload-copy.bin'), {
        onProgress: () => {
          if (stoppedAt) return;
          stoppedAt = Date.now();
          pids = sshd.sessionPids();
          for (const pid of pids) killQuietly(pid, 'SIGSTOP');
        },
      });
      await expect(up).rejects.toBeInstanceOf(SshError);
      for (const pid of pids) killQuietly(pid, 'SIGCONT');
      expect(stoppedAt).toBeGreaterThan(0);
      expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    } finally {
      await p.pool.closeAll();
      await fs.rm(big, { force: true });
    }
  });

  it('disconnect() closes the connection, fails what runs on it, and reports the node disconnected', async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys });
    const t = target(sshd, auth());
    try {
      await p.pool.connect(t);
      expect(p.pool.state(t.nodeId)).toBe('connected');
      // Writes, so it dies of SIGPIPE once the channel is gone (root logins ignore signal requests).
      const inflight = p.pool.exec(t, 'for i in $(seq 300); do echo .; sleep 0.1; done');
      await new Promise((r) => setTimeout(r, 200));
      await p.pool.disconnect(t);
      await expect(inflight).rejects.toMatchObject({ code: 'DISCONNECTED' });
      expect(p.pool.state(t.nodeId)).toBe('disconnected');
      expect(p.pool.stats().open).toBe(0);
    } finally {
      await p.pool.closeAll();
    }
  });

  it('closes idle connections after idleTimeoutMs unless connect() pinned them', async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys, idleTimeoutMs: 200 });
    try {
      const loose = target(sshd, auth(), { user: 'root' });
      await p.pool.exec(loose, 'true');
      expect(p.pool.stats().open).toBe(1);
      await waitFor(() => p.pool.stats().open === 0, 3000, 'idle close');
      const pinned = target(sshd, auth());
      await p.pool.connect(pinned);
      await new Promise((r) => setTimeout(r, 500));
      expect(p.pool.state(pinned.nodeId)).toBe('connected');
      expect(p.pool.stats().open).toBe(1);
    } finally {
      await p.pool.closeAll();
    }
  });
});

describe('jump host', () => {
  let inner: Sshd;
  let noForward: Sshd;
  beforeAll(async () => {
    // The target listens on another loopback address; we reach it only through the jump's tunnel.
    inner = await startSshd({ host: '127.0.0.2', authorizedKeys: [key.publicKey] });
    noForward = await startSshd({ extraConfig: ['AllowTcpForwarding no'], authorizedKeys: [key.publicKey] });
    await trustSshd(h.hostKeys, inner);
    await trustSshd(h.hostKeys, noForward);
  });
  afterAll(async () => {
    await inner?.stop();
    await noForward?.stop();
  });

  it('tunnels the target connection through the jump host (direct-tcpip on the jump)', async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys });
    const jump = target(sshd, auth(), { nodeId: 'jump' });
    const t: SshTarget = target(inner, auth(), { nodeId: 'inner', jump });
    try {
      const r = await p.pool.exec(t, 'echo "$SSH_CONNECTION"');
      // SSH_CONNECTION = "client-ip client-port server-ip server-port": the server is the inner one.
      expect(r.stdout.trim().split(' ').slice(2)).toEqual(['127.0.0.2', String(inner.port)]);
      expect(p.pool.stats()).toMatchObject({ forwards: 1, connects: 2 });
      // The jump sshd opened the tunnel to the inner sshd.
      expect(await sshd.log()).toMatch(
        new RegExp(`direct-tcpip.*127\\.0\\.0\\.2.*${inner.port}|connect_to 127\\.0\\.0\\.2 port ${inner.port}`, 's'),
      );
      // The jump connection is shared: commands on the jump node itself do not reconnect.
      expect((await p.pool.exec(jump, 'echo jump')).stdout).toBe('jump\n');
      expect(p.pool.stats().connects).toBe(2);
      expect(p.pool.state('jump')).toBe('connected');
      expect(p.pool.state('inner')).toBe('connected');
    } finally {
      await p.pool.closeAll();
    }
  });

  it('says which hop failed when the jump host refuses to forward', async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys });
    const t = target(inner, auth(), { jump: target(noForward, auth()) });
    try {
      const err = (await p.pool.exec(t, 'true').catch((e: unknown) => e)) as SshError;
      expect(err).toBeInstanceOf(SshError);
      expect(err.code).toBe('UNREACHABLE');
      expect(err.message).toMatch(/^Jump host .*tunnel to 127\.0\.0\.2/);
    } finally {
      await p.pool.closeAll();
    }
  });
});

describe('connect failures', () => {
  let silent: Server;
  let silentPort: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    // Accepts TCP but never speaks SSH: only the connect timeout can end the wait.
    silentPort = await freePort('127.0.0.1');
    silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(silentPort, '127.0.0.1', r));
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => silent?.close(r));
  });

  it('times out a server that never answers within connectTimeoutMs', async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys, connectTimeoutMs: 1000 });
    const t = target(sshd, auth(), { port: silentPort });
    const started = Date.now();
    try {
      await expect(p.pool.exec(t, 'true')).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(p.pool.stateInfo(t.nodeId)).toMatchObject({ state: 'error', message: expect.stringContaining('1000 ms') });
    } finally {
      await p.pool.closeAll();
    }
  });

  it('reports a closed port as UNREACHABLE', async () => {
    const closed = await freePort('127.0.0.1');
    await expect(h.pool.exec(target(sshd, auth(), { port: closed }), 'true')).rejects.toMatchObject({
      code: 'UNREACHABLE',
    });
  });
});

describe('time limits and in-memory writes', () => {
  it("times out a command still queued for a session slot with the command's own timeout", async () => {
    const p = await makePool(dir, { hostKeys: h.hostKeys });
    const t = target(sshd, auth());
    try {
      // Every session slot of the connection is busy for 4 s.
      const busy = Array.from({ length: 8 }, () => p.pool.exec(t, 'sleep 4'));
      await new Promise((r) => setTimeout(r, 500));
      const started = Date.now();
      await expect(p.pool.exec(t, 'echo late', { timeoutMs: 400 })).rejects.toMatchObject({
        code: 'TIMEOUT',
        message: expect.stringMatching(/waiting for one of the 8 sessions/),
      });
      expect(Date.now() - started).toBeLessThan(2000);
      await Promise.all(busy);
      // The slot it gave up is not lost: a command runs at once afterwards.
      expect((await p.pool.exec(t, 'echo ok', { timeoutMs: 5000 })).stdout).toBe('ok\n');
    } finally {
      await p.pool.closeAll();
    }
  });

  it('writes a buffer over SFTP as a 0600 file, with no local copy', async () => {
    const remote = join(dir, 'written.key');
    const secret = `-----BEGIN PRIVATE KEY-----\n${'k'.repeat(60)}-${Date.now()}\n-----END PRIVATE KEY-----\n`;
    const r = await h.pool.writeFile(target(sshd, auth()), remote, secret, { mode: 0o600 });
    expect(r.bytes).toBe(Buffer.byteLength(secret));
    expect(await fs.readFile(remote, 'utf8')).toBe(secret);
    expect((await fs.stat(remote)).mode & 0o777).toBe(0o600);
    // Only the remote file holds it (the "remote" here is this machine's test dir).
    const holders: string[] = [];
    for (const root of [dir, tmpdir()])
      for (const e of await fs.readdir(root, { withFileTypes: true }).catch(() => []))
        if (e.isFile() && (await fs.readFile(join(root, e.name), 'utf8').catch(() => '')).includes(secret))
          holders.push(join(root, e.name));
    expect(holders).toEqual([remote]);
  });
});
