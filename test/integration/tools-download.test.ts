// Intent: "download etcd tools" fetches a release archive and SHA256SUMS from the configured base
// URL (a loopback mirror here — tests never leave the machine), caches it only when the checksum
// matches, and refuses a tampered archive or a bad name.
import { createServer, type Server } from 'node:http';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packEtcdRelease, type EtcdRelease } from '../lab/release';
import { ToolCache } from '../../src/main/etcd/tools';

let dir: string;
let release: EtcdRelease;
let server: Server;
let base: string;
let tamper = false;

beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-tools-'));
  release = await packEtcdRelease(dir);
  const name = `etcd-v${release.version}-linux-amd64.tar.gz`;
  server = createServer(async (req, res) => {
    if (req.url === `/v${release.version}/SHA256SUMS`) res.end(`${release.sha256}  ${name}\n`);
    else if (req.url === `/v${release.version}/${name}`) {
      const body = await fs.readFile(release.archive);
      if (tamper) body[body.length - 100] ^= 0xff;
      res.end(body);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('etcd tool archives', () => {
  it('downloads, checks SHA256SUMS, and caches', async () => {
    const cache = new ToolCache(join(dir, 'data1'));
    const a = await cache.download(release.version, { baseUrl: base });
    expect(a).toMatchObject({ version: release.version, sha256: release.sha256, binaries: release.binaries });
    expect(release.binaries).toContain('etcdctl');
    expect((await cache.list()).map((x) => x.name)).toEqual([a.name]);
  });

  it('refuses an archive whose checksum does not match, and leaves nothing cached', async () => {
    tamper = true;
    const cache = new ToolCache(join(dir, 'data2'));
    await expect(cache.download(release.version, { baseUrl: base })).rejects.toMatchObject({ code: 'ARCHIVE_INVALID' });
    expect(await cache.list()).toEqual([]);
    tamper = false;
  });

  it('refuses unknown versions and badly named files', async () => {
    const cache = new ToolCache(join(dir, 'data3'));
    await expect(cache.download('9.9.9', { baseUrl: base })).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED' });
    await expect(cache.download('1.2', { baseUrl: base })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const odd = join(dir, 'etcd.tar.gz');
    await fs.copyFile(release.archive, odd);
    await expect(cache.add(odd)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
