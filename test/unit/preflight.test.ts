// Intent: pre-flight output becomes table rows with a fix for every failure; SSH and sudo failures,
// clashing hostnames, disagreeing clocks and an LB port on kubeadm's ports are caught app-side.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  clockRows,
  fixFor,
  hostnameRows,
  lbPortRows,
  nodeRows,
  parsePreflight,
  portsFor,
  preflightArgs,
  report,
  runPreflight,
  specNodes,
  sshRow,
  type PreflightNode,
} from '../../src/main/kube/preflight';
import { asRoot } from '../../src/main/remote/quote';
import { ScriptLibrary } from '../../src/main/remote/scripts';
import type { SshPool } from '../../src/main/ssh/pool';
import { SshError, type ExecOptions, type SshTarget } from '../../src/main/ssh/types';

const SCRIPTS = resolve(__dirname, '../../resources/scripts');
const userDir = mkdtempSync(join(tmpdir(), 'kes-preflight-'));
afterAll(() => rmSync(userDir, { recursive: true, force: true }));

const node = (name: string, roles: string[], user = 'kes'): PreflightNode => ({
  id: name,
  name,
  address: `198.18.0.${name.length + 10}`,
  port: 22,
  user,
  roles,
});

const OUT = [
  'preflight\t1',
  'fact\tclock\t1700000000.250000000',
  'fact\tuid\t0',
  'fact\thostname\tm1',
  'check\tsudo\tok\tsudo -n works for kes',
  'check\tmemory\tfail\t900 MB: a control-plane node needs at least 1700 MB (kubeadm Mem)',
  'check\tport-6443\tfail\tin use: 0.0.0.0:6443 by python3 (pid 4242)',
  'check\tport-2379\tfail\tin use: 127.0.0.1:2379 by etcd (pid 77)',
  'check\texisting\tfail\t/etc/kubernetes/admin.conf',
  'check\tswap\twarn\ton: /dev/sda2 (2048 MB)',
  'check\tBad Name\tok\tignored',
  'check\tos\tmaybe\tignored',
  'random noise from a profile script',
  'end\tpreflight',
].join('\r\n');

describe('ports and arguments', () => {
  it('asks for kubeadm ports per role and the LB port on the LB, each once, sorted', () => {
    expect(portsFor(['master', 'etcd'])).toEqual([2379, 2380, 6443, 10250, 10257, 10259]);
    expect(portsFor(['worker'])).toEqual([10250]);
    expect(portsFor(['lb'], 8443)).toEqual([8443]);
    expect(portsFor(['lb', 'worker'], 10250)).toEqual([10250]);
    expect(preflightArgs(['etcd', 'worker', 'lb'], 7443)).toEqual(['lb,worker', '7443', '10250']);
  });
});

describe('specNodes', () => {
  it('one node per machine: an LB on a master host is that master with the lb role too', () => {
    const ref = (name: string, address: string, port = 22) => ({ name, address, port, user: 'kes' });
    const nodes = specNodes({
      lb: { kind: 'haproxy', node: ref('lb', '198.18.0.2') },
      masters: [ref('m1', '198.18.0.2'), ref('m2', '198.18.0.3')],
      workers: [ref('w1', '198.18.0.4'), ref('w1-other-sshd', '198.18.0.4', 2222)],
    });
    expect(nodes.map((n) => `${n.name}:${n.roles.join(',')}`)).toEqual([
      'm1:master,lb',
      'm2:master',
      'w1:worker',
      'w1-other-sshd:worker',
    ]);
    expect(specNodes({ lb: { kind: 'none', node: ref('lb', '198.18.0.9') }, masters: [] })).toEqual([]);
  });
});

describe('parsePreflight', () => {
  it('reads facts and checks, skips malformed lines, notices the end line', () => {
    const p = parsePreflight(OUT);
    expect(p.version).toBe(1);
    expect(p.complete).toBe(true);
    expect(p.facts).toMatchObject({ clock: '1700000000.250000000', uid: '0', hostname: 'm1' });
    expect(p.checks.map((c) => c.check)).toEqual(['sudo', 'memory', 'port-6443', 'port-2379', 'existing', 'swap']);
    const cut = parsePreflight(OUT.split('\r\n').slice(0, 6).join('\n'));
    expect(cut.complete).toBe(false);
    expect(parsePreflight('sudo: a password is required\n').version).toBeNull();
  });
});

