// Intent: etcd members are stopped followers first, then the leader (a leader that still sees a
// peer waits ~7 s trying to hand leadership to members that are stopping too), the leader is read
// from real `etcdctl endpoint status` output (64-bit ids, a dead endpoint's error line), and with
// no known leader everything stops together.
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import { leaderLast, leaderNode } from '../../src/main/etcd/files';

const node = (name: string, address: string) => ({ id: `id-${name}`, name, address, roles: ['master'] }) as ClusterNode;
const nodes = [node('m1', '198.18.0.11'), node('m2', '198.18.0.12'), node('m3', '198.18.0.13')];

// endpoint status of a 3-member cluster whose leader is m2 (ids as etcdctl prints them: > 2^53)
const status = (leader: string) =>
  '[' +
  nodes
    .map(
      (n, i) =>
        `{"Endpoint":"https://${n.address}:2379","Status":{"header":{"cluster_id":15118495548433857066,"member_id":${['13668033151171901709', '13668033151171901710', '13668033151171901711'][i]},"revision":9,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":${leader},"raftIndex":4,"raftTerm":2}}`,
    )
    .join(',') +
  ']\nFailed to get the status of endpoint https://198.18.0.14:2379 (context deadline exceeded)\n';

describe('leader detection', () => {
  it('finds the node whose member leads, exactly (ids beyond 2^53 are not rounded together)', () => {
    expect(leaderNode(status('13668033151171901710'), nodes)?.name).toBe('m2');
    expect(leaderNode(status('13668033151171901711'), nodes)?.name).toBe('m3');
  });

  it('knows no leader when none is reported or the output is not status JSON', () => {
    expect(leaderNode(status('0'), nodes)).toBeUndefined();
    expect(leaderNode('Error: context deadline exceeded', nodes)).toBeUndefined();
  });
});

describe('leaderLast', () => {
  function recorder(fail?: string) {
    const events: string[] = [];
    const stop = async (n: ClusterNode) => {
      events.push(`start ${n.name}`);
      await new Promise((r) => setTimeout(r, n.name === 'm1' ? 30 : 5));
      events.push(`done ${n.name}`);
      if (n.name === fail) throw new Error(`${n.name} would not stop`);
    };
    return { events, stop };
  }

  it('stops the followers together, and the leader only when they are all stopped', async () => {
    const { events, stop } = recorder();
    await leaderLast(nodes, nodes[1], stop);
    expect(events.slice(0, 2).sort()).toEqual(['start m1', 'start m3']); // together
    expect(events.indexOf('start m2')).toBeGreaterThan(events.indexOf('done m1'));
    expect(events.at(-1)).toBe('done m2');
  });

  it('stops everything together when the leader is unknown', async () => {
    const { events, stop } = recorder();
    await leaderLast(nodes, undefined, stop);
    expect(events.slice(0, 3).sort()).toEqual(['start m1', 'start m2', 'start m3']);
  });

  it('soft: logs a member that would not stop and goes on; otherwise the failure surfaces', async () => {
    const lines: string[] = [];
    const soft = recorder('m3');
    await leaderLast(nodes, nodes[1], soft.stop, { soft: true, log: (_s, t) => lines.push(t) });
    expect(soft.events).toContain('done m2');
    expect(lines).toContain('could not stop etcd on m3: m3 would not stop');
    await expect(leaderLast(nodes, nodes[1], recorder('m3').stop)).rejects.toThrow(/m3 would not stop/);
  });
});
