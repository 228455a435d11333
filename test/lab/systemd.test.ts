// The systemctl stand-in (emul/systemd.ts) is as strict as systemd where the app depends on it:
// Type=notify units wait for READY=1 on $NOTIFY_SOCKET (or fail after TimeoutStartSec), --no-block
// only queues the start, and a changed unit file needs daemon-reload. One spare host, no cluster.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upTestLab } from './helpers';
import type { Lab } from './index';
import { waitFor } from './util';

let lab: Lab;
const H = 's1';

/** Run a script as root on s1; its stdout, trimmed. */
async function sh(script: string): Promise<string> {
  return (await lab.exec(H, script)).stdout.trim();
}

function unit(name: string, service: string, install = ''): Promise<void> {
  return lab.writeFile(
    H,
    `/etc/systemd/system/${name}.service`,
    `[Unit]\nDescription=${name}\n\n[Service]\n${service}\n${install}`,
  );
}

/** `systemctl ARGS` on s1, timed inside the host: exit code, stderr, milliseconds. */
async function timed(args: string): Promise<{ rc: number; err: string; ms: number }> {
  const out = await sh(
    `t0=$(date +%s%N); systemctl ${args} 2>/tmp/t-err; rc=$?; t1=$(date +%s%N); echo "$rc $(( (t1 - t0) / 1000000 ))"; cat /tmp/t-err`,
  );
  const [first, ...err] = out.split('\n');
  const [rc, ms] = first.split(' ').map(Number);
  return { rc, ms, err: err.join('\n') };
}

const state = async (name: string): Promise<string> => sh(`systemctl is-active ${name} || true`);

// sends STATUS=<arg 2> and READY=1 to $NOTIFY_SOCKET after <arg 1> seconds, then runs on (like sd_notify)
const NOTIFIER = `#!/usr/bin/python3
import os, socket, sys, time
time.sleep(float(sys.argv[1]))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(("STATUS=%s\\nREADY=1" % sys.argv[2]).encode(), os.environ["NOTIFY_SOCKET"])
time.sleep(100000)
`;

beforeAll(async () => {
  lab = await upTestLab({ masters: 1, spares: 1, lb: 'none', waitReady: false });
  await lab.writeFile(H, '/usr/local/bin/t-notify', NOTIFIER, 0o755);
});

afterAll(async () => {
  await lab?.down();
});

