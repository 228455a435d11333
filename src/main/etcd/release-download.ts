// Fetching an etcd release archive onto the desktop, safely: https only (redirects too), the
// sha256 pinned in this file for the releases the app knows (the user's own sha256 for any other),
// streamed to disk while hashed, and only regular files and folders under the release's own top
// folder accepted inside the archive.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EtcdOpError } from './deps';

export const DEFAULT_RELEASE_BASE = 'https://github.com/etcd-io/etcd/releases/download';

/**
 * sha256 of the official release archives (etcd's own SHA256SUMS), keyed by file name. 3.5.21–3.5.27
 * as pinned by kubespray (roles/kubespray_defaults/vars/main/checksums.yml); 3.5.21, 3.6.5 and 3.6.6
 * cross-checked against independent packagers. Any other version needs the user's sha256.
 */
export const PINNED_SHA256: Readonly<Record<string, string>> = Object.freeze({
  'etcd-v3.5.21-linux-amd64.tar.gz': 'adddda4b06718e68671ffabff2f8cee48488ba61ad82900e639d108f2148501c',
  'etcd-v3.5.21-linux-arm64.tar.gz': '95bf6918623a097c0385b96f139d90248614485e781ec9bee4768dbb6c79c53f',
  'etcd-v3.5.22-linux-amd64.tar.gz': '20174ab70a6f3df94da13ecac4610f42c47d25af82426f21c112c2c841ec499a',
  'etcd-v3.5.22-linux-arm64.tar.gz': '22aca5a253c4a9f2850300b0a1dd209587586ff0e985f5cb1c34e9e5edc07848',
  'etcd-v3.5.23-linux-amd64.tar.gz': '8b50d62d38cb2de005b42227dd14b33f6e01758970f248f9257789ecfaf634c9',
  'etcd-v3.5.23-linux-arm64.tar.gz': 'd95118595a9556a29775f99c1ef2ee16f6be113df76b7178643a2bfd6a6f37c3',
  'etcd-v3.5.24-linux-amd64.tar.gz': '042497e2ddcee06f22e5d486d81f58affa26b53ee423e2a6aaca3d3ea98c8191',
  'etcd-v3.5.24-linux-arm64.tar.gz': 'efc01f6b3fbef0f000cb53bcad4845c116d7fdd8769ca39d9c40d2fe4d2e509f',
  'etcd-v3.5.25-linux-amd64.tar.gz': '168af82b59772e1811a9af7b358d42f5c6df44e0d9767afb006ecf12c4bbd607',
  'etcd-v3.5.25-linux-arm64.tar.gz': '419dce0b679df31cc45201ef2449b7a6a48e9d241af01741957c9ac86a35badc',
  'etcd-v3.5.26-linux-amd64.tar.gz': '0a682a91201dc8351d507210bc30b021a11e254eab806f03224b51e8fad29abb',
  'etcd-v3.5.26-linux-arm64.tar.gz': '93ac1667df0e178ea6d152476ce4088df4075604fe4bc7f85f4719e863cd030b',
  'etcd-v3.5.27-linux-amd64.tar.gz': '0aad9a9e4e0817a021e933f9806a2b2960a62f949ad5a3d6436d8886945cb1bc',
  'etcd-v3.5.27-linux-arm64.tar.gz': '1277309f540c5a0329c428f95455c9f76d24f768c8d28fd2753e891c379053fa',
  'etcd-v3.6.5-linux-amd64.tar.gz': '66bad39ed920f6fc15fd74adcb8bfd38ba9a6412f8c7852d09eb11670e88cac3',
  'etcd-v3.6.5-linux-arm64.tar.gz': '7010161787077b07de29b15b76825ceacbbcedcb77fe2e6832f509be102cab6b',
  'etcd-v3.6.6-linux-amd64.tar.gz': '887afaa4a99f22d802ccdfbe65730a5e79aa5c9ce2c8799c67e9d804c50ecedb',
});

/**
 * The sha256 the download of `name` must have: the pinned one, else the user's. A user's sha256
 * that contradicts the pinned one is refused (someone handed over a checksum for another file).
 */
