// `npm run bench:ssh`: why the pool exists. 50 sequential `true` over one pooled connection vs 50
// runs of the OpenSSH client (a full TCP + key exchange + auth each). Runs against the test sshd
// fixture on loopback as a throwaway user whose login shell reads no rc files, so we time SSH and
// not somebody's ~/.bashrc (root's here starts pyenv: ~80 ms per command on either side).
// Needs root (it starts sshd and creates the user); prints both figures and the ratio.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testAccounts } from '../integration/fixtures/accounts';
import { makeKey } from '../integration/fixtures/keys';
import { makePool, target, tempDir, trustSshd } from '../integration/fixtures/harness';
import { run } from '../integration/fixtures/procs';
import { startSshd } from '../integration/fixtures/sshd';

const N = 50;
const USER = 'kesbench';

async function main(): Promise<void> {
  const dir = await tempDir('kes-bench-');
  const accounts = testAccounts();
  const sshd = await startSshd();
  const h = await makePool(dir);
  try {
    await accounts.ensure(USER, undefined, '/bin/sh');
    const key = await makeKey(dir, 'id_bench');
    await sshd.addAuthorizedKey(key.publicKey);
    await trustSshd(h.hostKeys, sshd);
    const knownHosts = join(dir, 'known_hosts');
    const pub = (await fs.readFile(sshd.hostKeyPath + '.pub', 'utf8')).split(' ').slice(0, 2).join(' ');
    await fs.writeFile(knownHosts, `[${sshd.host}]:${sshd.port} ${pub}\n`);
    const t = target(sshd, { method: 'key-file', keyPath: key.path }, { user: USER });

    // Warm-up (not timed): the pool's handshake, and the OpenSSH binary's page cache.
    await h.pool.exec(t, 'true');
    const sshArgs = [
      '-F',
      '/dev/null',
      '-i',
      key.path,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-p',
      String(sshd.port),
      `${USER}@${sshd.host}`,
      'true',
    ];
    await run('ssh', sshArgs);

    let t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const r = await h.pool.exec(t, 'true');
      if (r.code !== 0) throw new Error(`pool: true exited ${r.code}`);
    }
    const poolMs = performance.now() - t0;

    t0 = performance.now();
    for (let i = 0; i < N; i++) await run('ssh', sshArgs);
    const opensshMs = performance.now() - t0;

    const stats = h.pool.stats();
    console.log(
      `${N} × true through the pool:      ${poolMs.toFixed(0)} ms (${(poolMs / N).toFixed(1)} ms each, ${stats.connects} SSH connection)`,
    );
    console.log(
      `${N} × ssh ${USER}@host true (OpenSSH): ${opensshMs.toFixed(0)} ms (${(opensshMs / N).toFixed(1)} ms each)`,
    );
    console.log(`ratio: ${(opensshMs / poolMs).toFixed(1)}× faster through the pool`);
  } finally {
    await h.pool.closeAll();
    await sshd.stop();
    await accounts.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