describe('systemd stand-in: Type=notify and daemon-reload like systemd', () => {
  it('Type=notify: start blocks until READY=1 from the main process; is-active says activating meanwhile', async () => {
    await unit('t-ready', 'Type=notify\nExecStart=/usr/local/bin/t-notify 4 serving');
    const out = await sh(`t0=$(date +%s%N); systemctl start t-ready & p=$!
sleep 1.5; during=$(systemctl is-active t-ready)
wait $p; rc=$?; t1=$(date +%s%N)
echo "$during $rc $(( (t1 - t0) / 1000000 )) $(systemctl is-active t-ready)"
systemctl show -p StatusText -p NeedDaemonReload t-ready; echo "socket=$(tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value t-ready)/environ | grep NOTIFY_SOCKET)"`);
    const [line, ...props] = out.split('\n');
    const [during, rc, ms, after] = line.split(' ');
    expect({ during, rc, after }).toEqual({ during: 'activating', rc: '0', after: 'active' });
    expect(Number(ms)).toBeGreaterThanOrEqual(4000);
    expect(props).toEqual([
      'StatusText=serving',
      'NeedDaemonReload=no',
      'socket=NOTIFY_SOCKET=/run/systemd-shim/notify/t-ready.service',
    ]);
    await sh('systemctl stop t-ready');
  }, 60_000);

  it('Type=notify without READY=1: start fails after TimeoutStartSec=3, unit failed, process killed', async () => {
    await unit('t-silent', 'Type=notify\nTimeoutStartSec=3\nExecStart=/bin/sleep 4242');
    const r = await timed('start t-silent');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('Job for t-silent.service failed because a timeout was exceeded.');
    expect(r.ms).toBeGreaterThanOrEqual(3000);
    expect(r.ms).toBeLessThan(10_000);
    expect(await sh('systemctl is-active t-silent; systemctl show -p Result --value t-silent')).toBe('failed\ntimeout');
    expect(await sh('pgrep -f "[s]leep 4242" || echo gone')).toBe('gone');
    expect(await sh('journalctl -u t-silent -o cat')).toContain(
      't-silent.service: start operation timed out. Terminating.',
    );
  }, 60_000);

  it('READY=1 from a child of the main process is refused (NotifyAccess=main), accepted with NotifyAccess=all', async () => {
    await unit('t-child', `Type=notify\nTimeoutSec=3\nExecStart=/bin/sh -c '/usr/local/bin/t-notify 0 child & wait'`);
    const r = await timed('start t-child');
    expect(r.rc).toBe(1);
    expect(await sh('journalctl -u t-child -o cat')).toMatch(
      /Got notification message from PID \d+, but reception only permitted for main PID \d+/,
    );
    await lab.writeFile(H, '/etc/systemd/system/t-child.service.d/notify.conf', '[Service]\nNotifyAccess=all\n');
    await sh('systemctl daemon-reload');
    expect((await timed('start t-child')).rc).toBe(0);
    expect(await state('t-child')).toBe('active');
    await sh('systemctl stop t-child');
  }, 60_000);

  it('--no-block returns at once with the unit activating; it becomes active when READY=1 arrives', async () => {
    await unit('t-later', 'Type=notify\nExecStart=/usr/local/bin/t-notify 4 later');
    const r = await timed('start --no-block t-later');
    expect(r.rc).toBe(0);
    expect(r.ms).toBeLessThan(3000); // READY=1 comes 4 s after the service starts
    expect(await state('t-later')).toBe('activating');
    await waitFor('t-later active', async () => (await state('t-later')) === 'active', 20_000, 250);
    await sh('systemctl stop t-later');
  }, 60_000);

  it("a changed unit file or drop-in needs daemon-reload: the old definition runs, with systemctl's warning", async () => {
    const warning =
      "Warning: The unit file, source configuration file or drop-ins of t-def.service changed on disk. Run 'systemctl daemon-reload' to reload units.";
    const svc = (v: string): string =>
      `EnvironmentFile=-/etc/default/t-def\nExecStart=/bin/sh -c 'echo ${v} $TAG $FROMFILE > /run/t-def.out; exec sleep 100000'`;
    const install = '[Install]\nWantedBy=multi-user.target\n';
    await lab.writeFile(H, '/etc/default/t-def', 'FROMFILE=f1\n');
    await unit('t-def', svc('v1'), install);
    await sh('systemctl enable --now t-def'); // enabled: systemd keeps the unit loaded
    expect(await sh('cat /run/t-def.out')).toBe('v1 f1');

    await unit('t-def', svc('v2'), install);
    await lab.writeFile(H, '/etc/default/t-def', 'FROMFILE=f2\n'); // EnvironmentFile= is read at every start
    expect(await sh('systemctl show -p NeedDaemonReload --value t-def')).toBe('yes');
    let r = await timed('restart t-def');
    expect(r.rc).toBe(0);
    expect(r.err).toBe(warning);
    expect(await sh('cat /run/t-def.out')).toBe('v1 f2');

    await sh('systemctl daemon-reload');
    expect(await sh('systemctl show -p NeedDaemonReload --value t-def')).toBe('no');
    r = await timed('restart t-def');
    expect(r.err).toBe('');
    expect(await sh('cat /run/t-def.out')).toBe('v2 f2');

    await lab.writeFile(H, '/etc/systemd/system/t-def.service.d/10-tag.conf', '[Service]\nEnvironment=TAG=dropin\n');
    expect(await sh('systemctl show -p NeedDaemonReload --value t-def')).toBe('yes');
    r = await timed('restart t-def');
    expect(r.err).toBe(warning);
    expect(await sh('cat /run/t-def.out')).toBe('v2 f2');
    await sh('systemctl daemon-reload && systemctl restart t-def');
    expect(await sh('cat /run/t-def.out')).toBe('v2 dropin f2');

    // a unit file that appeared after the last reload is loaded on demand, without a warning
    await unit('t-new', 'ExecStart=/bin/sleep 100000');
    r = await timed('start t-new');
    expect(r).toMatchObject({ rc: 0, err: '' });
    expect(await state('t-new')).toBe('active');
    await sh('systemctl stop t-new; systemctl disable --now t-def');
  }, 60_000);

  it('a real etcd 3.6 in a Type=notify unit becomes active only after etcd notifies READY=1', async () => {
    expect(await sh('etcd --version | head -1')).toBe('etcd Version: 3.6.16');
    await unit(
      't-etcd',
      'Type=notify\nExecStart=/usr/bin/etcd --name s1 --data-dir /var/lib/t-etcd --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster s1=http://127.0.0.1:23800',
    );
    const r = await timed('start t-etcd');
    expect(r.rc).toBe(0);
    // serving as soon as start returns, and systemd's "Started" comes after etcd's notification
    expect(await sh('etcdctl --endpoints=http://127.0.0.1:23790 --command-timeout=2s endpoint health 2>&1')).toMatch(
      /127\.0\.0\.1:23790 is healthy/,
    );
    const journal = await sh('journalctl -u t-etcd -o cat');
    const notified = journal.indexOf('notifying init daemon');
    expect(notified).toBeGreaterThan(0);
    expect(journal.indexOf('Started t-etcd.service')).toBeGreaterThan(notified);
    await sh('systemctl stop t-etcd');
  }, 60_000);

  it('an etcd member without quorum stays activating until its peer starts (the app starts members with --no-block)', async () => {
    const cluster = 'a=http://127.0.0.1:23801,b=http://127.0.0.1:23802';
    for (const [m, i] of [
      ['a', 1],
      ['b', 2],
    ] as const)
      await unit(
        `t-etcd-${m}`,
        `Type=notify\nExecStart=/usr/bin/etcd --name ${m} --data-dir /var/lib/t-etcd-${m} --listen-client-urls http://127.0.0.1:2379${i} --advertise-client-urls http://127.0.0.1:2379${i} --listen-peer-urls http://127.0.0.1:2380${i} --initial-advertise-peer-urls http://127.0.0.1:2380${i} --initial-cluster ${cluster}`,
      );
    expect((await timed('start --no-block t-etcd-a')).rc).toBe(0);
    await new Promise((r) => setTimeout(r, 4000));
    expect(await sh('pgrep -f "[e]tcd --name a" >/dev/null && echo running')).toBe('running');
    expect(await state('t-etcd-a')).toBe('activating');
    const b = await timed('start t-etcd-b'); // blocks until the 2-member cluster has quorum
    expect(b.rc).toBe(0);
    await waitFor('t-etcd-a active', async () => (await state('t-etcd-a')) === 'active', 15_000, 250);
    expect(await sh('etcdctl --endpoints=http://127.0.0.1:23791 member list | wc -l')).toBe('2');
    await sh('systemctl stop t-etcd-a t-etcd-b');
  }, 60_000);
});