export function expectedSha256(name: string, given?: string, pinned: Readonly<Record<string, string>> = PINNED_SHA256) {
  const known = pinned[name];
  const user = given?.trim().toLowerCase();
  if (user !== undefined && !/^[0-9a-f]{64}$/.test(user))
    throw new EtcdOpError('INVALID_INPUT', 'A sha256 is 64 hexadecimal characters');
  if (known && user && user !== known)
    throw new EtcdOpError(
      'ARCHIVE_INVALID',
      `The sha256 given for ${name} (${user}) is not the one etcd published (${known}); nothing was downloaded`,
    );
  const sha = known ?? user;
  if (!sha)
    throw new EtcdOpError(
      'INVALID_INPUT',
      `This app has no pinned sha256 for ${name}: give the one from that release's SHA256SUMS ` +
        '(https://github.com/etcd-io/etcd/releases) to download it, or add the archive from a file',
    );
  return sha;
}

/** `url` as a URL when it is https; anything else (http, file, …) is refused. Errors never show credentials. */
export function checkHttpsUrl(url: string | URL, code = 'INVALID_INPUT'): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EtcdOpError(code, 'Not a URL');
  }
  if (u.protocol !== 'https:')
    throw new EtcdOpError(code, `Downloads use https only; refusing ${u.protocol}//${u.host}${u.pathname}`);
  return u;
}

const MAX_REDIRECTS = 5;
/** etcd archives are ~25 MB; a server that sends far more is not serving one. */
const MAX_BYTES = 512 * 1024 * 1024;

export interface FetchOptions {
  signal?: AbortSignal;
  /** Extra trusted CA certificates (PEM), e.g. a site mirror's private CA. */
  ca?: string | Buffer;
}

function get(url: URL, opts: FetchOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        signal: opts.signal,
        ca: opts.ca,
        timeout: 30_000,
        headers: { 'user-agent': 'kube-etcd-switch' },
      },
      resolve,
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (e) => reject(new EtcdOpError('DOWNLOAD_FAILED', `${url.host}${url.pathname}: ${e.message}`)));
    req.end();
  });
}

/**
 * GET an https URL into a new file `dest` (created 0600, never overwritten), hashing on the way;
 * redirects are followed only to https URLs. Nothing is held in memory beyond a stream chunk.
 */
export async function fetchToFile(
  url: string | URL,
  dest: string,
  opts: FetchOptions = {},
): Promise<{ sha256: string; bytes: number }> {
  let at = checkHttpsUrl(url);
  for (let hop = 0; ; hop++) {
    const res = await get(at, opts);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw new EtcdOpError('DOWNLOAD_FAILED', `${at.host}: too many redirects`);
      at = checkHttpsUrl(new URL(res.headers.location, at), 'DOWNLOAD_FAILED');
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw new EtcdOpError('DOWNLOAD_FAILED', `${at.host}${at.pathname}: HTTP ${status}`);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes > MAX_BYTES) return cb(new EtcdOpError('DOWNLOAD_FAILED', `${at.pathname}: larger than 512 MiB`));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(res, count, createWriteStream(dest, { flags: 'wx', mode: 0o600 }), { signal: opts.signal });
    } catch (e) {
      if (e instanceof EtcdOpError) throw e;
      throw new EtcdOpError('DOWNLOAD_FAILED', `${at.host}${at.pathname}: ${(e as Error).message}`);
    }
    return { sha256: hash.digest('hex'), bytes };
  }
}

/** tar entry types that may be in a release archive: regular files and folders, nothing else. */
const ALLOWED_ENTRY_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory']);

/**
 * Why an archive entry is refused (null: fine). Links, devices and FIFOs are refused, as is any
 * path that is absolute, climbs with `..`, or lies outside the release's top folder `top`.
 */
export function archiveEntryProblem(entry: { path: string; type: string }, top: string): string | null {
  const p = entry.path;
  if (!ALLOWED_ENTRY_TYPES.has(entry.type))
    return `${JSON.stringify(p)} is a ${entry.type} entry (only regular files and folders are allowed)`;
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.split(/[\\/]/).includes('..'))
    return `${JSON.stringify(p)} points outside the archive's folder`;
  if (p !== top && !p.startsWith(`${top}/`)) return `${JSON.stringify(p)} is outside ${top}/`;
  return null;
}
