// Map what ssh2 and the socket layer throw onto SshError codes with messages a user can act on.
import type { HostKeyDecision } from './hostkeys';
import { hostPort } from './fingerprint';
import { SshError, type SshTarget } from './types';

export function where(t: SshTarget): string {
  return `${t.user}@${hostPort(t.host, t.port)}`;
}

/** Host-key refusal: the one place the wording of these important messages lives. */
export function hostKeyError(t: SshTarget, d: HostKeyDecision): SshError {
  const at = hostPort(t.host, t.port);
  if (d.status === 'changed') {
    const expected = d.expected ? `Expected ${d.expected.fingerprint}` : 'The key is revoked in ~/.ssh/known_hosts;';
    return new SshError(
      'HOST_KEY_CHANGED',
      `Host key for ${at} changed! ${expected} got ${d.presented.fingerprint} — refusing to connect until you decide.`,
      d.expected ? { hostKey: d.presented, expected: d.expected } : { hostKey: d.presented },
    );
  }
  return new SshError(
    'HOST_KEY_UNKNOWN',
    `${at} is not a known host. Its ${d.presented.keyType} key fingerprint is ${d.presented.fingerprint}. Trust it only if this matches the server's key.`,
    { hostKey: d.presented },
  );
}

interface Ssh2Error extends Error {
  level?: string;
  code?: string;
}

export function connectError(e: unknown, t: SshTarget, timeoutMs: number): SshError {
  if (e instanceof SshError) return e;
  const err = e as Ssh2Error;
  const at = where(t);
  switch (err.level) {
    case 'client-timeout':
      return new SshError('TIMEOUT', `No SSH answer from ${at} within ${timeoutMs} ms.`);
    case 'client-authentication':
      return new SshError('AUTH_FAILED', `${at} refused the ${methodName(t)} (authentication failed).`);
    case 'agent':
      return new SshError('AUTH_FAILED', `ssh-agent could not be used for ${at}: ${err.message}`);
    case 'client-dns':
      return new SshError('UNREACHABLE', `Cannot resolve ${t.host}: ${err.message}`);
  }
  switch (err.code) {
    case 'ECONNREFUSED':
      return new SshError(
        'UNREACHABLE',
        `${hostPort(t.host, t.port)} refused the connection (is sshd running on port ${t.port}?).`,
      );
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new SshError('UNREACHABLE', `${hostPort(t.host, t.port)} is unreachable (${err.code}).`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new SshError('UNREACHABLE', `Cannot resolve ${t.host}.`);
    case 'ETIMEDOUT':
      return new SshError('TIMEOUT', `Connecting to ${hostPort(t.host, t.port)} timed out.`);
    case 'ECONNRESET':
      return new SshError('DISCONNECTED', `${hostPort(t.host, t.port)} reset the connection during the SSH handshake.`);
  }
  return new SshError('DISCONNECTED', `SSH connection to ${at} failed: ${err.message}`);
}

function methodName(t: SshTarget): string {
  switch (t.auth.method) {
    case 'key-file':
      return `key ${t.auth.keyPath}`;
    case 'key-stored':
      return 'stored key';
    case 'agent':
      return 'keys offered by ssh-agent';
    case 'password':
      return 'password';
  }
}

/** Prefix an error that happened on the way (the jump host) so the user knows which hop failed. */
export function viaJump(e: unknown, jump: SshTarget): SshError {
  const err = e instanceof SshError ? e : new SshError('UNREACHABLE', (e as Error).message);
  return new SshError(err.code, `Jump host ${jump.label}: ${err.message}`, err.details);
}