describe('fix hints', () => {
  const m = node('m1', ['master']);
  it('gives a fix for every failure, and names the program holding a port', () => {
    const rows = nodeRows(m, parsePreflight(OUT));
    for (const r of rows.filter((x) => x.status !== 'ok')) expect(r.fix, r.check).toBeTruthy();
    expect(rows.find((r) => r.check === 'sudo')!.fix).toBeUndefined();
    const byCheck = Object.fromEntries(rows.map((r) => [r.check, r]));
    expect(byCheck['port-6443'].fix).toContain('python3 (pid 4242)');
    expect(byCheck['port-6443'].fix).toContain('kube-apiserver needs port 6443');
    expect(byCheck['port-2379'].fix).toMatch(/^Reset the node first \(offered\)/);
    expect(byCheck.existing.fix).toMatch(/^Reset the node first \(offered\)/);
    expect(byCheck.swap.fix).toContain('swapoff -a');
    expect(byCheck.memory.fix).toContain('1700 MB');
    const unseen = 'nothing found, but could not look into /var/lib/etcd (not root: could not look everywhere)';
    expect(fixFor({ check: 'existing', status: 'warn', detail: unseen }, m)).toContain('Give kes passwordless sudo');
  });

  it('a port on an LB-only node is the load balancer’s', () => {
    const fix = fixFor({ check: 'port-6443', status: 'fail', detail: 'in use: *:6443' }, node('lb', ['lb']));
    expect(fix).toContain('the load balancer needs port 6443');
    expect(fix).toContain("ss -ltnp 'sport = :6443'");
  });

  it('missing sudo: a sudoers.d line for the login user, in a file name sudo reads', () => {
    const fix = fixFor({ check: 'sudo', status: 'fail', detail: 'a password is required' }, node('w1', [], 'john.doe'));
    expect(fix).toContain("echo 'john.doe ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-john_doe");
    expect(fix).toContain('chmod 0440');
    const none = fixFor({ check: 'sudo', status: 'fail', detail: 'sudo is not installed' }, node('w1', []));
    expect(none).toContain('install sudo');
  });

  it('SSH failures: host key to confirm (with its fingerprint), credentials, reachability', () => {
    const n = node('w1', ['worker']);
    const fp = `SHA256:${'A'.repeat(43)}`;
    const unknown = sshRow(
      n,
      new SshError('HOST_KEY_UNKNOWN', 'not a known host', { hostKey: { fingerprint: fp } as never }),
    );
    expect(unknown).toMatchObject({ node: 'w1', check: 'ssh', status: 'fail' });
    expect(unknown.fix).toContain(fp);
    expect(sshRow(n, new SshError('AUTH_FAILED', 'refused')).fix).toContain('~kes/.ssh/authorized_keys');
    expect(sshRow(n, new SshError('UNREACHABLE', 'refused')).fix).toContain(n.address);
    expect(sshRow(n, new Error('odd')).fix).toBeTruthy();
  });
});

describe('clockRows', () => {
  const s = (n: string, remoteS: number, sentAt: number, rtt = 100) => ({
    node: n,
    remote: (remoteS / 1000).toFixed(9),
    sentAt,
    receivedAt: sentAt + rtt,
  });
  it('one node: ok, with its offset from this computer', () => {
    const [r] = clockRows([s('m1', 1_000_050 + 60_000, 1_000_000)]);
    expect(r).toMatchObject({ node: 'm1', check: 'clock', status: 'ok' });
    expect(r.detail).toContain('+60 s vs this computer (±0.05 s)');
  });

  it('compares with the median node: > 2 s warns, > 30 s fails, within the round trip is ok', () => {
    const t = 1_700_000_000_000;
    const rows = clockRows([
      s('m1', t + 50, t),
      s('m2', t + 50 + 300, t), // 0.3 s
      s('m3', t + 50 + 5_000, t), // 5 s
      s('w1', t + 50 - 40_000, t), // 40 s behind
      s('w2', t + 50 + 2_500, t, 2_000), // 1.25 s from m2, but ±1 s: within the round trip
    ]);
    const st = Object.fromEntries(rows.map((r) => [r.node, r.status]));
    expect(st).toEqual({ m1: 'ok', m2: 'ok', m3: 'warn', w1: 'fail', w2: 'ok' });
    expect(rows.find((r) => r.node === 'm2')!.detail).toMatch(/^reference;/);
    expect(rows.find((r) => r.node === 'w1')!.detail).toMatch(/^-40 s vs m2/);
    expect(rows.find((r) => r.node === 'w1')!.fix).toContain('timedatectl set-ntp true');
  });

  it('an unreadable clock warns instead of throwing', () => {
    expect(clockRows([{ node: 'x', remote: '%N', sentAt: 0, receivedAt: 1 }])[0]).toMatchObject({ status: 'warn' });
  });
});

