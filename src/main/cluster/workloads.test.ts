// Intent: the health view's workloads rows are what `kubectl get deploy,sts,ds,pods` would say,
// read from the API lists of each chosen namespace in one call; a list that fails is named and
// does not hide the others.
import { describe, expect, it } from 'vitest';
import { parseWorkloads, workloadPaths } from './workloads';

const ok = (items: unknown[]) => ({ status: 200, body: JSON.stringify({ kind: 'List', items }) });

describe('workloads of chosen namespaces', () => {
  it('asks for deployments, statefulsets, daemonsets and pods of every namespace, in order', () => {
    expect(workloadPaths(['default', 'team-a'])).toEqual([
      '/apis/apps/v1/namespaces/default/deployments',
      '/apis/apps/v1/namespaces/default/statefulsets',
      '/apis/apps/v1/namespaces/default/daemonsets',
      '/api/v1/namespaces/default/pods',
      '/apis/apps/v1/namespaces/team-a/deployments',
      '/apis/apps/v1/namespaces/team-a/statefulsets',
      '/apis/apps/v1/namespaces/team-a/daemonsets',
      '/api/v1/namespaces/team-a/pods',
    ]);
    expect(workloadPaths([])).toEqual([]);
  });

  it('turns the API lists into rows: ready/desired per controller, kubectl-like pod status', () => {
    const w = parseWorkloads(
      ['default'],
      [
        ok([
          { metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 3 }, status: { readyReplicas: 2 } },
          { metadata: { name: 'scaled-down', namespace: 'default' }, spec: { replicas: 0 }, status: {} },
        ]),
        ok([{ metadata: { name: 'db', namespace: 'default' }, spec: { replicas: 1 }, status: {} }]),
        ok([{ metadata: { name: 'agent' }, status: { desiredNumberScheduled: 2, numberReady: 2 } }]),
        ok([
          {
            metadata: { name: 'demo-nginx', namespace: 'default' },
            spec: { nodeName: 'm1', containers: [{}] },
            status: { phase: 'Running', containerStatuses: [{ ready: true, restartCount: 2 }] },
          },
          {
            metadata: { name: 'crashy', namespace: 'default' },
            spec: { nodeName: 'w1', containers: [{}, {}] },
            status: {
              phase: 'Running',
              containerStatuses: [
                { ready: false, restartCount: 5, state: { waiting: { reason: 'CrashLoopBackOff' } } },
                { ready: true, restartCount: 0 },
              ],
            },
          },
          { metadata: { name: 'pending' }, spec: { containers: [{}] }, status: { phase: 'Pending' } },
          {
            metadata: { name: 'going', deletionTimestamp: '2026-01-01T00:00:00Z' },
            spec: { nodeName: 'm2', containers: [{}] },
            status: { phase: 'Running', containerStatuses: [{ ready: true }] },
          },
        ]),
      ],
    );
    expect(w.errors).toEqual([]);
    expect(w.namespaces).toEqual(['default']);
    expect(w.available).toEqual([]);
    expect(w.controllers).toEqual([
      { namespace: 'default', kind: 'DaemonSet', name: 'agent', ready: 2, desired: 2 },
      { namespace: 'default', kind: 'StatefulSet', name: 'db', ready: 0, desired: 1 },
      { namespace: 'default', kind: 'Deployment', name: 'scaled-down', ready: 0, desired: 0 },
      { namespace: 'default', kind: 'Deployment', name: 'web', ready: 2, desired: 3 },
    ]);
    expect(w.pods).toEqual([
      { namespace: 'default', name: 'crashy', node: 'w1', phase: 'CrashLoopBackOff', ready: '1/2', restarts: 5 },
      { namespace: 'default', name: 'demo-nginx', node: 'm1', phase: 'Running', ready: '1/1', restarts: 2 },
      { namespace: 'default', name: 'going', node: 'm2', phase: 'Terminating', ready: '1/1', restarts: 0 },
      { namespace: 'default', name: 'pending', node: null, phase: 'Pending', ready: '0/1', restarts: 0 },
    ]);
  });

  it('names a list that could not be read and keeps the others', () => {
    const pod = { metadata: { name: 'p' }, spec: { containers: [{}] }, status: { phase: 'Running' } };
    const w = parseWorkloads(
      ['a', 'b'],
      [
        { status: 403, body: '{"kind":"Status"}' },
        ok([]),
        { status: 200, body: 'not json' },
        ok([pod]),
        { status: 0, body: '' },
        ok([{ metadata: {} }]), // no name: skipped
      ],
    );
    expect(w.errors).toEqual([
      'Deployments in a: HTTP 403',
      expect.stringMatching(/^DaemonSets in a: .*JSON/),
      'Deployments in b: no answer',
      'DaemonSets in b: not read',
      'pods in b: not read',
    ]);
    expect(w.pods.map((p) => `${p.namespace}/${p.name}`)).toEqual(['a/p']);
    expect(w.controllers).toEqual([]);
  });

  it("lists the cluster's namespaces for the chooser, sorted; none when the list failed", () => {
    const list = ok([{ metadata: { name: 'team-a' } }, { metadata: { name: 'default' } }, { metadata: {} }]);
    expect(parseWorkloads([], [], list).available).toEqual(['default', 'team-a']);
    expect(parseWorkloads([], [], { status: 500, body: '' }).available).toEqual([]);
    expect(parseWorkloads([], [], { status: 200, body: '<html>' }).available).toEqual([]);
  });
});
