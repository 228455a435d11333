// Bundles the stand-ins (kubelet, crictl, systemctl/journalctl; for bare hosts the package tools and
// containerd) into standalone CommonJS
// files with esbuild, so hosts run them with plain /usr/bin/node: no tsx, no node_modules lookup, fast
// start (~60 ms) and low memory. Built once per lab into <lab dir>/emul and copied into each host's
// /usr/local/lib/kes-lab (a host cannot see the lab dir: its /tmp is private).
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KUBERNETES_VERSION } from '../binaries';

export const EMULATORS = ['kubelet', 'crictl', 'systemd', 'apt', 'containerd'] as const;
export type Emulator = (typeof EMULATORS)[number];

export async function bundleEmulators(outDir: string): Promise<Record<Emulator, string>> {
  mkdirSync(outDir, { recursive: true });
  const out = {} as Record<Emulator, string>;
  await Promise.all(
    EMULATORS.map(async (name) => {
      const outfile = join(outDir, `${name}.cjs`);
      await build({
        stdin: {
          contents: `import { main } from './${name}';\nmain().catch((e) => { console.error(e && e.stack || e); process.exit(1); });\n`,
          resolveDir: __dirname,
          loader: 'ts',
          sourcefile: `${name}-entry.ts`,
        },
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        outfile,
        banner: { js: '#!/usr/bin/node' },
        logLevel: 'error',
        define: { KES_K8S_VERSION: JSON.stringify(KUBERNETES_VERSION) },
        legalComments: 'none',
      });
      out[name] = outfile;
    }),
  );
  return out;
}
