// `npx tsx test/bench/stream-cpu.ts`: a quick, lab-free look at what the streamed snapshot costs the
// app (CPU s per GB on the user's laptop, and where it goes), against a TLS etcd and the sshd
// fixture on loopback — to work on that figure without building a lab (bench:snapshot holds the
// real ratio). Env: KES_BENCH_MB (data put into etcd, default 200), KES_BENCH_ROUNDS,
// KES_BENCH_PROFILE=FILE (a .cpuprofile of the app's streams). Needs root. Not part of `npm run bench`.
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { streamSnapshotToFile } from '../../src/main/etcd/snapshot-stream';
import { makePool, target, tempDir, trustSshd } from '../integration/fixtures/harness';
import { makeKey } from '../integration/fixtures/keys';
import { startSshd } from '../integration/fixtures/sshd';
import { startTlsEtcd } from '../integration/support/tls-etcd';
import { appCpu, childCpu, cpuProfile, GB, idleRss, MiB, RssSampler, runBench, runRounds, spread } from './support';

/** Straight to the member (the app's way when the desktop reaches etcd's port). */
async function straight(host: string, port: number) {
  const s = netConnect({ host, port });
  await once(s, 'connect');
  return s;
}

const MB = Number(process.env.KES_BENCH_MB ?? 200);
/** The lab's cached etcd 3.6 (test/lab builds it), else Debian's on PATH. */
const ETCD_BIN = process.env.KES_ETCD_BIN ?? '/var/cache/kes-lab/etcd/v3.6.16';

async function main(): Promise<void> {
  const dir = await tempDir('kes-stream-cpu-');
  const key = await makeKey(dir, 'id_ed25519');
  const [sshd, etcd] = await Promise.all([
    startSshd({ authorizedKeys: [key.publicKey] }),
    startTlsEtcd('127.0.0.2', [], ETCD_BIN),
  ]);
  const h = await makePool(dir);
  try {
    await trustSshd(h.hostKeys, sshd);
    const t = target(sshd, { method: 'key-file', keyPath: key.path });
    const read = (f: string) => fs.readFile(join(etcd.pkiDir, f));
    const tls = {
      ca: await read('ca.crt'),
      cert: await read('healthcheck-client.crt'),
      key: await read('healthcheck-client.key'),
    };
    const value = join(dir, 'value');
    await childCpu(`head -c 76800 /dev/urandom | base64 -w0 > ${value}`);
    const n = Math.ceil((MB * 1024) / 100);
    const tlsArgs = `--endpoints=${etcd.endpoint} --cacert=${etcd.pkiDir}/ca.crt --cert=${etcd.pkiDir}/healthcheck-client.crt --key=${etcd.pkiDir}/healthcheck-client.key`;
    await childCpu(
      `seq 1 ${n} | xargs -P 8 -n 64 sh -c 'for i; do ETCDCTL_API=3 ${ETCD_BIN}/etcdctl ${tlsArgs} put /kf/$i < ${value} >/dev/null; done' sh`,
    );
    await h.pool.exec(t, 'true');
    const idle = await idleRss(1000);
    const profile = await cpuProfile();
    let size = 0;
    /** One contender: the stream over the connection `connect` opens, in CPU s per GB. */
    const contender = (name: string, connect: () => Promise<Duplex>) => ({
      name,
      run: async () => {
        const part = join(dir, `snap-${Date.now()}.part`);
        const rss = new RssSampler().start();
        const c = await appCpu(async () => {
          size = (await streamSnapshotToFile({ connect, tls, serverName: etcd.host, partPath: part })).bytes;
        });
        rss.stop();
        await fs.rm(part, { force: true });
        const per = c.cpuS / (size / GB);
        return {
          value: per,
          detail: `${per.toFixed(2)} CPU s/GB (user ${(c.userS / (size / GB)).toFixed(2)}), ${(c.ms / 1000).toFixed(2)} s, peak RSS +${((rss.peak - idle) / MiB).toFixed(0)} MB`,
        };
      },
    });
    const r = await runRounds(
      [
        contender('app through SSH', () => h.pool.forward(t, etcd.host, etcd.port)),
        contender('app straight', () => straight(etcd.host, etcd.port)),
      ],
      { label: `stream ${MB} MB` },
    );
    await profile.stop();
    console.log(
      `snapshot ${(size / 1048576).toFixed(0)} MB; app CPU s/GB through SSH ${spread(r.stats['app through SSH'], (v) => v.toFixed(2))}; straight ${spread(r.stats['app straight'], (v) => v.toFixed(2))}`,
    );
  } finally {
    await h.pool.closeAll();
    await Promise.all([sshd.stop(), etcd.stop()]);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

runBench(main, 15 * 60_000);
