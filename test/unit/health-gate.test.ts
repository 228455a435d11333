// Intent: a job's apiserver gate passes only when the cluster answers the way users and kubelets
// reach it — through the control plane endpoint (the load balancer) — not merely when every
// apiserver is ready on its own node; yet a load balancer that stays broken only warns, because
// it must not roll back a good restore.
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { waitHealthy } from '../../src/main/etcd/state';

const node = (name: string) => ({ id: `id-${name}`, name, address: '198.18.0.2', roles: ['master'] }) as ClusterNode;

function fakeDeps(endpointAnswers: number[]) {
  const calls = { local: 0, endpoint: 0 };
  const deps = {
    ops: {
      kubeGet: async () => {
        calls.local++;
        return { status: 200, body: 'ok' };
      },
      endpointGet: async () => {
        const status = endpointAnswers[Math.min(calls.endpoint, endpointAnswers.length - 1)];
        calls.endpoint++;
        return { status, body: '' };
      },
    },
  } as unknown as EtcdDeps;
  return { deps, calls };
}

describe('waitHealthy (apiserver gate)', () => {
  it('waits until the control plane endpoint answers /readyz after every local apiserver is ready', async () => {
    const { deps, calls } = fakeDeps([0, 503, 200]);
    const lines: string[] = [];
    await waitHealthy(deps, 'c1', [node('m1'), node('m2')], {
      etcd: false,
      apiserver: true,
      timeoutMs: 10_000,
      log: (_s, t) => lines.push(t),
    });
    expect(calls.local).toBe(2);
    expect(calls.endpoint).toBe(3);
    expect(lines).toContain('the control plane endpoint answers /readyz');
  });

  it('only warns when the endpoint never answers, so a good restore is not rolled back', async () => {
    const { deps, calls } = fakeDeps([0]);
    const lines: { stream: string; text: string }[] = [];
    await waitHealthy(deps, 'c1', [node('m1')], {
      etcd: false,
      apiserver: true,
      timeoutMs: 1200,
      log: (stream, text) => lines.push({ stream, text }),
    });
    expect(calls.endpoint).toBeGreaterThan(1);
    const warning = lines.find((l) => l.text.startsWith('warning:'));
    expect(warning?.stream).toBe('stderr');
    expect(warning?.text).toMatch(/control plane endpoint \(admin\.conf on m1\).*check the load balancer/);
  });

  it('stops waiting at once when the job is cancelled', async () => {
    const { deps } = fakeDeps([0]);
    const ac = new AbortController();
    ac.abort();
    await expect(
      waitHealthy(deps, 'c1', [node('m1')], { etcd: false, apiserver: true, timeoutMs: 10_000, signal: ac.signal }),
    ).rejects.toThrow(/Cancelled while waiting for the control plane endpoint/);
  });
});