describe('cross-node checks', () => {
  it('duplicate hostnames fail on every node that has them; same machine-id says listed twice', () => {
    const rows = hostnameRows([
      { node: 'a', hostname: 'node1', machineId: 'x' },
      { node: 'b', hostname: 'NODE1', machineId: 'y' },
      { node: 'c', hostname: 'node3', machineId: 'z' },
      { node: 'd', hostname: 'node3', machineId: 'z' },
      { node: 'e', hostname: 'node5' },
    ]);
    expect(rows.map((r) => `${r.node}:${r.status}`)).toEqual(['a:fail', 'b:fail', 'c:fail', 'd:fail', 'e:ok']);
    expect(rows[0].detail).toContain('also the hostname of b');
    expect(rows[2].detail).toContain('same machine as d');
    expect(rows[2].fix).toContain('remove the duplicate');
  });

  it('an LB on a master cannot use 6443', () => {
    expect(lbPortRows([node('m1', ['lb', 'master'])], 6443)).toHaveLength(1);
    expect(lbPortRows([node('m1', ['lb', 'master'])], 8443)).toHaveLength(0);
    expect(lbPortRows([node('lb', ['lb'])], 6443)).toHaveLength(0);
  });

  it('a report is ok when nothing fails (warnings allowed)', () => {
    expect(report([{ node: 'a', check: 'swap', status: 'warn', detail: '' }]).ok).toBe(true);
    expect(report([{ node: 'a', check: 'ssh', status: 'fail', detail: '' }]).ok).toBe(false);
  });
});

describe('runPreflight', () => {
  const lib = new ScriptLibrary(SCRIPTS, userDir);
  const targetOf = (n: PreflightNode): SshTarget => ({
    nodeId: n.id!,
    label: n.name,
    host: n.address,
    port: n.port,
    user: n.user,
    auth: { method: 'agent' },
  });

  /** Runs the real script locally (as this user) for "good"; refuses sudo for "nosudo"; no SSH for "gone". */
  function pool(calls: string[]): SshPool {
    return {
      exec: async (t: SshTarget, command: string, opts: ExecOptions) => {
        const run = opts.asRoot ? asRoot(command, t.user) : command;
        calls.push(`${t.label}: ${run}`);
        if (t.label === 'gone') throw new SshError('HOST_KEY_UNKNOWN', 'gone is not a known host');
        if (t.label === 'nosudo') {
          if (opts.asRoot) return { code: 1, stdout: '', stderr: 'sudo: a password is required\n', durationMs: 1 };
          const out = 'preflight\t1\nfact\tclock\t1.0\nfact\tuid\t1000\nfact\thostname\tnosudo\n';
          const checks =
            'check\tsudo\tfail\tsudo -n true failed for kes: sudo: a password is required\ncheck\tos\tok\tDebian\n';
          opts.onStdout?.(Buffer.from(out + checks + 'end\tpreflight\n'));
          return { code: 0, stdout: out + checks + 'end\tpreflight\n', stderr: '', durationMs: 1 };
        }
        // the command line as the node's login shell gets it (without sudo: this test is not root-bound)
        const stdout = execFileSync('sh', ['-c', command], { input: opts.stdin, encoding: 'utf8' });
        opts.onStdout?.(Buffer.from(stdout));
        return { code: 0, stdout, stderr: '', durationMs: 1 };
      },
    } as unknown as SshPool;
  }

  it('runs the real script as `bash -s -- ROLES PORTS`, elevated; falls back to tell "no sudo" apart; SSH failure is a row', async () => {
    const calls: string[] = [];
    const nodes = [
      node('good', ['master', 'etcd']),
      node('nosudo', ['worker']),
      node('gone', ['lb']),
      node('x', ['etcd']),
    ];
    const r = await runPreflight({ pool: pool(calls), scripts: lib, targetOf }, nodes, { lbPort: 6443 });
    // nodes run side by side: the order of the calls is not fixed
    expect(calls).toContain("good: sudo -n -- sh -c 'bash -s -- master 2379 2380 6443 10250 10257 10259'");
    expect(calls).toContain("nosudo: sudo -n -- sh -c 'bash -s -- worker 10250'");
    expect(calls).toContain('nosudo: bash -s -- worker 10250');
    const good = r.rows.filter((x) => x.node === 'good').map((x) => x.check);
    expect(good).toEqual(
      expect.arrayContaining(['sudo', 'os', 'cpus', 'memory', 'swap', 'port-6443', 'existing', 'clock']),
    );
    expect(good).toContain('hostname-unique');
    const sudo = r.rows.find((x) => x.node === 'nosudo' && x.check === 'sudo')!;
    expect(sudo).toMatchObject({ status: 'fail' });
    expect(sudo.fix).toContain("echo 'kes ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-kes");
    expect(r.rows.find((x) => x.node === 'gone')).toMatchObject({ check: 'ssh', status: 'fail' });
    expect(r.rows.find((x) => x.node === 'x')).toMatchObject({ check: 'roles', status: 'warn' });
    expect(r.ok).toBe(false);
  });

  it('a node without SSH settings (not in the inventory) is an ssh row, not an exception', async () => {
    const noTarget = () => {
      throw new Error('unknown node');
    };
    const r = await runPreflight({ pool: pool([]), scripts: lib, targetOf: noTarget }, [node('new', ['worker'])]);
    expect(r.rows).toEqual([expect.objectContaining({ node: 'new', check: 'ssh', status: 'fail' })]);
    expect(r.rows[0].fix).toContain('Add the node');
  });
});
