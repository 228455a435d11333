// Issue 12: a snapshot streamed from etcd through an SSH tunnel, against a real OpenSSH server on
// loopback and a real etcd (Debian's 3.4) with client TLS: the bytes equal `etcdctl snapshot save`,
// the desktop's status equals `etcdctl snapshot status` (also when read while the file arrives),
// bad streams are refused leaving no `.part`, a cancel stops it, memory stays bounded on a ~200 MB
// database, and a node that refuses TCP forwarding gets the save + SFTP way (the job log says which).
import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs/light.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFacts, NodeInput } from '@shared/domain';
import { ClusterOps } from '../../src/main/cluster/ops';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { takeSnapshot } from '../../src/main/etcd/snapshot';
import {
  forgetUnreachableMembers,
  streamSnapshotFromMember,
  streamSnapshotToFile,
  TunnelRefused,
} from '../../src/main/etcd/snapshot-stream';
import { InventoryStore } from '../../src/main/inventory/store';
import { ScriptLibrary } from '../../src/main/remote/scripts';
import { openTunnel } from '../../src/main/ssh/tunnel';
import type { SshTarget } from '../../src/main/ssh/types';
import { boltStatus } from '../../src/main/vault/boltstatus';
import { SnapshotVault } from '../../src/main/vault/snapshots';
import { WrittenSoFar } from '../../src/main/vault/written-so-far';
import type { StateVault } from '../../src/main/vault/states';
import { makePool, target, tempDir, trustSshd, type PoolHarness } from './fixtures/harness';
import { makeKey } from './fixtures/keys';
import { startSshd, type Sshd } from './fixtures/sshd';
import { startTlsEtcd, type TlsEtcd } from './support/tls-etcd';

const run = promisify(execFile);
const RESOURCES = join(import.meta.dirname, '../../resources/scripts');

let dir: string;
let sshd: Sshd;
let noFwd: Sshd;
let etcd: TlsEtcd;
let h: PoolHarness;
let t: SshTarget;
let tls: { ca: Buffer; cert: Buffer; key: Buffer };

beforeAll(async () => {
  dir = await tempDir();
  const key = await makeKey(dir, 'id_ed25519');
  [sshd, noFwd, etcd] = await Promise.all([
    startSshd({ authorizedKeys: [key.publicKey] }),
    startSshd({ authorizedKeys: [key.publicKey], extraConfig: ['AllowTcpForwarding no'] }),
    startTlsEtcd('127.0.0.2'),
  ]);
  h = await makePool(dir);
  await trustSshd(h.hostKeys, sshd);
  await trustSshd(h.hostKeys, noFwd);
  t = target(sshd, { method: 'key-file', keyPath: key.path });
  const read = (f: string) => fs.readFile(join(etcd.pkiDir, f));
  tls = {
    ca: await read('ca.crt'),
    cert: await read('healthcheck-client.crt'),
    key: await read('healthcheck-client.key'),
  };
  // some data of every kind etcd keeps: keys, a lease, a deleted key, a compaction
  for (let i = 0; i < 50; i++) await etcd.etcdctl('put', `/registry/k${i}`, `v${i}-${'x'.repeat(i * 100)}`);
  await etcd.etcdctl('lease', 'grant', '600');
  await etcd.etcdctl('del', '/registry/k3');
});

