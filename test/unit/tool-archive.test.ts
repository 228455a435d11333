// Intent: etcd release archives are checked before they are cached (and later extracted as root
// on a node): only regular files and folders under the release's own top folder — a symlink,
// hardlink, device, FIFO, absolute path or `..` path is refused. Downloads are https only, and a
// release's sha256 comes from the pinned table or, for a release the app does not know, the user.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  archiveEntryProblem,
  checkHttpsUrl,
  expectedSha256,
  PINNED_SHA256,
} from '../../src/main/etcd/release-download';
import { ToolCache } from '../../src/main/etcd/tools';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kes-tool-archive-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOP = 'etcd-v3.9.1-linux-amd64';
const NAME = `${TOP}.tar.gz`;

/** One ustar header (+ data blocks), built by hand so any entry type and path can be made. */
function entry(path: string, type: string, body = '', link = ''): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, at: number, len: number) => h.write(s, at, len, 'latin1');
  put(path, 0, 100);
  put('0000755\0', 100, 8);
  put('0000000\0', 108, 8);
  put('0000000\0', 116, 8);
  put(`${Buffer.byteLength(body).toString(8).padStart(11, '0')}\0`, 124, 12);
  put('00000000000\0', 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put(link, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  const data = Buffer.alloc(Math.ceil(Buffer.byteLength(body) / 512) * 512);
  data.write(body, 'latin1');
  return Buffer.concat([h, data]);
}

/** A release-shaped archive (top folder + etcdctl) with `extra` entries, written as `NAME` in its own folder. */
function archive(label: string, extra: Buffer[]): string {
  const sub = join(dir, label);
  rmSync(sub, { recursive: true, force: true });
  mkdirSync(sub, { recursive: true });
  const file = join(sub, NAME);
  const tarBytes = Buffer.concat([
    entry(`${TOP}/`, '5'),
    entry(`${TOP}/etcdctl`, '0', '#!/bin/sh\necho etcdctl\n'),
    ...extra,
    Buffer.alloc(1024),
  ]);
  writeFileSync(file, gzipSync(tarBytes));
  return file;
}

describe('release archive entries', () => {
  it('accepts regular files and folders under the top folder', async () => {
    const cache = new ToolCache(join(dir, 'ok-data'));
    const a = await cache.add(archive('ok', [entry(`${TOP}/README.md`, '0', 'hi\n')]));
    expect(a.binaries).toEqual(['etcdctl']);
  });

  const hostile: [string, Buffer][] = [
    ['a symlink', entry(`${TOP}/etcd`, '2', '', '/etc/shadow')],
    ['a hardlink', entry(`${TOP}/etcdutl`, '1', '', '/etc/shadow')],
    ['a character device', entry(`${TOP}/tty`, '3')],
    ['a block device', entry(`${TOP}/sda`, '4')],
    ['a FIFO', entry(`${TOP}/fifo`, '6')],
    ['a path climbing out', entry(`${TOP}/../../etc/cron.d/x`, '0', 'x\n')],
    ['an absolute path', entry('/etc/cron.d/x', '0', 'x\n')],
    ['a path outside the top folder', entry('other/etcd', '0', 'x\n')],
  ];
  for (const [what, bad] of hostile)
    it(`refuses an archive holding ${what}, and caches nothing`, async () => {
      const cache = new ToolCache(join(dir, `data-${what.replace(/\W/g, '')}`));
      await expect(cache.add(archive(what.replace(/\W/g, ''), [bad]))).rejects.toMatchObject({
        code: 'ARCHIVE_INVALID',
        message: expect.stringMatching(/is refused: /),
      });
      expect(await cache.list()).toEqual([]);
    });

  it('names the problem of each entry', () => {
    expect(archiveEntryProblem({ path: `${TOP}/etcd`, type: 'File' }, TOP)).toBeNull();
    expect(archiveEntryProblem({ path: `${TOP}/`, type: 'Directory' }, TOP)).toBeNull();
    expect(archiveEntryProblem({ path: `${TOP}/etcd`, type: 'SymbolicLink' }, TOP)).toMatch(/SymbolicLink entry/);
    expect(archiveEntryProblem({ path: `${TOP}/etcd`, type: 'Link' }, TOP)).toMatch(/Link entry/);
    expect(archiveEntryProblem({ path: `${TOP}/../x`, type: 'File' }, TOP)).toMatch(/outside/);
    expect(archiveEntryProblem({ path: `${TOP}\\..\\x`, type: 'File' }, TOP)).toMatch(/outside/);
    expect(archiveEntryProblem({ path: 'C:/x', type: 'File' }, TOP)).toMatch(/outside/);
    expect(archiveEntryProblem({ path: `${TOP}-evil/etcd`, type: 'File' }, TOP)).toMatch(/outside/);
  });
});

describe('download policy', () => {
  it('accepts only https URLs', () => {
    expect(checkHttpsUrl('https://github.com/etcd-io/etcd/releases/download').host).toBe('github.com');
    for (const bad of ['http://mirror.example/etcd', 'file:///etc/passwd', 'ftp://x/y', 'not a url'])
      expect(() => checkHttpsUrl(bad)).toThrow(/https only|Not a URL/);
    // Credentials in a URL are never echoed back.
    expect(() => checkHttpsUrl('http://user:secret@mirror.example/')).toThrow(/^(?!.*secret)/);
  });

  it('uses the pinned sha256 of known releases, and needs the user one for others', () => {
    const name = 'etcd-v3.6.5-linux-amd64.tar.gz';
    expect(expectedSha256(name)).toBe(PINNED_SHA256[name]);
    expect(expectedSha256(name, PINNED_SHA256[name].toUpperCase())).toBe(PINNED_SHA256[name]);
    expect(() => expectedSha256(name, 'b'.repeat(64))).toThrow(/not the one etcd published/);
    expect(() => expectedSha256('etcd-v3.9.1-linux-amd64.tar.gz')).toThrow(/no pinned sha256/);
    expect(expectedSha256('etcd-v3.9.1-linux-amd64.tar.gz', 'C'.repeat(64))).toBe('c'.repeat(64));
    expect(() => expectedSha256('etcd-v3.9.1-linux-amd64.tar.gz', 'xyz')).toThrow(/64 hexadecimal/);
  });

  it('pins well-formed checksums for official archive names only', () => {
    for (const [name, sha] of Object.entries(PINNED_SHA256)) {
      expect(name).toMatch(/^etcd-v3\.\d+\.\d+-linux-(amd64|arm64)\.tar\.gz$/);
      expect(sha).toMatch(/^[0-9a-f]{64}$/);
    }
    // No two releases share a checksum (a copy-paste slip would).
    expect(new Set(Object.values(PINNED_SHA256)).size).toBe(Object.keys(PINNED_SHA256).length);
  });

  it('refuses a download for an unpinned release without a sha256 before any network use', async () => {
    const cache = new ToolCache(join(dir, 'dl-data'));
    // (Port 9 on loopback: nothing is meant to be asked — the refusal comes first.)
    await expect(cache.download('3.9.1', { baseUrl: 'https://127.0.0.1:9/etcd' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/no pinned sha256/),
    });
    await expect(cache.download('3.6.5', { baseUrl: 'http://127.0.0.1:9/etcd' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/https only/),
    });
  });
});
