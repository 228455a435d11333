// Host-key fingerprints the way OpenSSH prints them (`ssh-keygen -lf`), so a user can compare what
// the app shows with what an admin reads on the server console.
import { createHash } from 'node:crypto';

/** `SHA256:<base64 of sha256(key blob), padding removed>` — OpenSSH's default fingerprint form. */
export function fingerprintOf(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/**
 * The key type inside an SSH wire-format public key blob (first length-prefixed string), e.g.
 * "ssh-ed25519". Returns "unknown" for a malformed blob rather than throwing: it is only a label.
 */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > keyBlob.length) return 'unknown';
  const type = keyBlob.subarray(4, 4 + len).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : 'unknown';
}

/** `host:port` with IPv6 literals bracketed, for messages and store keys. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
