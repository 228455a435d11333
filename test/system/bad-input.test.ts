// Intent: whatever a user (or a compromised renderer) types into names, notes, ids and paths is
// either rejected with INVALID_INPUT by the API schemas or stored as plain data — never spliced
// into a shell command or a vault path. Everything goes through the dispatcher (`sys.call`), so
// the contract's schemas are what is exercised, and jobs that carry user text really run against
// a lab master to prove nothing gets executed there either.
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../src/main/jobs/types';
import type { SnapshotMeta, StateManifest } from '../../src/shared/vault';
import { initialize, runJob, startSystem, type System } from './support';

let sys: System;
let snap: SnapshotMeta;
let work: string;

// Every payload tries to create this file; it must never appear, locally or on a host.
const MARK = `/tmp/kf-pwned-${process.pid}`;
const SHELL = [
  `$(touch ${MARK})`,
  `\`touch ${MARK}\``,
  `; touch ${MARK}`,
  `| touch ${MARK}`,
  `&& touch ${MARK} #`,
  `'; touch ${MARK}; echo '`,
  `"; touch ${MARK}; echo "`,
  `\${IFS}touch\${IFS}${MARK}`,
];
const TRAVERSAL = ['../../../../etc/passwd', '..', '../', '/etc/passwd', `..\\..\\windows`];
const HUGE = 'x'.repeat(100 * 1024);

async function rejected(method: string, input: unknown, code = 'INVALID_INPUT'): Promise<void> {
  await expect(sys.call(method, input), `${method} ${JSON.stringify(input).slice(0, 120)}`).rejects.toMatchObject({
    code,
  });
}

async function noMark(): Promise<void> {
  expect(existsSync(MARK), `local ${MARK}`).toBe(false);
  const r = await sys.lab.exec(
    'm1',
    `find / -xdev \\( -path /proc -o -path /sys \\) -prune -o -name 'kf-pwned-*' -print 2>/dev/null | head; true`,
  );
  expect(r.stdout.trim(), 'files named kf-pwned-* on m1').toBe('');
}

beforeAll(async () => {
  sys = await startSystem({ prefix: 'kf2', masters: 1, lb: 'none' });
  await initialize(sys);
  work = await fs.mkdtemp(join(sys.dataDir, 'bad-input-'));
}, 240_000);

afterAll(async () => {
  await fs.rm(MARK, { force: true });
  await sys?.close();
});

