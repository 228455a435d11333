// Intent: the etcd tools are called by the absolute paths discovered on each node (sudo's
// secure_path often lacks /usr/local/bin), passed to scripts through the one quoting path, and the
// job log shows each script run exactly as it is executed (`sudo -n …` for non-root logins).
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterOps } from '../../src/main/cluster/ops';
import { InventoryStore } from '../../src/main/inventory/store';
import { asRoot } from '../../src/main/remote/quote';
import { runScript, ScriptLibrary, scriptExecCommand, toolEnv } from '../../src/main/remote/scripts';
import type { SshPool } from '../../src/main/ssh/pool';
import type { ExecOptions, SshTarget } from '../../src/main/ssh/types';
import { ClusterFacts, NodeInput } from '../../src/shared/domain';

const RESOURCES = resolve(__dirname, '../../resources/scripts');
let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-tools-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A pool that records what it was asked to run and answers with `stdout`. */
function fakePool(stdout = '') {
  const calls: { target: SshTarget; command: string; opts: ExecOptions; run: string }[] = [];
  const pool = {
    exec: async (target: SshTarget, command: string, opts: ExecOptions) => {
      // what the real pool sends: asRoot applied exactly as pool.exec does
      calls.push({ target, command, opts, run: opts.asRoot ? asRoot(command, target.user) : command });
      return { code: 0, signal: null, stdout, stderr: '' };
    },
  } as unknown as SshPool;
  return { pool, calls };
}
const target = (user: string): SshTarget => ({
  nodeId: 'n1',
  label: 'm1',
  host: '198.18.0.2',
  port: 22,
  user,
  auth: { method: 'agent' },
});

describe('toolEnv', () => {
  const tools = { etcd: '/usr/local/bin/etcd', etcdctl: '/usr/local/bin/etcdctl', etcdutl: null };
  it('passes only the tools a script names, by absolute path, and never a relative one', () => {
    expect(toolEnv('ctl=${KES_ETCDCTL:-}', tools)).toEqual(['KES_ETCDCTL=/usr/local/bin/etcdctl']);
    // KES_ETCD is its own word: KES_ETCDCTL does not name it
    expect(toolEnv('"$KES_ETCD" --version; $KES_ETCDCTL', tools)).toEqual([
      'KES_ETCD=/usr/local/bin/etcd',
      'KES_ETCDCTL=/usr/local/bin/etcdctl',
    ]);
    expect(toolEnv('${KES_ETCDUTL:-}', tools)).toEqual([]); // the node has none
    expect(toolEnv('echo hi', tools)).toEqual([]);
    expect(toolEnv('$KES_ETCDCTL', { etcdctl: 'etcdctl' })).toEqual([]);
  });

  it('a hostile path reaches the script as one value, also through sudo -n -- sh -c', () => {
    const path = `/opt/it's $(touch pwned) "x"/etcdctl`;
    const cmd = scriptExecCommand(['a b'], toolEnv('$KES_ETCDCTL', { etcdctl: path }));
    const script = 'printf "%s|%s" "$KES_ETCDCTL" "$1"';
    for (const line of [cmd, asRoot(cmd, 'kes').replace(/^sudo -n -- /, '')]) {
      const out = execFileSync('sh', ['-c', line], { input: script, cwd: dir, encoding: 'utf8' });
      expect(out).toBe(`${path}|a b`);
    }
    expect(execFileSync('ls', [dir], { encoding: 'utf8' })).toBe('');
  });
});

describe('runScript', () => {
  async function lib(text: string): Promise<ScriptLibrary> {
    await fs.writeFile(join(dir, 'probe.sh'), text);
    return new ScriptLibrary(dir, join(dir, 'user'));
  }

  it('logs the command exactly as it runs: through sudo -n for a non-root login, with the tool paths', async () => {
    const { pool, calls } = fakePool();
    const lines: string[] = [];
    const l = await lib('exec "$KES_ETCDCTL" version\n');
    const opts = { log: (_s: string, t: string) => lines.push(t), tools: { etcdctl: '/usr/local/bin/etcdctl' } };
    await runScript(pool, target('kes'), l, 'probe.sh', ['x y'], opts);
    await runScript(pool, target('root'), l, 'probe.sh', ['x y'], opts);
    expect(calls[0].run).toBe(`sudo -n -- sh -c 'env KES_ETCDCTL=/usr/local/bin/etcdctl bash -s -- '\\''x y'\\'''`);
    expect(lines[0]).toBe(`m1$ ${calls[0].run}  # < scripts/probe.sh`);
    expect(calls[1].run).toBe(`env KES_ETCDCTL=/usr/local/bin/etcdctl bash -s -- 'x y'`);
    expect(lines[1]).toBe(`m1$ ${calls[1].run}  # < scripts/probe.sh`);
  });

  it('asRoot: false runs (and logs) the command as the login user', async () => {
    const { pool, calls } = fakePool();
    const lines: string[] = [];
    await runScript(pool, target('kes'), await lib('true\n'), 'probe.sh', [], {
      asRoot: false,
      log: (_s, t) => lines.push(t),
    });
    expect(calls[0].run).toBe('bash -s --');
    expect(lines).toEqual(['m1$ bash -s --  # < scripts/probe.sh']);
  });
});

