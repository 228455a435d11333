// Intent: every method of the contract either refuses a hostile string with a clear validation
// error naming the field, or — only for free text (notes), opaque values (secrets, terminal input)
// and local paths/URLs that never reach a shell — passes it on verbatim, to be stored inertly
// (issue 9, item 17). Bracketed IPv6 node addresses arrive without brackets. Each string field of a
// valid payload of every method is replaced by each hostile value in turn.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDispatcher, type Handlers } from '../../src/main/api/dispatch';
import { SnapshotVault } from '../../src/main/vault/snapshots';
import { methods, type MethodName } from '@shared/contract';
import { JobRequest } from '@shared/jobs';

const ID = 'c1';
const UUID = '0123abcd-0123-4567-89ab-0123456789ab';
const FP = `SHA256:${'A'.repeat(43)}`;

/** One or more valid payloads per method (every optional string field present). */
const VALID: Record<MethodName, unknown[]> = {
  'app.info': [{}],
  'clusters.list': [{}],
  'clusters.create': [{ name: 'prod' }],
  'clusters.rename': [{ clusterId: ID, name: 'prod' }],
  'clusters.remove': [{ clusterId: ID }],
  'nodes.upsert': [
    {
      clusterId: ID,
      node: {
        id: 'n1',
        name: 'master-1',
        address: '198.18.0.1', // never contacted: schema checks only
        port: 22,
        user: 'root',
        roles: ['master'],
        auth: { method: 'key-file', keyPath: '/home/u/.ssh/id_ed25519' },
        jumpNodeId: 'n2',
      },
    },
  ],
  'nodes.addMany': [
    {
      clusterId: ID,
      nodes: [
        {
          name: 'master-1',
          address: '198.18.0.1', // never contacted: schema checks only
          port: 22,
          user: 'root',
          roles: ['master'],
          auth: { method: 'key-file', keyPath: '/home/u/.ssh/id_ed25519' },
          jumpNodeId: 'n2',
        },
      ],
      credential: { copyFrom: 'n1', privateKey: 'k', passphrase: 'p', password: 'hunter2' },
    },
  ],
  'nodes.remove': [{ clusterId: ID, nodeId: 'n1' }],
  'nodes.status': [{ clusterId: ID }],
  'sshConfig.read': [{ path: '/home/u/.ssh/config' }],
  'sshConfig.import': [{ clusterId: ID, path: '/home/u/.ssh/config', hosts: ['master-1'] }],
  'secrets.status': [{ clusterId: ID, nodeId: 'n1' }],
  'secrets.set': [{ clusterId: ID, nodeId: 'n1', kind: 'password', value: 'hunter2' }],
  'secrets.copy': [{ clusterId: ID, fromNodeId: 'n1', toNodeId: 'n2' }],
  'secrets.clear': [{ clusterId: ID, nodeId: 'n1', kind: 'password' }],
  'keychain.status': [{}],
  'ssh.test': [{ clusterId: ID, nodeId: 'n1' }],
  'ssh.connect': [{ clusterId: ID, nodeId: 'n1' }],
  'ssh.disconnect': [{ clusterId: ID, nodeId: 'n1' }],
  'hostKeys.list': [{}],
  'hostKeys.trust': [{ clusterId: ID, nodeId: 'n1', fingerprint: FP }],
  'hostKeys.forget': [{ host: 'master-1.example', port: 22 }],
  'terminal.openLocal': [{ cols: 80, rows: 24 }],
  'terminal.openSsh': [{ clusterId: ID, nodeId: 'n1', cols: 80, rows: 24 }],
  'terminal.openKubectl': [{ clusterId: ID, cols: 80, rows: 24 }],
  'terminal.write': [{ id: 't1', data: 'ls\r' }],
  'terminal.resize': [{ id: 't1', cols: 80, rows: 24 }],
  'terminal.ack': [{ id: 't1', chars: 10 }],
  'terminal.close': [{ id: 't1' }],
  'cluster.initialize': [{ clusterId: ID, nodeId: 'n1' }],
  'cluster.health': [{ clusterId: ID }, { clusterId: ID, namespaces: ['default', 'team-a'] }],
  'cluster.exportKubeconfig': [{ clusterId: ID, path: '/home/u/admin.conf' }],
  'cluster.preflight': [{ clusterId: ID }, { clusterId: ID, lbPort: 8443 }],
  'snapshots.list': [{ clusterId: ID }],
  'snapshots.update': [{ id: UUID, note: 'before upgrade' }],
  'snapshots.verify': [{ id: UUID, clusterId: ID }],
  'snapshots.export': [{ id: UUID, path: '/tmp/out.db' }],
  'snapshots.import': [{ path: '/tmp/in.db', note: 'imported' }],
  'snapshots.delete': [{ id: UUID }],
  'snapshots.schedule.get': [{ clusterId: ID }],
  'snapshots.schedule.set': [{ clusterId: ID, everyHours: 6, keep: 10, enabled: true }],
  'states.list': [{ clusterId: ID }],
  'jobs.plan': [
    { clusterId: ID, job: { kind: 'snapshot', note: 'nightly', nodeId: 'n1' } },
    { clusterId: ID, job: { kind: 'restore-embedded', snapshotId: UUID } },
    { clusterId: ID, job: { kind: 'capture-state', note: 'before switch' } },
    { clusterId: ID, job: { kind: 'restore-state', stateId: UUID } },
    { clusterId: ID, job: { kind: 'drill', namespaces: ['default', 'team-a'] } },
    { clusterId: ID, job: { kind: 'install-tools', nodeIds: ['n1'], archive: 'etcd-v3.5.21-linux-amd64.tar.gz' } },
    { clusterId: ID, job: { kind: 'provision-external', nodeIds: ['n1'], startEmpty: false } },
    { clusterId: ID, job: { kind: 'external-unit', nodeIds: ['n1'], action: 'start' } },
    { clusterId: ID, job: { kind: 'restore-external', snapshotId: UUID } },
    { clusterId: ID, job: { kind: 'switch', direction: 'to-external', keepExternalRunning: false } },
    { clusterId: ID, job: { kind: 'member-remove', nodeId: 'n1' } },
    { clusterId: ID, job: { kind: 'member-add', nodeId: 'n1' } },
    { clusterId: ID, job: { kind: 'defrag' } },
    { clusterId: ID, job: { kind: 'alarm-disarm' } },
  ],
  'jobs.start': [{ jobId: UUID, confirmation: 'prod' }],
  'jobs.cancel': [{ jobId: UUID }],
  'jobs.list': [{ clusterId: ID }],
  'jobs.get': [{ jobId: UUID }],
  'jobs.logChunk': [{ jobId: UUID, offset: 0 }],
  'scripts.list': [{}],
  'scripts.reset': [{ name: 'discover.sh' }],
  'scripts.diff': [{ name: 'discover.sh' }],
  'tools.list': [{}],
  'tools.add': [{ path: '/tmp/etcd-v3.5.21-linux-amd64.tar.gz', sha256: 'a'.repeat(64) }],
  'tools.download': [{ version: '3.5.21' }],
  'settings.get': [{}],
  'settings.set': [
    {
      connectTimeoutMs: 10_000,
      sshConfigPath: '/home/u/.ssh/config',
      etcdReleaseBaseUrl: 'https://mirror.example/etcd',
    },
  ],
};