describe('bad input is rejected or stored safely, never executed', () => {
  it('stores snapshot and state notes with shell metacharacters, traversal and newlines as plain text', async () => {
    const note = [...SHELL, ...TRAVERSAL, 'line\r\nbreak\ttab ✓ 日本'].join('\n');
    expect(note.length).toBeLessThan(2000);
    const rec = await runJob<JobRecord>(sys, { kind: 'snapshot', note });
    expect(rec.status, rec.error).toBe('succeeded');
    [snap] = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
    expect(snap.note).toBe(note);
    // The vault holds only id-named folders: the note never became a path.
    const vaultEntries = await fs.readdir(join(sys.dataDir, 'vault', 'snapshots'));
    expect(vaultEntries.every((e) => /^[0-9a-f-]{36}$/.test(e))).toBe(true);
    // Renaming the note to each payload in turn round-trips verbatim.
    for (const n of [...SHELL, ...TRAVERSAL]) {
      const m = await sys.call<SnapshotMeta>('snapshots.update', { id: snap.id, note: n });
      expect(m.note).toBe(n);
    }
    // A state whose note is a payload: saved on demand (reads every master), note kept verbatim.
    const st = await runJob<JobRecord>(sys, { kind: 'capture-state', note: SHELL.join(' ') });
    expect(st.status, st.error).toBe('succeeded');
    const states = await sys.call<StateManifest[]>('states.list', { clusterId: sys.clusterId });
    expect(states.some((s) => s.reason === SHELL.join(' '))).toBe(true);
    await noMark();
  });

  it('rejects NUL and control characters, and huge strings, in notes and names', async () => {
    for (const note of ['a\0b', 'bell\x07', 'esc\x1b[31m', HUGE])
      await rejected('snapshots.update', { id: snap.id, note });
    await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'snapshot', note: HUGE } });
    await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'capture-state', note: HUGE } });
    await rejected('snapshots.import', { path: join(work, 'x.db'), note: 'nul\0' });
    await rejected('clusters.create', { name: HUGE });
    await rejected('clusters.create', { name: `c${SHELL[0]}` });
    await rejected('clusters.rename', { clusterId: sys.clusterId, name: '../other' });
    await rejected('jobs.start', { jobId: '00000000-0000-0000-0000-000000000000', confirmation: HUGE });
    // The note stayed what it was.
    expect((await sys.call<SnapshotMeta[]>('snapshots.list', {})).find((m) => m.id === snap.id)?.note).toBe(
      TRAVERSAL[TRAVERSAL.length - 1],
    );
  });

  it('rejects ids that are not ids (traversal, metacharacters, newlines) everywhere they are taken', async () => {
    const badIds = [
      ...TRAVERSAL,
      `../${snap.id}`,
      `${snap.id}/../${snap.id}`,
      `${snap.id}\n`,
      `${snap.id};rm -rf /`,
      ...SHELL,
      HUGE,
    ];
    for (const id of badIds) {
      await rejected('snapshots.verify', { id });
      await rejected('snapshots.delete', { id });
      await rejected('snapshots.update', { id, note: 'x' });
      await rejected('snapshots.export', { id, path: join(work, 'out.db') });
      await rejected('jobs.get', { jobId: id });
      await rejected('jobs.cancel', { jobId: id });
      await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'restore-embedded', snapshotId: id } });
      await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'restore-state', stateId: id } });
      await rejected('states.list', { clusterId: id });
    }
    // Shaped like an id but naming nothing: NOT_FOUND, no file touched.
    const dashes = '-'.repeat(36);
    await rejected('snapshots.verify', { id: dashes }, 'NOT_FOUND');
    await rejected('snapshots.delete', { id: dashes }, 'NOT_FOUND');
    await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'snapshot', nodeId: '../m1' } });
    // Unknown fields are refused, not ignored (strict schemas).
    await rejected('snapshots.update', { id: snap.id, note: 'x', path: '/etc/passwd' });
    await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'snapshot', note: 'x', command: 'id' } });
    expect((await sys.call<SnapshotMeta[]>('snapshots.list', {})).map((m) => m.id)).toContain(snap.id);
  });

  it('treats import/export paths as plain local files: relative or NUL paths refused, `..` just a path', async () => {
    const file = sys.svc.snapshots.filePath(snap.id);
    for (const path of ['snap.db', './snap.db', '../snap.db', 'C:snap.db', '', `a\0b`, `/tmp/${'x'.repeat(5000)}`]) {
      await rejected('snapshots.import', { path });
      await rejected('snapshots.export', { id: snap.id, path });
    }
    // Export through `..` with shell metacharacters in the name: one plain file at that place.
    await fs.mkdir(join(work, 'sub'));
    // (no `/` in a file name: these payloads would create ./kf-pwned-… if a shell ever saw them)
    const odd = `exported $(touch kf-pwned-a) \`touch kf-pwned-b\`; touch kf-pwned-c & x.db`;
    await sys.call('snapshots.export', { id: snap.id, path: `${work}/sub/../${odd}` });
    const written = join(work, odd);
    expect((await fs.readFile(written)).equals(await fs.readFile(file))).toBe(true);
    expect((await fs.readdir(work)).sort()).toEqual([odd, 'sub']);
    // Export into a folder that does not exist fails without leaving anything.
    await expect(sys.call('snapshots.export', { id: snap.id, path: join(work, 'nope', 'x.db') })).rejects.toThrow();
    expect((await fs.readdir(work)).sort()).toEqual([odd, 'sub']);
    // Importing it back (through `..` again): validated, stored under a new id, the odd name kept as data.
    const imported = await sys.call<SnapshotMeta>('snapshots.import', {
      path: `${work}/sub/../${odd}`,
      note: SHELL[2],
    });
    expect(imported.sha256).toBe(snap.sha256);
    expect(imported.source.originalName).toBe(odd);
    expect(imported.note).toBe(SHELL[2]);
    expect(imported.id).toMatch(/^[0-9a-f-]{36}$/);
    await sys.call('snapshots.delete', { id: imported.id });
    // A path pointing at something that is not a file, or not a snapshot, is refused as such.
    await rejected('snapshots.import', { path: work }, 'SNAPSHOT_INVALID');
    await rejected('snapshots.import', { path: '/etc/passwd' }, 'SNAPSHOT_INVALID');
    await rejected('snapshots.import', { path: '/dev/zero' }, 'SNAPSHOT_INVALID');
    await rejected('snapshots.import', { path: `${work}/sub/../missing.db` }, 'NOT_FOUND');
    await rejected('snapshots.import', { path: '/etc/../etc/hostname' }, 'SNAPSHOT_INVALID');
    await noMark();
    for (const d of [work, process.cwd(), sys.dataDir])
      expect(
        (await fs.readdir(d)).filter((n) => n.startsWith('kf-pwned')),
        d,
      ).toEqual([]);
  });

  it('refuses a drill on namespaces that are not namespace names, before anything is planned', async () => {
    const jobsBefore = (await sys.call<unknown[]>('jobs.list', { clusterId: sys.clusterId })).length;
    const bad = [
      ...SHELL,
      ...TRAVERSAL,
      'kube-system/..',
      'default\nkube-system',
      'Default',
      '-default',
      'default-',
      'a'.repeat(64),
      'x b',
      '%2e%2e',
      '',
    ];
    for (const ns of bad) {
      await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'drill', namespaces: [ns] } });
      await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'drill', namespaces: ['default', ns] } });
    }
    await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'drill', namespaces: [] } });
    // only the kinds a drill knows; never cluster-wide objects such as nodes
    for (const kinds of [[], ['nodes'], ['pods', 'clusterroles'], ['pods; rm -rf /']])
      await rejected('jobs.plan', { clusterId: sys.clusterId, job: { kind: 'drill', namespaces: ['default'], kinds } });
    await rejected('jobs.plan', {
      clusterId: sys.clusterId,
      job: { kind: 'drill', namespaces: Array.from({ length: 51 }, (_, i) => `ns${i}`) },
    });
    expect((await sys.call<unknown[]>('jobs.list', { clusterId: sys.clusterId })).length).toBe(jobsBefore);
    // The pods in kube-system are all still there.
    const api = sys.lab.api();
    try {
      const pods = await api.call('GET', '/api/v1/namespaces/kube-system/pods');
      expect((pods.body as { items: unknown[] }).items.length).toBeGreaterThan(0);
    } finally {
      api.close();
    }
  });

  it('rejects node names, addresses, users, key paths, script and archive names that could escape', async () => {
    const base = {
      name: 'ok',
      address: sys.lab.host('m1').address,
      user: 'root',
      roles: [],
      auth: { method: 'key-file', keyPath: sys.lab.keyPath },
    };
    const upsert = (node: Record<string, unknown>) =>
      rejected('nodes.upsert', { clusterId: sys.clusterId, node: { ...base, ...node } });
    for (const name of [...SHELL, ...TRAVERSAL, '.hidden', 'a/b', 'a b', 'x'.repeat(64), 'm1\n', HUGE])
      await upsert({ name });
    for (const address of [...SHELL, '198.19.0.1; id', 'host name', '-oProxyCommand=id', '300.1.1.1', HUGE])
      await upsert({ address });
    for (const user of [...SHELL, '-oProxyCommand=id', 'root;id', 'Root', 'a b', '../root']) await upsert({ user });
    for (const keyPath of ['id_rsa', '../id_rsa', 'a\0b']) await upsert({ auth: { method: 'key-file', keyPath } });
    await upsert({ port: 0 });
    await upsert({ port: 70000 });
    expect(sys.svc.inventory.get(sys.clusterId).nodes.map((n) => n.name)).toEqual(['m1']);

    for (const name of ['../../etc/passwd', 'restore-member.sh; id', '.sh', 'a/b.sh', 'X.sh', `${SHELL[0]}.sh`])
      await rejected('scripts.reset', { name });
    // archive names are refused by their shape before anything is looked up
    for (const archive of ['../../../etc/passwd', SHELL[0], HUGE.slice(0, 255)])
      await rejected('jobs.plan', {
        clusterId: sys.clusterId,
        job: { kind: 'install-tools', nodeIds: ['x'], archive },
      });
    // a well-formed name that names no archive
    await rejected(
      'jobs.plan',
      {
        clusterId: sys.clusterId,
        job: { kind: 'install-tools', nodeIds: ['x'], archive: 'etcd-v9.9.9-linux-amd64.tar.gz' },
      },
      'NOT_FOUND',
    );
    await rejected('tools.add', { path: 'etcd.tar.gz', sha256: '0'.repeat(64) });
    await rejected('tools.download', { version: `3.5.0; ${SHELL[0]}` });
    await rejected('tools.download', { version: '../3.5.0' });
    await noMark();
  });
});