const facts = (masterId: string): ClusterFacts =>
  ClusterFacts.parse({
    initializedAt: new Date().toISOString(),
    seedNodeId: masterId,
    controlPlaneEndpoint: null,
    etcdCaCert: null,
    etcdCaKeyOn: [],
    etcdVersion: '3.6.16',
    masters: [
      {
        nodeId: masterId,
        name: 'm1',
        hostname: 'm1',
        etcdServers: null,
        etcdDataDir: null,
        etcdManifest: 'active',
        tools: { etcd: null, etcdctl: null, etcdutl: null },
        versions: { etcd: null, etcdctl: null, etcdutl: null },
        problems: [],
      },
    ],
    members: [],
    mode: 'embedded-up',
    modeDetails: [],
  });

describe('tool paths in the facts', () => {
  async function setup(stdout = '') {
    const inv = await InventoryStore.open(dir);
    const c = await inv.createCluster('c');
    const add = (name: string) =>
      inv.upsertNode(c.id, NodeInput.parse({ name, address: '198.18.0.2', user: 'kes', auth: { method: 'agent' } }));
    const m1 = await add('m1');
    const s1 = await add('s1');
    const { pool, calls } = fakePool(stdout);
    const ops = new ClusterOps({
      inventory: inv,
      pool,
      scripts: new ScriptLibrary(RESOURCES, join(dir, 'scripts')),
      targetOf: (_c, id) => ({ ...target('kes'), nodeId: id, label: id === m1.id ? 'm1' : 's1' }),
    });
    return { inv, c, m1, s1, ops, calls };
  }

  it('are recorded once initialized (masters too), survive a reopen, and go with a removed node', async () => {
    const { inv, c, m1, s1 } = await setup();
    const paths = { etcd: '/usr/local/bin/etcd', etcdctl: '/usr/local/bin/etcdctl', etcdutl: null };
    await inv.recordNodeTools(c.id, s1.id, paths); // before initialize: nothing to record into
    expect(inv.get(c.id).facts).toBeNull();
    await inv.setFacts(c.id, facts(m1.id));
    expect(inv.get(c.id).facts!.nodeTools).toEqual({});
    await inv.recordNodeTools(c.id, s1.id, paths);
    await inv.recordNodeTools(c.id, m1.id, paths, { etcdctl: '3.6.16' });
    const again = await InventoryStore.open(dir);
    const f = again.get(c.id).facts!;
    expect(f.nodeTools).toEqual({ [s1.id]: paths, [m1.id]: paths });
    expect(f.masters[0].tools).toEqual(paths);
    expect(f.masters[0].versions.etcdctl).toBe('3.6.16');
    await again.removeNode(c.id, s1.id);
    expect(Object.keys(again.get(c.id).facts!.nodeTools)).toEqual([m1.id]);
  });

  it('facts saved before tool paths existed load with none', async () => {
    const { inv, c, m1 } = await setup();
    await inv.setFacts(c.id, facts(m1.id));
    const raw = JSON.parse(await fs.readFile(inv.file, 'utf8'));
    delete raw.clusters[0].facts.nodeTools;
    await fs.writeFile(inv.file, JSON.stringify(raw));
    expect((await InventoryStore.open(dir)).get(c.id).facts!.nodeTools).toEqual({});
  });

  it('discovery records where the tools are, and later scripts on that node get those paths', async () => {
    const out = [
      'KES_BEGIN',
      'hostname=s1',
      'tool_etcd=/usr/local/bin/etcd',
      'tool_etcdctl=/usr/local/bin/etcdctl',
      'tool_etcdutl=/usr/local/bin/etcdutl',
      'version_etcdutl=3.6.16',
      'KES_END',
    ].join('\n');
    const { inv, c, m1, s1, ops, calls } = await setup(out);
    await inv.setFacts(c.id, facts(m1.id));
    await ops.discover(c.id, s1.id);
    expect(inv.get(c.id).facts!.nodeTools[s1.id]).toEqual({
      etcd: '/usr/local/bin/etcd',
      etcdctl: '/usr/local/bin/etcdctl',
      etcdutl: '/usr/local/bin/etcdutl',
    });
    await ops.run(c.id, s1.id, 'restore-member.sh', ['a']);
    await ops.run(c.id, s1.id, 'transfer-dir.sh', ['kes']);
    await ops.run(c.id, m1.id, 'snapshot-status.sh', ['f']); // m1: never looked at
    expect(calls.map((x) => x.run)).toEqual([
      `sudo -n -- sh -c 'bash -s --'`,
      `sudo -n -- sh -c 'env KES_ETCDCTL=/usr/local/bin/etcdctl KES_ETCDUTL=/usr/local/bin/etcdutl bash -s -- a'`,
      `sudo -n -- sh -c 'bash -s -- kes'`,
      `sudo -n -- sh -c 'bash -s -- f'`,
    ]);
  });
});