/** What a field may accept from the hostile set (anything else must be refused). */
type Kind = 'strict' | 'host' | 'path' | 'text' | 'opaque';
const KIND: Record<string, Kind> = {
  'nodes.upsert node.address': 'host',
  'hostKeys.forget host': 'host',
  'nodes.upsert node.auth.keyPath': 'path',
  'sshConfig.read path': 'path',
  'sshConfig.import path': 'path',
  'snapshots.export path': 'path',
  'snapshots.import path': 'path',
  'tools.add path': 'path',
  'cluster.exportKubeconfig path': 'path',
  'settings.set sshConfigPath': 'path',
  'settings.set etcdReleaseBaseUrl': 'path',
  'snapshots.update note': 'text',
  'snapshots.import note': 'text',
  'jobs.plan job.note': 'text',
  'secrets.set value': 'opaque',
  'nodes.addMany nodes.address': 'host',
  'nodes.addMany nodes.auth.keyPath': 'path',
  'nodes.addMany credential.privateKey': 'opaque',
  'nodes.addMany credential.passphrase': 'opaque',
  'nodes.addMany credential.password': 'opaque',
  'terminal.write data': 'opaque',
};

const LONG = 'x'.repeat(70_000);
/** Whole-value replacements, and suffixes appended to the valid value. */
const HOSTILE = [
  '',
  ' ',
  '\0',
  'a\0b',
  '\x07',
  '\x1b[2J',
  'a\nb',
  'a\r\nb',
  '\u0085',
  '$(reboot)',
  '`reboot`',
  '; rm -rf / #',
  '\'"',
  '../../etc/passwd',
  '..',
  '[::1]',
  '[::1',
  '\u202Eevil',
  'a\u2066b\u2069',
  LONG,
];
const SUFFIXES = ['\0', '\n', '\x1b', '\u202E', ' $(reboot)', '`id`', '/../../etc'];

