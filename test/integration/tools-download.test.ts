// Intent: "download etcd tools" fetches a release archive from the configured base URL over https
// only (a loopback mirror with a self-signed certificate here — tests never leave the machine),
// follows redirects only to https, streams it to disk, and caches it only when its sha256 is the
// pinned one (or, for a release the app does not pin, the user's); a tampered archive, an http
// URL or a redirect to http leave nothing cached.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packEtcdRelease, type EtcdRelease } from '../lab/release';
import { ToolCache } from '../../src/main/etcd/tools';

let dir: string;
let release: EtcdRelease;
let name: string;
let server: Server;
let base: string;
let ca: string;
let tamper = false;
/** Set by the streaming test: the server holds the rest of the body until this resolves. */
let holdBody: (() => Promise<void>) | null = null;

beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-tools-'));
  release = await packEtcdRelease(dir);
  name = `etcd-v${release.version}-linux-amd64.tar.gz`;
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'tls.key'),
      '-out',
      join(dir, 'tls.crt'),
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  ca = await fs.readFile(join(dir, 'tls.crt'), 'utf8');
  const key = await fs.readFile(join(dir, 'tls.key'));
  server = createServer({ key, cert: ca }, async (req, res) => {
    const url = req.url ?? '';
    if (url === `/v${release.version}/${name}` || url === `/mirror/v${release.version}/${name}`) {
      const body = await fs.readFile(release.archive);
      if (tamper) body[body.length - 100] ^= 0xff;
      res.writeHead(200, { 'content-length': body.length });
      if (holdBody) {
        const half = body.length >> 1;
        res.write(body.subarray(0, half));
        await holdBody();
        res.end(body.subarray(half));
      } else res.end(body);
    } else if (url.startsWith('/to-https/')) {
      res.writeHead(302, { location: `/mirror/${url.slice('/to-https/'.length)}` }).end();
    } else if (url.startsWith('/to-http/')) {
      const port = (server.address() as AddressInfo).port;
      res.writeHead(302, { location: `http://127.0.0.1:${port}/${url.slice('/to-http/'.length)}` }).end();
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** The lab's archive is not an official release: pin its checksum the way the app pins etcd's own. */
const pinned = () => ({ [name]: release.sha256 });

describe('etcd tool archives', () => {
  it('downloads over https, checks the pinned sha256, and caches', async () => {
    const cache = new ToolCache(join(dir, 'data1'));
    const a = await cache.download(release.version, { baseUrl: base, ca, pinned: pinned() });
    expect(a).toMatchObject({ version: release.version, sha256: release.sha256, binaries: release.binaries });
    expect(release.binaries).toContain('etcdctl');
    expect((await cache.list()).map((x) => x.name)).toEqual([a.name]);
  });

  it('takes the sha256 from the user for a release it does not pin, and refuses one without', async () => {
    const cache = new ToolCache(join(dir, 'data1b'));
    await expect(cache.download(release.version, { baseUrl: base, ca, pinned: {} })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/no pinned sha256 .* SHA256SUMS/),
    });
    const a = await cache.download(release.version, { baseUrl: base, ca, pinned: {}, sha256: release.sha256 });
    expect(a.sha256).toBe(release.sha256);
    // A user's sha256 that contradicts the pinned one is refused before any download.
    await expect(
      cache.download(release.version, { baseUrl: base, ca, pinned: pinned(), sha256: 'a'.repeat(64) }),
    ).rejects.toMatchObject({ code: 'ARCHIVE_INVALID' });
  });

  it('refuses an archive whose checksum does not match, and leaves nothing cached', async () => {
    tamper = true;
    try {
      const cache = new ToolCache(join(dir, 'data2'));
      await expect(cache.download(release.version, { baseUrl: base, ca, pinned: pinned() })).rejects.toMatchObject({
        code: 'ARCHIVE_INVALID',
      });
      expect(await cache.list()).toEqual([]);
      expect(await fs.readdir(cache.dir)).toEqual([]);
    } finally {
      tamper = false;
    }
  });

  it('refuses http base URLs and redirects to http; follows redirects to https', async () => {
    const cache = new ToolCache(join(dir, 'data3'));
    const port = (server.address() as AddressInfo).port;
    await expect(
      cache.download(release.version, { baseUrl: `http://127.0.0.1:${port}`, ca, pinned: pinned() }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/https only/) });
    await expect(
      cache.download(release.version, { baseUrl: `${base}/to-http`, ca, pinned: pinned() }),
    ).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED', message: expect.stringMatching(/https only; refusing http:/) });
    expect(await cache.list()).toEqual([]);
    const a = await cache.download(release.version, { baseUrl: `${base}/to-https`, ca, pinned: pinned() });
    expect(a.sha256).toBe(release.sha256);
  });

  it('refuses a server whose certificate it does not trust', async () => {
    const cache = new ToolCache(join(dir, 'data4'));
    await expect(cache.download(release.version, { baseUrl: base, pinned: pinned() })).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
    });
  });

  it('streams the body to disk as it arrives (not buffered until the end)', async () => {
    const cache = new ToolCache(join(dir, 'data5'));
    // The server sends half the archive, then waits until that half is on disk before it sends the rest.
    let sawPartOnDisk = false;
    holdBody = async () => {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !sawPartOnDisk) {
        for (const d of await fs.readdir(cache.dir).catch(() => [] as string[])) {
          if (!d.startsWith('.dl-')) continue;
          const st = await fs.stat(join(cache.dir, d, name)).catch(() => null);
          if (st && st.size > 0) sawPartOnDisk = true;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      const a = await cache.download(release.version, { baseUrl: base, ca, pinned: pinned() });
      expect(a.sha256).toBe(release.sha256);
      expect(sawPartOnDisk).toBe(true);
    } finally {
      holdBody = null;
    }
  });

  it('refuses unknown versions and badly named files', async () => {
    const cache = new ToolCache(join(dir, 'data6'));
    await expect(cache.download('9.9.9', { baseUrl: base, ca, sha256: 'a'.repeat(64) })).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
    });
    await expect(cache.download('1.2', { baseUrl: base, ca })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(cache.download('3.5.21', { baseUrl: base, ca, arch: 's390x' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
    const odd = join(dir, 'etcd.tar.gz');
    await fs.copyFile(release.archive, odd);
    await expect(cache.add(odd)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
