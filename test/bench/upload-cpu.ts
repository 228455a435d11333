// `npx tsx test/bench/upload-cpu.ts`: a quick, lab-free look at the app's CPU per GB uploaded (the
// restore upload's cost on the user's laptop) next to scp's, against the loopback sshd fixture, to
// work on that figure without building a lab (bench:snapshot holds the real one, to 3 lab masters).
// The pool's upload as restores call it (an exec channel into `cat`, no hash on the way: the node
// checks the copy) vs `scp` (its ssh child included); fair rounds. Also prints sha256 alone and how
// many full GCs V8 ran per upload.
// Env: KES_BENCH_MB (file size, default 200), KES_BENCH_ROUNDS, KES_BENCH_PROFILE=FILE (write a
// .cpuprofile of the app's uploads; open it in Chrome DevTools). Needs root. Not part of `npm run bench`.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { testAccounts } from '../integration/fixtures/accounts';
import { makeKey } from '../integration/fixtures/keys';
import { makePool, target, tempDir, trustSshd } from '../integration/fixtures/harness';
import { startSshd } from '../integration/fixtures/sshd';
import { appCpu, childCpu, cpuProfile, GB, idleRss, MiB, RssSampler, runBench, runRounds, spread } from './support';

const MB = Number(process.env.KES_BENCH_MB ?? 200);
const USER = 'kesbench';

async function main(): Promise<void> {
  const dir = await tempDir('kes-upload-cpu-');
  const accounts = testAccounts();
  const sshd = await startSshd();
  const h = await makePool(dir);
  let fullGcs = 0;
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
        fullGcs++;
  });
  gcs.observe({ entryTypes: ['gc'] });
  try {
    await accounts.ensure(USER, undefined, '/bin/sh');
    const key = await makeKey(dir, 'id_bench');
    await sshd.addAuthorizedKey(key.publicKey);
    await trustSshd(h.hostKeys, sshd);
    const knownHosts = join(dir, 'known_hosts');
    const pub = (await fs.readFile(sshd.hostKeyPath + '.pub', 'utf8')).split(' ').slice(0, 2).join(' ');
    await fs.writeFile(knownHosts, `[${sshd.host}]:${sshd.port} ${pub}\n`);
    const t = target(sshd, { method: 'key-file', keyPath: key.path }, { user: USER });
    const file = join(dir, 'blob');
    await childCpu(`head -c ${MB}M /dev/urandom > ${file}`);
    const bytes = MB * 1048576;
    const perGb = (s: number) => s / (bytes / GB);
    const fmt = (c: { cpuS: number; userS: number; sysS: number; ms: number }) =>
      `${perGb(c.cpuS).toFixed(2)} CPU s/GB (user ${perGb(c.userS).toFixed(2)}, sys ${perGb(c.sysS).toFixed(2)}), ${(c.ms / 1000).toFixed(2)} s`;

    const hashed = await appCpu(async () => {
      const hash = createHash('sha256');
      for await (const chunk of (await fs.open(file, 'r')).createReadStream({ highWaterMark: 128 * 1024 }))
        hash.update(chunk as Buffer);
    });
    console.log(`read + sha256 alone: ${fmt(hashed)}`);
    await h.pool.exec(t, 'true'); // warm connection, as in the app
    const idle = await idleRss(1000);
    let peak = 0;
    const remote = `/tmp/kes-upload-cpu-${process.pid}`;
    const profile = await cpuProfile();
    let appGcs = 0;
    const r = await runRounds(
      [
        {
          name: 'app',
          run: async () => {
            const before = fullGcs;
            const rss = new RssSampler().start();
            const c = await appCpu(() => h.pool.upload(t, file, remote, { hash: false })).finally(() => rss.stop());
            peak = Math.max(peak, rss.peak);
            await new Promise((res) => setImmediate(res)); // let the gc observer report
            appGcs = Math.max(appGcs, fullGcs - before);
            await fs.rm(remote, { force: true });
            return {
              value: perGb(c.cpuS),
              detail: `${fmt(c)}, ${fullGcs - before} full GCs, peak RSS ${(rss.peak / MiB).toFixed(0)} MB`,
            };
          },
        },
        {
          name: 'scp',
          run: async () => {
            const c = await childCpu(
              `scp -q -F /dev/null -i ${key.path} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${knownHosts} -P ${sshd.port} ${file} ${USER}@${sshd.host}:${remote}`,
            );
            await fs.rm(remote, { force: true });
            return { value: perGb(c.cpuS), detail: fmt(c) };
          },
        },
      ],
      { label: `upload ${MB} MB` },
    );
    await profile.stop(" (app and scp rounds both; scp's CPU is not in it)");
    const v = (x: number) => x.toFixed(2);
    console.log(`CPU s/GB: app ${spread(r.stats.app, v)}; scp ${spread(r.stats.scp, v)}`);
    console.log(`app / scp ${r.ratio.scp.toFixed(2)} (ratio of medians); up to ${appGcs} full GCs per app upload`);
    console.log(`RSS: idle ${(idle / MiB).toFixed(0)} MB, peak during the app's uploads ${(peak / MiB).toFixed(0)} MB`);
  } finally {
    gcs.disconnect();
    await h.pool.closeAll();
    await sshd.stop();
    await accounts.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

runBench(main, 10 * 60_000);