/** Any C0/DEL/C1 control character (but tab, newline and CR when `allowWs`). */
const hasControl = (v: string, allowWs = false) =>
  [...v].some((ch) => {
    const c = ch.codePointAt(0)!;
    return c < 32 ? !(allowWs && (c === 9 || c === 10 || c === 13)) : c >= 0x7f && c <= 0x9f;
  });
const BIDI = /[\u202a-\u202e\u2066-\u2069]/;

/**
 * May `kind` accept `v` (in place of `valid`), and what must the handler then receive?
 * (undefined: must refuse). Surrounding whitespace around a valid value may be trimmed away.
 */
function expectation(kind: Kind, v: string, valid: string): { receive: string; orRefuse?: true } | undefined {
  if ((kind === 'strict' || kind === 'host') && v !== valid && v.trim() === valid)
    return { receive: valid, orRefuse: true };
  switch (kind) {
    case 'strict':
      return undefined;
    case 'host':
      return v === '[::1]' ? { receive: '::1' } : undefined;
    case 'path':
      // Paths and URLs have rules of their own (absolute, http(s)): refusing more is fine.
      return hasControl(v) || BIDI.test(v) || v.length > 4096 ? undefined : { receive: v, orRefuse: true };
    case 'text':
      return hasControl(v, true) || v.length > 2000 ? undefined : { receive: v };
    case 'opaque':
      // Anything goes (it is stored or typed as is), but empty and huge values may be refused.
      return v === '' || v.length > 60_000 ? { receive: v, orRefuse: true } : { receive: v };
  }
}

/** The smallest file the vault takes for a snapshot: four bbolt pages with two meta pages. */
function minimalBoltFile(): Buffer {
  const b = Buffer.alloc(4 * 4096);
  for (const [at, txid] of [
    [0, 1n],
    [4096, 0n],
  ] as const) {
    b.writeUInt32LE(0xed0cdaed, at + 16);
    b.writeUInt32LE(2, at + 20);
    b.writeUInt32LE(4096, at + 24);
    b.writeBigUInt64LE(4n, at + 56);
    b.writeBigUInt64LE(txid, at + 64);
  }
  return b;
}

