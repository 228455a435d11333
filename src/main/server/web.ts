// `npm run web`: the same main-process services under plain Node, the UI served to a browser.
// Usage: node out/main/web.js [--data-dir DIR] [--port N]   (env: KES_DATA_DIR, KES_PORT)
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createServices } from '../services';
import { createSecretStore } from '../secrets';
import { startWebServer } from './http';
import { APP_VERSION } from '../version';

function defaultDataDir(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'kube-etcd-switch');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  });
  const dataDir = resolve(values['data-dir'] ?? process.env.KES_DATA_DIR ?? defaultDataDir());
  const port = Number(values.port ?? process.env.KES_PORT ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`Bad port: ${values.port}`);
  // out/main/web.js → repo root is two levels up; resources and the built renderer live there.
  const appRoot = resolve(__dirname, '..', '..');
  const log = values.quiet ? () => undefined : (line: string) => process.stderr.write(`[kes] ${line}\n`);

  const secrets = await createSecretStore({});
  if (!secrets.status.available)
    log(`OS keychain unavailable (${secrets.status.reason}); secrets are kept in memory for this session only`);
  const services = await createServices({
    dataDir,
    resourcesDir: join(appRoot, 'resources'),
    secrets,
    transport: 'web',
    version: APP_VERSION,
    log,
  });
  const server = await startWebServer({
    rendererDir: join(appRoot, 'out', 'renderer'),
    dispatch: services.dispatch,
    events: services.events,
    port,
    log,
  });
  // Machine-readable line first (tests parse it), then the human one.
  process.stdout.write(`KES_WEB_URL=${server.url}\n`);
  process.stdout.write(
    `\nKube Etcd Switch (headless web mode) — data in ${dataDir}\nOpen this URL once (the token is single-use):\n  ${server.url}\n\n`,
  );

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await services.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((e) => {
  process.stderr.write(`kube-etcd-switch web: ${(e as Error).message}\n`);
  process.exit(1);
});
