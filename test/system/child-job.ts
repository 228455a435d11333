// A stand-in for the app process in the "app killed in the middle" test: opens the main-process
// services on a data dir the test prepared, plans and starts a restore of the given snapshot, and
// prints every job update as one JSON line on stdout so the test can SIGKILL it at the moment it
// wants. Run: tsx test/system/child-job.ts DATA_DIR CLUSTER_ID SNAPSHOT_ID CONFIRMATION
// It ends by itself: when the job ends, when stdout goes away (parent gone), or after 4 minutes.
import { openServices } from './support';

async function main(): Promise<void> {
  const [dataDir, clusterId, snapshotId, confirmation] = process.argv.slice(2);
  if (!dataDir || !clusterId || !snapshotId)
    throw new Error('usage: child-job.ts DATA_DIR CLUSTER_ID SNAPSHOT_ID NAME');
  setTimeout(() => process.exit(3), 240_000).unref();
  process.stdout.on('error', () => process.exit(4)); // the test is gone
  const svc = await openServices(dataDir);
  svc.events.subscribe((event, payload) => {
    if (event !== 'job.update') return;
    const rec = payload as { id: string; status: string; steps: { path: string; status: string }[] };
    process.stdout.write(
      JSON.stringify({ id: rec.id, status: rec.status, steps: rec.steps.map((s) => [s.path, s.status]) }) + '\n',
    );
  });
  const r = await svc.dispatch(
    'jobs.plan',
    { clusterId, job: { kind: 'restore-embedded', snapshotId } },
    { client: 'child' },
  );
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  const jobId = (r.value as { id: string }).id;
  const s = await svc.dispatch('jobs.start', { jobId, confirmation }, { client: 'child' });
  if (!s.ok) throw new Error(`${s.error.code}: ${s.error.message}`);
  for (;;) {
    const rec = await svc.jobs.get(jobId);
    if (rec && rec.status !== 'running') break;
    await new Promise((res) => setTimeout(res, 200));
  }
  await svc.close();
  process.exit(0);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(2);
});
