// Intent: a snapshot is streamed straight from the member only to an address the desktop may
// dial: the stacked member's own client URL (never its loopback one, which from the desktop is the
// desktop itself), or an external member's URL; not for a node behind a jump host, and not when the
// user turned it off in Settings.
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { directUrl } from '../../src/main/etcd/snapshot';

const m1 = { id: 'n1', name: 'm1', address: '198.18.0.11', jumpNodeId: null } as ClusterNode;
const m2 = { id: 'n2', name: 'm2', address: '198.18.0.12', jumpNodeId: 'n9' } as ClusterNode;
const e1 = { id: 'n3', name: 'e1', address: '198.18.0.21', jumpNodeId: null } as ClusterNode;
const e2 = { id: 'n4', name: 'e2', address: '198.18.0.22', jumpNodeId: 'n9' } as ClusterNode;
const LOCAL = 'https://127.0.0.1:2379';

function deps(clientUrls: Record<string, string[]>, on = true): EtcdDeps {
  const members = Object.entries(clientUrls).map(([nodeId, urls]) => ({
    name: nodeId,
    id: null,
    peerUrls: [],
    clientUrls: urls,
    nodeId,
    kind: 'stacked',
  }));
  return {
    inventory: { get: () => ({ nodes: [m1, m2, e1, e2], facts: { members } }) },
    streamDirect: () => on,
  } as unknown as EtcdDeps;
}

describe('where a snapshot may be streamed straight from', () => {
  it('a stacked member: its own client URL that is not loopback, whatever order kubeadm wrote them in', () => {
    const d = deps({ n1: [LOCAL, 'https://198.18.0.11:2379'] });
    expect(directUrl(d, 'c', m1, LOCAL)).toBe('https://198.18.0.11:2379');
  });

  it('a member that only listens on loopback, or one the app knows nothing of: no straight way', () => {
    expect(directUrl(deps({ n1: [LOCAL, 'https://localhost:2379', 'https://[::1]:2379'] }), 'c', m1, LOCAL)).toBeNull();
    expect(directUrl(deps({}), 'c', m1, LOCAL)).toBeNull();
    expect(directUrl(deps({ n1: ['unix://etcd.sock'] }), 'c', m1, LOCAL)).toBeNull();
  });

  it('an external member (or a stacked one by address): the endpoint itself', () => {
    expect(directUrl(deps({}), 'c', m1, 'https://198.18.0.21:2379')).toBe('https://198.18.0.21:2379');
  });

  it('never through a jump host: the master, or the member, behind one', () => {
    expect(directUrl(deps({ n2: ['https://198.18.0.12:2379'] }), 'c', m2, LOCAL)).toBeNull();
    expect(directUrl(deps({}), 'c', m1, 'https://198.18.0.22:2379')).toBeNull();
  });

  it('never when Settings turn it off', () => {
    expect(directUrl(deps({ n1: ['https://198.18.0.11:2379'] }, false), 'c', m1, LOCAL)).toBeNull();
    expect(directUrl(deps({}, false), 'c', m1, 'https://198.18.0.21:2379')).toBeNull();
  });
});
