// A tiny etcd v3 client over etcd's JSON gRPC gateway (POST /v3/kv/range etc. on the client port,
// mutual TLS). Used by the kube-apiserver stand-in (its storage) and by the lab itself (member add,
// health). No npm etcd client is needed and the traffic is exactly what etcd serves to anyone.
import { Agent, request } from 'node:https';
import { assertLabUrl } from '../guard';

export interface EtcdTls {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}

export interface KV {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
}

const enc = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const dec = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** The key right after every key starting with `prefix` (etcd's range_end for a prefix scan). */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      b[i]++;
      return b.subarray(0, i + 1).toString('latin1');
    }
  }
  return '\0';
}

function encRaw(s: string): string {
  // range_end from prefixEnd is latin1 bytes; keys are plain ASCII in practice
  return Buffer.from(s, 'latin1').toString('base64');
}

export class EtcdError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

export class EtcdClient {
  private readonly agent: Agent;
  /** Index of the endpoint that answered last: try it first next time. */
  private current = 0;

  constructor(
    readonly endpoints: string[],
    tls: EtcdTls,
    private readonly subnet?: string,
  ) {
    this.agent = new Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key, maxSockets: 16 });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Raw HTTPS call against one endpoint. */
  callOne(endpoint: string, path: string, body: Json | undefined, timeoutMs = 3000): Promise<Json> {
    const url = new URL(path, endpoint);
    assertLabUrl(url.href, this.subnet);
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        url,
        {
          method: data === undefined ? 'GET' : 'POST',
          agent: this.agent,
          timeout: timeoutMs,
          headers: data ? { 'content-type': 'application/json' } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let json: Json;
            try {
              json = text ? (JSON.parse(text) as Json) : {};
            } catch {
              json = { raw: text };
            }
            if ((res.statusCode ?? 500) >= 400)
              reject(
                new EtcdError(
                  `etcd ${path}: ${res.statusCode} ${String(json.error ?? json.message ?? text)}`,
                  res.statusCode,
                ),
              );
            else resolve(json);
          });
        },
      );
      req.on('timeout', () => req.destroy(new EtcdError(`etcd ${endpoint}${path}: timeout after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Call with fail-over across endpoints (like the real client balancer). */
  async call(path: string, body: Json | undefined, timeoutMs = 3000): Promise<Json> {
    let lastErr: unknown;
    for (let i = 0; i < this.endpoints.length; i++) {
      const idx = (this.current + i) % this.endpoints.length;
      try {
        const r = await this.callOne(this.endpoints[idx], path, body, timeoutMs);
        this.current = idx;
        return r;
      } catch (e) {
        lastErr = e;
        if (e instanceof EtcdError && e.status && e.status < 500) throw e;
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
  }

  private static kv(raw: Json): KV {
    return {
      key: dec(raw.key as string),
      value: dec(raw.value as string),
      createRevision: Number(raw.create_revision ?? raw.createRevision ?? 0),
      modRevision: Number(raw.mod_revision ?? raw.modRevision ?? 0),
    };
  }

  /** Linearizable range (fails without quorum, which is what /readyz must notice). */
  async range(
    key: string,
    opts: { prefix?: boolean; limit?: number; countOnly?: boolean } = {},
  ): Promise<{ kvs: KV[]; revision: number; count: number }> {
    const body: Json = { key: enc(key) };
    if (opts.prefix) body.range_end = encRaw(prefixEnd(key));
    if (opts.limit) body.limit = String(opts.limit);
    if (opts.countOnly) body.count_only = true;
    const r = await this.call('/v3/kv/range', body);
    const header = (r.header ?? {}) as Json;
    return {
      kvs: ((r.kvs as Json[] | undefined) ?? []).map(EtcdClient.kv),
      revision: Number(header.revision ?? 0),
      count: Number(r.count ?? 0),
    };
  }

  async get(key: string): Promise<KV | undefined> {
    return (await this.range(key)).kvs[0];
  }

  async put(key: string, value: string): Promise<number> {
    const r = await this.call('/v3/kv/put', { key: enc(key), value: enc(value) });
    return Number(((r.header ?? {}) as Json).revision ?? 0);
  }

  /** Put only if the key does not exist; returns the new revision, or undefined when it existed. */
  async create(key: string, value: string): Promise<number | undefined> {
    const r = await this.call('/v3/kv/txn', {
      compare: [{ key: enc(key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: { key: enc(key), value: enc(value) } }],
    });
    if (!r.succeeded) return undefined;
    return Number(((r.header ?? {}) as Json).revision ?? 0);
  }

  /** Put only if the key exists (an update); returns the revision or undefined when it is gone. */
  async update(key: string, value: string): Promise<number | undefined> {
    const r = await this.call('/v3/kv/txn', {
      compare: [{ key: enc(key), target: 'CREATE', result: 'GREATER', create_revision: '0' }],
      success: [{ request_put: { key: enc(key), value: enc(value) } }],
    });
    if (!r.succeeded) return undefined;
    return Number(((r.header ?? {}) as Json).revision ?? 0);
  }

  async del(key: string, opts: { prefix?: boolean } = {}): Promise<number> {
    const body: Json = { key: enc(key) };
    if (opts.prefix) body.range_end = encRaw(prefixEnd(key));
    const r = await this.call('/v3/kv/deleterange', body);
    return Number(r.deleted ?? 0);
  }

  async memberList(): Promise<{ id: string; name: string; peerURLs: string[]; clientURLs: string[] }[]> {
    const r = await this.call('/v3/cluster/member/list', {});
    return ((r.members as Json[] | undefined) ?? []).map((m) => ({
      id: String(m.ID ?? m.id ?? ''),
      name: String(m.name ?? ''),
      peerURLs: (m.peerURLs ?? m.peer_urls ?? []) as string[],
      clientURLs: (m.clientURLs ?? m.client_urls ?? []) as string[],
    }));
  }

  async memberAdd(peerURL: string): Promise<void> {
    await this.call('/v3/cluster/member/add', { peerURLs: [peerURL] }, 10_000);
  }

  /** GET /health of one endpoint: {"health":"true"} when the member serves with quorum. */
  async healthy(endpoint: string, timeoutMs = 2000): Promise<boolean> {
    try {
      const r = await this.callOne(endpoint, '/health', undefined, timeoutMs);
      return r.health === 'true' || r.health === true;
    } catch {
      return false;
    }
  }
}
