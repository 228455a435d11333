// An interactive PTY shell on a pooled connection. Flow control is the SSH channel window:
// `pause()` stops reading, so ssh2 stops granting window and the server stops sending — a flood
// of output backs up on the server instead of in our memory or the UI.
import type { ClientChannel } from 'ssh2';
import { StaleConnectionError, type Connection } from './connection';
import { SshError, type ShellChannel, type ShellOptions } from './types';

export function openShell(conn: Connection, opts: ShellOptions, onClosed: () => void): Promise<ShellChannel> {
  return new Promise<ShellChannel>((resolve, reject) => {
    try {
      const pty = { term: opts.term ?? 'xterm-256color', cols: opts.cols, rows: opts.rows };
      const done = (err: Error | undefined, ch: ClientChannel) => {
        if (err) {
          onClosed();
          return reject(new SshError('CHANNEL_FAILED', `Cannot open a shell: ${err.message}`));
        }
        resolve(wrap(ch, onClosed));
      };
      if (opts.command) conn.client.exec(opts.command, { pty }, done);
      else conn.client.shell(pty, done);
    } catch {
      onClosed();
      reject(new StaleConnectionError());
    }
  });
}

function wrap(ch: ClientChannel, onClosed: () => void): ShellChannel {
  let exitCode: number | null = null;
  let closed = false;
  const closeCbs: Array<(code: number | null) => void> = [];
  ch.on('exit', (code: number | null) => {
    exitCode = typeof code === 'number' ? code : null;
  });
  ch.on('close', () => {
    if (closed) return;
    closed = true;
    onClosed();
    for (const cb of closeCbs) cb(exitCode);
  });
  return {
    write: (data) => {
      if (!closed) ch.write(data);
    },
    // setWindow takes rows first; pixel sizes are optional and 0 means "unknown".
    resize: (cols, rows) => {
      if (!closed) ch.setWindow(rows, cols, 0, 0);
    },
    pause: () => void ch.pause(),
    resume: () => void ch.resume(),
    onData: (cb) => {
      ch.on('data', cb);
      ch.stderr.on('data', cb);
    },
    onClose: (cb) => {
      if (closed) cb(exitCode);
      else closeCbs.push(cb);
    },
    close: () => {
      if (!closed) ch.close();
    },
  };
}
