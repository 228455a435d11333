// etcdctl's JSON carries 64-bit ids as bare numbers, which JSON.parse would round. Quote them
// before parsing and show them in hex, as `etcdctl member list` does.

const BIG_ID_KEYS = ['ID', 'id', 'cluster_id', 'member_id', 'leader', 'memberID'];

export function parseEtcdJson<T = unknown>(text: string): T {
  const quoted = text.replace(new RegExp(`"(${BIG_ID_KEYS.join('|')})":\\s*(\\d+)`, 'g'), '"$1":"$2"');
  return JSON.parse(quoted) as T;
}

export function hexId(decimal: string | number | undefined | null): string | null {
  if (decimal === undefined || decimal === null || decimal === '') return null;
  try {
    return BigInt(decimal).toString(16);
  } catch {
    return null;
  }
}

export interface EtcdMemberJson {
  ID: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

export function parseMemberList(
  stdout: string,
): { id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }[] {
  const j = parseEtcdJson<{ members?: EtcdMemberJson[] }>(stdout);
  return (j.members ?? []).map((m) => ({
    id: hexId(m.ID) ?? '',
    name: m.name ?? '',
    peerUrls: m.peerURLs ?? [],
    clientUrls: m.clientURLs ?? [],
    isLearner: !!m.isLearner,
  }));
}

export interface EndpointStatus {
  endpoint: string;
  memberId: string | null;
  leader: string | null;
  version: string | null;
  dbSize: number | null;
  dbSizeInUse: number | null;
  raftIndex: number | null;
  raftTerm: number | null;
  revision: number | null;
  errors: string[];
}

/** Output of `endpoint status -w json` (an array, one entry per endpoint that answered). */
export function parseEndpointStatus(stdout: string): EndpointStatus[] {
  const start = stdout.indexOf('[');
  if (start < 0) return [];
  type Raw = {
    Endpoint: string;
    Status: {
      header?: { member_id?: string; revision?: number; raft_term?: number };
      version?: string;
      dbSize?: number;
      dbSizeInUse?: number;
      leader?: string;
      raftIndex?: number;
      raftTerm?: number;
      errors?: string[];
    };
  };
  const arr = parseEtcdJson<Raw[]>(stdout.slice(start, stdout.lastIndexOf(']') + 1));
  return arr.map((e) => ({
    endpoint: e.Endpoint,
    memberId: hexId(e.Status.header?.member_id),
    leader: hexId(e.Status.leader),
    version: e.Status.version ?? null,
    dbSize: e.Status.dbSize ?? null,
    dbSizeInUse: e.Status.dbSizeInUse ?? null,
    raftIndex: e.Status.raftIndex ?? null,
    raftTerm: e.Status.raftTerm ?? e.Status.header?.raft_term ?? null,
    revision: e.Status.header?.revision ?? null,
    errors: e.Status.errors ?? [],
  }));
}

/** `alarm list` prints `memberID:123 alarm:NOSPACE` lines. */
export function parseAlarms(stdout: string): { memberId: string; alarm: string }[] {
  const out: { memberId: string; alarm: string }[] = [];
  for (const m of stdout.matchAll(/memberID:(\d+)\s+alarm:(\w+)/g))
    out.push({ memberId: hexId(m[1]) ?? m[1], alarm: m[2] });
  return out;
}

/** `snapshot status -w json`: {"hash":…,"revision":…,"totalKey":…,"totalSize":…}. */
export function parseSnapshotStatus(text: string): {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
} {
  const j = JSON.parse(text) as { hash: number; revision: number; totalKey: number; totalSize: number };
  for (const k of ['hash', 'revision', 'totalKey', 'totalSize'] as const) {
    if (typeof j[k] !== 'number') throw new Error(`snapshot status: missing ${k}`);
  }
  return j;
}

/** `etcdctl get … --limit=1 -w json` → the header's revision and the range's key count. */
export function parseRangeCount(out: string): { revision: number; keys: number } {
  const line = out.split('\n').find((l) => l.includes('"header"'));
  const r = (line ? JSON.parse(line) : {}) as { header?: { revision?: number }; count?: number };
  if (typeof r.header?.revision !== 'number') throw new Error(`etcdctl printed no revision: ${out.slice(0, 200)}`);
  return { revision: r.header.revision, keys: r.count ?? 0 };
}
