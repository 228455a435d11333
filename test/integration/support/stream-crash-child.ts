// Child process for snapshot-stream.test.ts's crash test: streams a snapshot through the sshd
// fixture into a vault staging `.part` file and, once the first MiB is written, freezes (blocks
// its thread) and says so on stdout, so the test can SIGKILL it mid-stream — an app that crashed
// or was killed while taking a snapshot. Input: one JSON argument (see Args).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { streamSnapshotFromMember } from '../../../src/main/etcd/snapshot-stream';
import { SnapshotVault } from '../../../src/main/vault/snapshots';
import { makePool, target, trustSshd } from '../fixtures/harness';
import type { Sshd } from '../fixtures/sshd';

interface Args {
  dataDir: string;
  sshd: { host: string; port: number; fingerprint: string };
  keyPath: string;
  endpoint: string;
  pkiDir: string;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]) as Args;
  const vault = await SnapshotVault.open(a.dataDir);
  const incoming = await vault.begin();
  const h = await makePool(a.dataDir);
  await trustSshd(h.hostKeys, { ...a.sshd, fingerprint: async () => a.sshd.fingerprint } as unknown as Sshd);
  const read = (f: string) => fs.readFile(join(a.pkiDir, f));
  let frozen = false;
  await streamSnapshotFromMember({
    pool: h.pool,
    target: target(a.sshd as unknown as Sshd, { method: 'key-file', keyPath: a.keyPath }),
    endpoint: a.endpoint,
    tls: {
      ca: await read('ca.crt'),
      cert: await read('healthcheck-client.crt'),
      key: await read('healthcheck-client.key'),
    },
    partPath: incoming.partPath,
    onProgress: (done, total) => {
      if (frozen || done >= total) return;
      frozen = true;
      process.stdout.write(`FROZEN ${done} ${total} ${incoming.partPath}\n`, () => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
      });
    },
  });
  process.stdout.write('FINISHED\n'); // the test fails on this: the stream was meant to be cut
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
