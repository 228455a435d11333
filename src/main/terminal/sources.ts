// Concrete terminal sources: a local shell through node-pty, and an SSH shell channel.
import { createRequire } from 'node:module';
import { ApiError } from '../api/errors';
import type { ShellChannel } from '../ssh/types';
import type { TerminalSource } from './manager';

type PtyModule = typeof import('node-pty');
let ptyModule: PtyModule | null = null;

/** node-pty is native; load it lazily so a broken build only disables the local console. */
function loadPty(): PtyModule {
  if (!ptyModule) {
    try {
      ptyModule = createRequire(__filename)('node-pty') as PtyModule;
    } catch (e) {
      throw new ApiError(
        'PTY_UNAVAILABLE',
        `The local console is unavailable: node-pty failed to load (${(e as Error).message})`,
      );
    }
  }
  return ptyModule;
}

export function defaultShell(): string {
  if (process.platform === 'win32') return process.env.COMSPEC || 'powershell.exe';
  return process.env.SHELL || '/bin/bash';
}

export function localPtySource(opts: {
  cwd: string;
  cols: number;
  rows: number;
  shell?: string;
  /** Added to the app's environment (e.g. KUBECONFIG for a kubectl console). */
  env?: Record<string, string>;
}): TerminalSource {
  const pty = loadPty();
  const env = { ...process.env, TERM: 'xterm-256color', COLORTERM: 'truecolor', ...opts.env } as Record<string, string>;
  // Keep our own secrets and tokens out of the user's shell.
  delete env.KES_WEB_TOKEN;
  const proc = pty.spawn(opts.shell ?? defaultShell(), [], {
    name: 'xterm-256color',
    cols: opts.cols,
    rows: opts.rows,
    cwd: opts.cwd,
    env,
  });
  return {
    write: (d) => proc.write(d),
    resize: (c, r) => proc.resize(c, r),
    pause: () => proc.pause(),
    resume: () => proc.resume(),
    kill: () => {
      try {
        proc.kill();
      } catch {
        // already gone
      }
    },
    start(onData, onExit) {
      proc.onData(onData);
      proc.onExit(({ exitCode }) => onExit(exitCode));
    },
  };
}

export function sshShellSource(channel: ShellChannel): TerminalSource {
  return {
    write: (d) => channel.write(d),
    resize: (c, r) => channel.resize(c, r),
    pause: () => channel.pause(),
    resume: () => channel.resume(),
    kill: () => channel.close(),
    start(onData, onExit) {
      channel.onData(onData);
      channel.onClose((code) => onExit(code));
    },
  };
}

/**
 * `source` with `prelude` shown first (a banner: what the app set up in this terminal) and
 * `onEnd` called once when the terminal ends, whether closed by the user or exited by itself.
 */
export function withPrelude(source: TerminalSource, prelude: string, onEnd: () => void): TerminalSource {
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  return {
    ...source,
    kill: () => {
      source.kill();
      end();
    },
    start(onData, onExit) {
      if (prelude) onData(prelude);
      source.start(onData, (code, message) => {
        end();
        onExit(code, message);
      });
    },
  };
}
