// Turn a node's `Auth` into ssh2 connect options. Secrets are fetched from the SecretStore only
// when needed (a passphrase only for an encrypted key) and are never put into an error message.
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { utils, type ConnectConfig } from 'ssh2';
import { secretAccount, type SecretStore } from '../secrets/types';
import { SshError, type SshTarget } from './types';

export type AuthConfig = Pick<ConnectConfig, 'privateKey' | 'passphrase' | 'password' | 'agent' | 'tryKeyboard'>;

export async function authConfig(target: SshTarget, secrets: SecretStore, agentSocket?: string): Promise<AuthConfig> {
  const auth = target.auth;
  switch (auth.method) {
    case 'key-file': {
      const path = expandHome(auth.keyPath);
      let key: Buffer;
      try {
        key = await fs.readFile(path);
      } catch (e) {
        throw new SshError('KEY_UNREADABLE', `Cannot read the key file ${path} for ${target.label}: ${errnoText(e)}`);
      }
      return unlockKey(key, `key file ${path}`, target, secrets);
    }
    case 'key-stored': {
      const key = await secret(target, secrets, 'privateKey');
      if (!key) {
        throw new SshError(
          'SECRET_MISSING',
          `No private key is stored for ${target.label}. Paste one in the node's settings.`,
        );
      }
      return unlockKey(Buffer.from(key), 'stored private key', target, secrets);
    }
    case 'agent': {
      const sock = agentSocket ?? process.env.SSH_AUTH_SOCK;
      if (!sock) {
        throw new SshError(
          'SECRET_MISSING',
          `No ssh-agent is available for ${target.label} (SSH_AUTH_SOCK is not set).`,
        );
      }
      return { agent: sock };
    }
    case 'password': {
      const password = await secret(target, secrets, 'password');
      if (!password) {
        throw new SshError(
          'SECRET_MISSING',
          `No password is stored for ${target.label}. Enter it in the node's settings.`,
        );
      }
      // Servers that do passwords through PAM often offer only keyboard-interactive; the pool
      // answers its password prompts with the same password (keyboardInteractiveAnswers).
      return { password, tryKeyboard: true };
    }
  }
}

/**
 * Answers to one keyboard-interactive round: the stored password, only when every prompt asks for a
 * password (/password/i) without echo. Any other prompt (a one-time code, a question, an echoed
 * field) gets no answer at all, so the authentication fails rather than sending the password to a
 * question that is not asking for it. A round with no prompts is answered with none.
 */
export function keyboardInteractiveAnswers(prompts: { prompt: string; echo?: boolean }[], password: string): string[] {
  return prompts.every((p) => /password/i.test(p.prompt) && !p.echo) ? prompts.map(() => password) : [];
}

/** Check a private key now, so a missing/wrong passphrase gets its own clear error. */
async function unlockKey(key: Buffer, what: string, target: SshTarget, secrets: SecretStore): Promise<AuthConfig> {
  const plain = utils.parseKey(key);
  if (!(plain instanceof Error)) return { privateKey: key };
  if (!/encrypted|passphrase/i.test(plain.message)) {
    throw new SshError(
      'KEY_UNREADABLE',
      `The ${what} of ${target.label} is not a private key ssh can use (${plain.message}).`,
    );
  }
  const passphrase = await secret(target, secrets, 'passphrase');
  if (!passphrase) {
    throw new SshError(
      'SECRET_MISSING',
      `The ${what} of ${target.label} is protected by a passphrase, and none is stored. Enter it in the node's settings.`,
    );
  }
  if (utils.parseKey(key, passphrase) instanceof Error) {
    throw new SshError(
      'KEY_UNREADABLE',
      `Cannot decrypt the ${what} of ${target.label}: the stored passphrase is wrong.`,
    );
  }
  return { privateKey: key, passphrase };
}

async function secret(
  target: SshTarget,
  secrets: SecretStore,
  kind: 'privateKey' | 'passphrase' | 'password',
): Promise<string | null> {
  try {
    return await secrets.get(secretAccount(target.nodeId, kind));
  } catch (e) {
    throw new SshError(
      'SECRET_MISSING',
      `Cannot read the ${kind} of ${target.label} from the keychain: ${(e as Error).message}`,
    );
  }
}

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return (e as Error).message;
}

export function expandHome(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return homedir() + p.slice(1);
  return p;
}