afterAll(async () => {
  await h?.pool.closeAll();
  await Promise.all([sshd?.stop(), noFwd?.stop(), etcd?.stop()]);
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** etcd connections the node's sshd holds open (forwarded ones): none once a tunnel is closed. */
async function forwardedConns(): Promise<number> {
  // (etcd 3.4's gateway keeps a connection to its own port: count only sshd's)
  const { stdout } = await run('ss', ['-Htnp', 'state', 'established', `( dport = :${etcd.port} )`]);
  return stdout.split('\n').filter((l) => l.includes(`${etcd.host}:${etcd.port}`) && l.includes('"sshd"')).length;
}

async function waitNoForwarded(): Promise<void> {
  const end = Date.now() + 5000;
  while ((await forwardedConns()) > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  expect(await forwardedConns()).toBe(0);
}

async function etcdctlSave(path: string): Promise<void> {
  await etcd.etcdctl('snapshot', 'save', path);
}

async function etcdctlStatus(path: string) {
  const { stdout } = await run('etcdctl', ['snapshot', 'status', '-w', 'json', path], {
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  return JSON.parse(stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
}

/** What etcdutl 3.6 prints (it counts live keys), when the lab's cache has it; else only 3.4 is compared. */
const ETCDUTL36 = '/var/cache/kes-lab/etcd/v3.6.16/etcdutl';
async function expectedStatus(path: string) {
  const st = await etcdctlStatus(path);
  const has36 = await fs
    .access(ETCDUTL36)
    .then(() => true)
    .catch(() => false);
  const v36 = has36
    ? (JSON.parse((await run(ETCDUTL36, ['snapshot', 'status', '-w', 'json', path])).stdout) as typeof st)
    : null;
  if (v36) expect({ ...v36, totalKey: 0, version: undefined }).toEqual({ ...st, totalKey: 0, version: undefined });
  return { ...st, liveKeys: v36 ? v36.totalKey : expect.any(Number) };
}

/** A TCP connection to host:port (what an SSH channel is to the stream). */
const tcp = (addr: string) =>
  new Promise<Socket>((resolve, reject) => {
    const [host, port] = addr.split(':');
    const s = connect(Number(port), host);
    s.once('connect', () => resolve(s)).once('error', reject);
  });

const sha = async (p: string) => (await run('sha256sum', [p])).stdout.split(' ')[0];

describe('the tunnel', () => {
  it('pipes a local port to an address as the node sees it, and close() ends every connection', async () => {
    const echo: Server = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.3', () => r()));
    const port = (echo.address() as { port: number }).port;
    const tun = await openTunnel((signal) => h.pool.forward(t, '127.0.0.3', port, signal));
    try {
      const s = connect(tun.port, tun.host);
      const got = new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
      s.write('ping through ssh');
      expect(await got).toBe('ping through ssh');
      const closed = new Promise((r) => s.once('close', r));
      const t0 = Date.now();
      await tun.close();
      await closed; // the client's connection is ended too
      // promptly: the channel's close is not left waiting for unread data (which kept the lease)
      expect(Date.now() - t0).toBeLessThan(1000);
      await expect(
        new Promise((res, rej) => connect(tun.port, tun.host).once('connect', res).once('error', rej)),
      ).rejects.toThrow(/ECONNREFUSED/);
      expect(tun.opened).toBe(1);
    } finally {
      await tun.close();
      echo.close();
    }
  });

  it('reports the server refusing to forward (AllowTcpForwarding no)', async () => {
    const tn = { ...t, nodeId: 'nofwd', host: noFwd.host, port: noFwd.port };
    await expect(h.pool.forward(tn, etcd.host, etcd.port)).rejects.toMatchObject({ code: 'FORWARD_REFUSED' });
    const part = join(dir, 'refused.part');
    const p = streamSnapshotFromMember({ pool: h.pool, target: tn, endpoint: etcd.endpoint, tls, partPath: part });
    await expect(p).rejects.toBeInstanceOf(TunnelRefused);
    await expect(p).rejects.toThrow(/refused to forward/);
    await expect(fs.stat(part)).rejects.toThrow(/ENOENT/);
  });
});

describe('streaming a snapshot straight from the member when the desktop reaches it', () => {
  // Here the fixture etcd at 127.0.0.2 stands for a member the desktop can dial (in the lab and on
  // a LAN, the node's address); the SSH server of `noFwd` refuses to forward, so a snapshot that
  // arrives through it can only have come straight.
  const nofwd = () => ({ ...t, nodeId: 'nofwd-direct', label: 'nofwd', host: noFwd.host, port: noFwd.port });
  afterEach(() => forgetUnreachableMembers());

  it('goes straight (mutual TLS, no tunnel): the bytes and status etcdctl gives', async () => {
    const part = join(dir, 'direct.part');
    const logs: string[] = [];
    const r = await streamSnapshotFromMember({
      pool: h.pool,
      target: nofwd(),
      endpoint: 'https://127.0.0.1:2379', // as the node sees its own member: never dialled from here
      direct: etcd.endpoint,
      tls,
      partPath: part,
      log: (_s, l) => logs.push(l),
    });
    await etcdctlSave(join(dir, 'direct-ref.db'));
    expect(await sha(part)).toBe(await sha(join(dir, 'direct-ref.db')));
    expect(r.hashed.digest()).toEqual({ sha256: await sha(part), bodyMatchesTail: true });
    expect(r.route).toMatch(/^straight to https:\/\/127\.0\.0\.2:\d+ /);
    expect(logs.join('\n')).toMatch(
      /snapshot streamed straight to https:\/\/127\.0\.0\.2:\d+ \(TLS with the node's etcd client certificate, no SSH tunnel\)/,
    );
    expect(await boltStatus(part)).toEqual(await expectedStatus(join(dir, 'direct-ref.db')));
  });

  it('takes the SSH tunnel when nothing listens there, and does not try straight again for a while', async () => {
    const closed = await new Promise<number>((res) => {
      const srv = createServer().listen(0, '127.0.0.2', () => {
        const port = (srv.address() as AddressInfo).port;
        srv.close(() => res(port));
      });
    });
    const logs: string[] = [];
    const once = (name: string) =>
      streamSnapshotFromMember({
        pool: h.pool,
        target: t,
        endpoint: etcd.endpoint,
        direct: `https://127.0.0.2:${closed}`,
        tls,
        partPath: join(dir, name),
        log: (_s, l) => logs.push(l),
      });
    const r = await once('refused-direct.part');
    expect(r.route).toMatch(/^through an SSH tunnel from /);
    expect(logs.join('\n')).toMatch(
      new RegExp(`could not stream straight to https://127\\.0\\.0\\.2:${closed}: .*ECONNREFUSED.*; trying SSH`),
    );
    expect(await sha(join(dir, 'refused-direct.part'))).toBe(r.hashed.digest().sha256);
    logs.length = 0;
    const again = await once('refused-again.part');
    expect(again.route).toMatch(/^through an SSH tunnel from /);
    expect(logs.join('\n')).toContain(`https://127.0.0.2:${closed} did not answer this computer lately: through SSH`);
    expect(logs.join('\n')).not.toMatch(/could not stream straight/);
    await waitNoForwarded();
  });

  it('takes the SSH tunnel when what answers there is not the member (the TLS handshake fails)', async () => {
    const impostor = createServer((c) => c.destroy());
    await new Promise<void>((res) => impostor.listen(0, '127.0.0.2', res));
    const port = (impostor.address() as AddressInfo).port;
    try {
      const logs: string[] = [];
      const part = join(dir, 'impostor.part');
      const r = await streamSnapshotFromMember({
        pool: h.pool,
        target: t,
        endpoint: etcd.endpoint,
        direct: `https://127.0.0.2:${port}`,
        tls,
        partPath: part,
        log: (_s, l) => logs.push(l),
      });
      expect(r.route).toMatch(/^through an SSH tunnel from /);
      expect(logs.join('\n')).toMatch(/could not stream straight to .*: etcd did not answer: /);
      expect(await sha(part)).toBe(r.hashed.digest().sha256);
    } finally {
      impostor.close();
    }
    await waitNoForwarded();
  });

  it("fails with the tunnel's error when neither way works, leaving no file", async () => {
    const part = join(dir, 'neither.part');
    const p = streamSnapshotFromMember({
      pool: h.pool,
      target: nofwd(),
      endpoint: etcd.endpoint,
      direct: 'https://127.0.0.2:1',
      tls,
      partPath: part,
    });
    await expect(p).rejects.toBeInstanceOf(TunnelRefused);
    await expect(fs.stat(part)).rejects.toThrow(/ENOENT/);
  });
});

describe('streaming a snapshot through the tunnel', () => {
  it('gives the bytes `etcdctl snapshot save` writes, and the status `etcdctl snapshot status` prints', async () => {
    const part = join(dir, 'a.db.part');
    const logs: string[] = [];
    let last = [0, 0];
    const r = await streamSnapshotFromMember({
      pool: h.pool,
      target: t,
      endpoint: etcd.endpoint,
      tls,
      partPath: part,
      onProgress: (d, n) => (last = [d, n]),
      log: (_s, l) => logs.push(l),
    });
    await etcdctlSave(join(dir, 'ref.db'));
    expect(await sha(part)).toBe(await sha(join(dir, 'ref.db')));
    expect(r.bytes).toBe((await fs.stat(part)).size);
    expect(r.hashed.digest()).toEqual({ sha256: await sha(part), bodyMatchesTail: true });
    expect(r.serverVersion).toMatch(/^3\.4\./);
    expect(last[0]).toBe(last[1]);
    expect(await boltStatus(part)).toEqual(await expectedStatus(join(dir, 'ref.db')));
    expect(logs.join('\n')).toMatch(
      /snapshot streamed through an SSH tunnel from \S+ to 127\.0\.0\.2:\d+ \(TLS to etcd inside it\)/,
    );
    await waitNoForwarded();
  });

  it('describes a snapshot while it is written, page by page behind the writer: the status of the whole file', async () => {
    const ref = join(dir, 'follow-ref.db');
    await etcdctlSave(ref);
    const whole = await fs.readFile(ref);
    const growing = join(dir, 'follow.db');
    const written = new WrittenSoFar();
    // the walk starts before the file exists, as it does beside a stream
    const described = boltStatus(growing, { written: (end) => written.until(end) });
    const fh = await fs.open(growing, 'wx');
    try {
      for (let at = 0; at < whole.length; at += 5000) {
        const piece = whole.subarray(at, at + 5000);
        await fh.write(piece, 0, piece.length, at);
        written.advance(at + piece.length);
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      await fh.close();
    }
    // done with the last byte written: the writer has not even said it finished
    expect(await described).toEqual(await boltStatus(ref));
    written.finish();

    // The file ends before the pages the walk needs: it fails, saying so.
    const cut = join(dir, 'cut.db');
    await fs.writeFile(cut, whole.subarray(0, 2 * 4096));
    const short = new WrittenSoFar();
    const shortWalk = boltStatus(cut, { written: (end) => short.until(end) });
    short.advance(2 * 4096);
    short.finish();
    await expect(shortWalk).rejects.toThrow(/Truncated snapshot: the file ends at 8192 bytes/);
    // The writer fails: so does the walk, with the writer's error.
    const broken = new WrittenSoFar();
    const brokenWalk = boltStatus(cut, { written: (end) => broken.until(end) });
    broken.fail(new Error('the stream broke'));
    await expect(brokenWalk).rejects.toThrow('the stream broke');
  });

  it('refuses a member whose certificate does not name the address (TLS is checked), leaving no .part', async () => {
    const part = join(dir, 'wrong-name.part');
    await expect(
      streamSnapshotToFile({
        connect: () => h.pool.forward(t, etcd.host, etcd.port),
        tls,
        serverName: 'not-in-the-cert.example',
        partPath: part,
        connectMs: 3000,
      }),
    ).rejects.toThrow(/did not answer.*not-in-the-cert\.example/);
    await expect(fs.stat(part)).rejects.toThrow(/ENOENT/);
    await waitNoForwarded();
  });
});

// etcd 3.5 and 3.6 serve the same RPC; 3.6 also says its storage version and counts keys anew.
const LAB_RELEASES = ['v3.5.30', 'v3.6.16'].map((v) => ({ v, dir: `/var/cache/kes-lab/etcd/${v}` }));
describe.each(LAB_RELEASES)('etcd $v (the lab cache’s release, when present)', ({ v, dir: bin }) => {
  it('streams a snapshot of the revision its own etcdctl saves; the status matches its own etcdutl', async (ctx) => {
    if (
      !(await fs.access(join(bin, 'etcd')).then(
        () => true,
        () => false,
      ))
    )
      return ctx.skip();
    const e = await startTlsEtcd(v === 'v3.5.30' ? '127.0.0.4' : '127.0.0.5', [], bin);
    try {
      for (let i = 0; i < 20; i++) await e.etcdctl('put', `/registry/r${i}`, `v${i}`);
      await e.etcdctl('del', '/registry/r7');
      const read = (f: string) => fs.readFile(join(e.pkiDir, f));
      const part = join(dir, `${v}.part`);
      const r = await streamSnapshotFromMember({
        pool: h.pool,
        target: t,
        endpoint: e.endpoint,
        tls: {
          ca: await read('ca.crt'),
          cert: await read('healthcheck-client.crt'),
          key: await read('healthcheck-client.key'),
        },
        partPath: part,
      });
      await e.etcdctl('snapshot', 'save', join(dir, `${v}-ref.db`));
      expect(r.serverVersion).toBe(v.slice(1));
      expect(r.storageVersion).toBe(v === 'v3.6.16' ? '3.6.0' : null);
      expect(r.hashed.digest().bodyMatchesTail).toBe(true);
      // (not byte for byte: from 3.5 on, etcd's own bookkeeping may commit between two snapshots)
      const status = async (f: string) =>
        JSON.parse((await run(join(bin, 'etcdutl'), ['snapshot', 'status', '-w', 'json', f])).stdout) as {
          hash: number;
          revision: number;
          totalKey: number;
          totalSize: number;
        };
      const st = await status(part); // etcdutl checks the bbolt file's integrity first
      expect(st.revision).toBe((await status(join(dir, `${v}-ref.db`))).revision);
      const mine = await boltStatus(part);
      expect(mine).toMatchObject({ hash: st.hash, revision: st.revision, totalSize: st.totalSize });
      expect(v === 'v3.6.16' ? mine.liveKeys : mine.totalKey).toBe(st.totalKey);
      await fs.rm(part);
    } finally {
      await e.stop();
    }
  });
});

// A fake etcd: serves a real snapshot's bytes in 32 KiB messages as etcd does, then its hash —
// with whatever fault a test asks for.
describe('a bad stream is refused and leaves no .part', () => {
  let server: grpc.Server;
  let addr: string;
  let snap: Buffer;
  let fault: 'none' | 'truncate' | 'flip' | 'error' | 'stall' = 'none';
  const Resp = protobuf.Root.fromJSON({
    nested: {
      SnapshotResponse: {
        fields: {
          remaining_bytes: { type: 'uint64', id: 2 },
          blob: { type: 'bytes', id: 3 },
          version: { type: 'string', id: 4 },
        },
      },
    },
  }).lookupType('SnapshotResponse');

  beforeAll(async () => {
    await etcdctlSave(join(dir, 'fake-src.db'));
    snap = await fs.readFile(join(dir, 'fake-src.db'));
    server = new grpc.Server();
    const enc = (m: object) => Buffer.from(Resp.encode(Resp.create(m)).finish());
    server.addService(
      {
        Snapshot: {
          path: '/etcdserverpb.Maintenance/Snapshot',
          requestStream: false,
          responseStream: true,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: enc,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      {
        Snapshot: async (call: grpc.ServerWritableStream<Buffer, object>) => {
          const db = snap.subarray(0, snap.length - 32);
          const hash = Buffer.from(snap.subarray(snap.length - 32));
          const body = Buffer.from(db);
          if (fault === 'flip') body[body.length >> 1] ^= 0xff;
          const stop = fault === 'truncate' || fault === 'error' || fault === 'stall' ? body.length >> 1 : body.length;
          for (let off = 0; off < stop; off += 32768) {
            const blob = body.subarray(off, Math.min(off + 32768, body.length));
            call.write({ remaining_bytes: body.length - off - blob.length, blob });
          }
          if (fault === 'error')
            return call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'member went away' });
          if (fault === 'stall') return; // never ends
          if (fault !== 'truncate') call.write({ remaining_bytes: 0, blob: hash });
          call.end();
        },
      },
    );
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    addr = `127.0.0.1:${port}`;
  });
  afterAll(() => server?.forceShutdown());

  const pull = (name: string, stallMs?: number) =>
    streamSnapshotToFile({ connect: () => tcp(addr), tls: null, serverName: 'x', partPath: join(dir, name), stallMs });

  it('takes the well-formed stream (the fake is faithful)', async () => {
    fault = 'none';
    const r = await pull('ok.part');
    expect(r.bytes).toBe(snap.length);
    await fs.rm(join(dir, 'ok.part'));
  });

  it.each([
    ['truncate', /cut short/],
    ['flip', /trailing sha256/],
    ['error', /member went away|INTERNAL|UNKNOWN/],
    ['stall', /stalled/],
  ] as const)('%s', async (f, msg) => {
    fault = f;
    await expect(pull(`${f}.part`, 1500)).rejects.toThrow(msg);
    await expect(fs.stat(join(dir, `${f}.part`))).rejects.toThrow(/ENOENT/);
  });
});

describe('the snapshot job', () => {
  let deps: EtcdDeps;
  let clusterId: string;
  let m1: string;
  let m2: string;

  beforeAll(async () => {
    const data = join(dir, 'app');
    await fs.mkdir(data);
    const inv = await InventoryStore.open(data);
    const c = await inv.createCluster('c');
    clusterId = c.id;
    const add = (name: string) =>
      inv.upsertNode(c.id, NodeInput.parse({ name, address: '127.0.0.1', user: 'root', auth: { method: 'agent' } }));
    const n1 = await add('m1');
    const n2 = await add('m2');
    m1 = n1.id;
    m2 = n2.id;
    const master = (nodeId: string, name: string) => ({
      nodeId,
      name,
      hostname: name,
      etcdServers: [etcd.endpoint],
      etcdDataDir: null,
      etcdManifest: 'active',
      etcdPkiDir: etcd.pkiDir,
      tools: { etcd: '/usr/bin/etcd', etcdctl: '/usr/bin/etcdctl', etcdutl: null },
      versions: { etcd: null, etcdctl: null, etcdutl: null },
      problems: [],
    });
    await inv.setFacts(
      c.id,
      ClusterFacts.parse({
        initializedAt: new Date().toISOString(),
        seedNodeId: m1,
        controlPlaneEndpoint: null,
        etcdCaCert: null,
        etcdCaKeyOn: [],
        etcdVersion: '3.4.23',
        masters: [master(m1, 'm1'), master(m2, 'm2')],
        members: [],
        mode: 'external-up',
        modeDetails: [],
      }),
    );
    await inv.recordNodeTools(c.id, m1, { etcd: '/usr/bin/etcd', etcdctl: '/usr/bin/etcdctl', etcdutl: null });
    await inv.recordNodeTools(c.id, m2, { etcd: '/usr/bin/etcd', etcdctl: '/usr/bin/etcdctl', etcdutl: null });
    // m1 forwards; m2's sshd has AllowTcpForwarding no
    const targetOf = (_c: string, id: string): SshTarget =>
      id === m1
        ? { ...t, nodeId: m1, label: 'm1' }
        : { ...t, nodeId: m2, label: 'm2', host: noFwd.host, port: noFwd.port };
    const ops = new ClusterOps({
      inventory: inv,
      pool: h.pool,
      scripts: new ScriptLibrary(RESOURCES, join(data, 'scripts')),
      targetOf,
    });
    deps = {
      ops,
      inventory: inv,
      pool: h.pool,
      snapshots: await SnapshotVault.open(data),
      states: {} as StateVault,
      targetOf,
    };
  });

  const take = async (nodeId: string, via?: 'save' | 'stream') => {
    const lines: string[] = [];
    const meta = await takeSnapshot(deps, clusterId, {
      note: 'test',
      nodeId,
      via,
      log: (s, l) => lines.push(`${s}: ${l}`),
    });
    return { meta, log: lines.join('\n') };
  };

  it('streams by default: same metadata and bytes as the save + SFTP way; the key is never logged', async () => {
    const a = await take(m1);
    expect(a.log).toMatch(/via m1, streamed: revision/);
    expect(a.log).not.toMatch(/snapshot-save\.sh/);
    expect(a.log).toMatch(/collect-files\.sh/); // reading the client certificate is in the log…
    const keyLine = tls.key.toString().split('\n')[1];
    expect(a.log).not.toContain(keyLine); // …its content is not
    const b = await take(m1, 'save');
    expect(b.log).toMatch(/via m1, saved on the node \+ SFTP: revision/);
    const pick = (m: typeof a.meta) => [m.sha256, m.size, m.revision, m.hash, m.totalKeys, m.etcdVersion, m.integrity];
    expect(pick(a.meta)).toEqual(pick(b.meta));
    expect(a.meta.etcdVersion).toMatch(/^3\.4\./);
    const st = await etcdctlStatus(deps.snapshots.filePath(a.meta.id));
    expect([a.meta.revision, a.meta.hash, a.meta.totalKeys]).toEqual([st.revision, st.hash, st.totalKey]);
    await waitNoForwarded();
  });

  it('falls back to snapshot save + SFTP when the node does not forward, and says why', async () => {
    const r = await take(m2);
    expect(r.log).toMatch(/streaming did not work \(.*refused to forward.*\): falling back/);
    expect(r.log).toMatch(/via m2, saved on the node \+ SFTP: revision/);
    expect(r.meta.integrity).toBe('ok');
    // the node's copy is gone
    const left = await fs.readdir('/var/lib/kube-etcd-switch/transfer/root').catch(() => []);
    expect(left.filter((f) => f.startsWith('snapshot-'))).toEqual([]);
  });
});

describe('big snapshots', () => {
  it('a cancel mid-stream stops it, removes the .part and closes the tunnel', async () => {
    await fill(200);
    const part = join(dir, 'cancel.part');
    const ac = new AbortController();
    const p = streamSnapshotFromMember({
      pool: h.pool,
      target: t,
      endpoint: etcd.endpoint,
      tls,
      partPath: part,
      signal: ac.signal,
      onProgress: (d) => d > 20 << 20 && ac.abort(new Error('cancelled by the test')),
    });
    await expect(p).rejects.toThrow(/cancelled by the test/);
    await expect(fs.stat(part)).rejects.toThrow(/ENOENT/);
    await waitNoForwarded();
  });

  it('streams a ~200 MB database with the process RSS growing < 150 MB', async () => {
    const part = join(dir, 'big.part');
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const t0 = Date.now();
    let r: Awaited<ReturnType<typeof streamSnapshotFromMember>>;
    try {
      r = await streamSnapshotFromMember({ pool: h.pool, target: t, endpoint: etcd.endpoint, tls, partPath: part });
      expect(r.bytes).toBeGreaterThan(200 << 20);
    } finally {
      clearInterval(sample);
    }
    const took = Date.now() - t0;
    // described on the desktop as the app does once the stream is in
    const t1 = Date.now();
    const st = await boltStatus(part);
    console.log(`status on the desktop ${Date.now() - t1} ms`);
    await etcdctlSave(join(dir, 'big-ref.db'));
    expect(st).toEqual(await expectedStatus(join(dir, 'big-ref.db')));
    console.log(
      `streamed ${((await fs.stat(part)).size / 1048576).toFixed(0)} MB in ${took} ms; RSS +${((peak - rss0) / 1048576).toFixed(0)} MB at peak`,
    );
    expect(peak - rss0).toBeLessThan(150 << 20);
    await fs.rm(part);
    await fs.rm(join(dir, 'big-ref.db'));
  }, 180_000);
});

describe('a dropped SSH connection', () => {
  it('fails the stream mid-way, removes the .part, and the next one reconnects', async () => {
    const part = join(dir, 'drop.part');
    let killed = false;
    const p = streamSnapshotFromMember({
      pool: h.pool,
      target: t,
      endpoint: etcd.endpoint,
      tls,
      partPath: part,
      stallMs: 5000,
      onProgress: (d) => {
        if (d > 20 << 20 && !killed) {
          killed = true;
          void sshd.killSessions();
        }
      },
    });
    await expect(p).rejects.toThrow();
    expect(killed).toBe(true);
    await expect(fs.stat(part)).rejects.toThrow(/ENOENT/);
    const again = await streamSnapshotFromMember({
      pool: h.pool,
      target: t,
      endpoint: etcd.endpoint,
      tls,
      partPath: part,
    });
    expect(again.hashed.digest().bodyMatchesTail).toBe(true);
    await fs.rm(part);
  }, 120_000);
});

describe('an app killed mid-stream', () => {
  it('leaves no snapshot: the vault clears the staged .part when it opens, and the node keeps nothing', async () => {
    // A child process streams into a vault's staging .part, freezes once the first MiB is in, and
    // is SIGKILLed there — no cleanup of its own runs. (A few MB more data, so that the first MiB
    // is never the whole snapshot when this runs alone.)
    await fill(8);
    const dataDir = join(dir, 'killed-app');
    await fs.mkdir(dataDir);
    const key = join(dir, 'id_ed25519');
    const args = {
      dataDir,
      sshd: { host: sshd.host, port: sshd.port, fingerprint: await sshd.fingerprint() },
      keyPath: key,
      endpoint: etcd.endpoint,
      pkiDir: etcd.pkiDir,
    };
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'support/stream-crash-child.ts'), JSON.stringify(args)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const frozen = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no FROZEN line in 60 s: ${out} ${err}`)), 60_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = /^FROZEN .*$/m.exec(out)?.[0];
        if (line) {
          clearTimeout(timer);
          resolve(line);
        }
      });
      void exited.then(() => reject(new Error(`the child ended first: ${out} ${err}`)));
    });
    const [, done, total, partPath] = frozen.split(' ');
    expect(Number(done)).toBeLessThan(Number(total));
    // mid-stream: part of the snapshot is on disk, under the staging folder, not in the vault
    expect((await fs.stat(partPath)).size).toBeGreaterThan(0);
    child.kill('SIGKILL');
    await exited;

    // the node side: sshd lets go of the forwarded etcd connection once the dead app's link closes
    await waitNoForwarded();
    await etcd.etcdctl('endpoint', 'health');
    // the app again: nothing listed, the staged part gone
    const vault = await SnapshotVault.open(dataDir);
    expect(await vault.list()).toEqual([]);
    await expect(fs.stat(partPath)).rejects.toThrow(/ENOENT/);
    expect(await fs.readdir(join(dataDir, 'vault', '.staging'))).toEqual([]);
  }, 120_000);
});

/** Fill etcd to about `mb` MB with 1 MB values (etcd's default request limit is 1.5 MiB). */
async function fill(mb: number): Promise<void> {
  const value = join(dir, 'value');
  await run('sh', ['-c', `head -c 786432 /dev/urandom | base64 -w0 > ${value}`]);
  const args = [
    `--endpoints=${etcd.endpoint}`,
    `--cacert=${join(etcd.pkiDir, 'ca.crt')}`,
    `--cert=${join(etcd.pkiDir, 'healthcheck-client.crt')}`,
    `--key=${join(etcd.pkiDir, 'healthcheck-client.key')}`,
  ].join(' ');
  await run(
    'sh',
    ['-c', `seq 1 ${mb} | xargs -P 4 -I{} sh -c 'ETCDCTL_API=3 etcdctl ${args} put /big/{} < ${value} > /dev/null'`],
    { timeout: 120_000 },
  );
}