function stringLeaves(v: unknown, path: string[] = []): string[][] {
  if (typeof v === 'string') return [path];
  if (Array.isArray(v)) return v.flatMap((x, i) => stringLeaves(x, [...path, String(i)]));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => stringLeaves(x, [...path, k]));
  return [];
}
function withLeaf(base: unknown, path: string[], value: string): unknown {
  const copy = structuredClone(base) as Record<string, unknown>;
  let o: Record<string, unknown> = copy;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[path.at(-1)!] = value;
  return copy;
}
function leafOf(v: unknown, path: string[]): unknown {
  return path.reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], v);
}

function recordingDispatcher() {
  const received: unknown[] = [];
  const handlers = new Proxy({} as Handlers, {
    get: () => (input: unknown) => {
      received.push(input);
      return null;
    },
  });
  return { dispatch: createDispatcher(handlers), received };
}

describe('hostile strings against every contract method', () => {
  it('has a valid payload for every method, and each is accepted as is', async () => {
    expect(Object.keys(VALID).sort()).toEqual(Object.keys(methods).sort());
    const { dispatch } = recordingDispatcher();
    for (const [m, bases] of Object.entries(VALID))
      for (const base of bases) expect(await dispatch(m, base, { client: 'test' }), m).toMatchObject({ ok: true });
  });

  it('refuses each hostile string with an error naming the field, or passes it on verbatim where that is safe', async () => {
    const { dispatch, received } = recordingDispatcher();
    let checked = 0;
    for (const [m, bases] of Object.entries(VALID)) {
      for (const base of bases) {
        for (const path of stringLeaves(base)) {
          const field = path.filter((p) => !/^\d+$/.test(p)).join('.');
          const kind = KIND[`${m} ${field}`] ?? 'strict';
          const valid = leafOf(base, path) as string;
          for (const v of [...HOSTILE, ...SUFFIXES.map((s) => valid + s)]) {
            const label = `${m} ${path.join('.')} = ${JSON.stringify(v.slice(0, 40))}`;
            received.length = 0;
            const r = await dispatch(m, withLeaf(base, path, v), { client: 'test' });
            const want = expectation(kind, v, valid);
            checked++;
            if (r.ok) {
              expect(want, `${label} was accepted`).toBeDefined();
              expect(leafOf(received[0], path), label).toBe(want!.receive);
            } else {
              expect(!want || want.orRefuse, `${label} was refused: ${r.error.message}`).toBe(true);
              expect(r.error.code, label).toBe('INVALID_INPUT');
              // The message names the field (or the union member it belongs to).
              const issues = (r.error.details as { issues: { path: string[] }[] }).issues;
              expect(
                issues.some((i) => i.path.join('.').startsWith(path.slice(0, 1).join('.'))),
                label,
              ).toBe(true);
              expect(r.error.message.length, label).toBeLessThan(2000);
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1500);
  });

  it('refuses a snapshot note with NUL or control characters when the job is planned, not after the download', () => {
    for (const note of ['a\0b', 'bell\x07', '\x1b[31mred'])
      expect(JobRequest.safeParse({ kind: 'snapshot', note }).success, JSON.stringify(note)).toBe(false);
    expect(JobRequest.safeParse({ kind: 'snapshot', note: 'line 1\nline 2\t$(x) `y` ../z \u202Eq' }).success).toBe(
      true,
    );
  });

  it('stores a hostile but allowed note inertly: what was written is what is read back', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'kes-notes-'));
    try {
      const vault = await SnapshotVault.open(dir);
      await fs.writeFile(join(dir, 'in.db'), minimalBoltFile());
      const note = 'a\nb\t$(reboot) `id` \'" ../../etc/passwd [::1] \u202Eevil\u2066x\u2069 ünï';
      const meta = await vault.importFile(join(dir, 'in.db'), note);
      expect((await vault.get(meta.id)).note).toBe(note);
      expect((await vault.update(meta.id, { note: note + '!' })).note).toBe(note + '!');
      expect((await SnapshotVault.open(dir).then((v) => v.get(meta.id))).note).toBe(note + '!');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
