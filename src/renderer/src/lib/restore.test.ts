// The restore and switch choices map to the right job: a restore never moves the apiservers
// unless asked, "and point the apiservers at it" is one switch with the vault snapshot, and the
// switch dialog offers the target's own data only right after a restore onto it.
import { describe, expect, it } from 'vitest';
import type { JobSummary } from '@shared/jobs';
import { apiserversAfter, inUse, restoreRequest, targetJustRestored } from './restore';

const S = '6f1c1f0e-8d55-4a8e-9a55-0c7b2a0c1d11';

describe('restoreRequest', () => {
  it('restores onto the etcd in use with the plain restore job, pointed or not', () => {
    expect(restoreRequest(S, 'embedded', true, 'embedded-up')).toEqual({ kind: 'restore-embedded', snapshotId: S });
    expect(restoreRequest(S, 'external', false, 'external-up')).toEqual({ kind: 'restore-external', snapshotId: S });
  });

  it('restores onto the other etcd and points the apiservers at it as one switch with the vault snapshot', () => {
    expect(restoreRequest(S, 'external', true, 'embedded-up')).toEqual({
      kind: 'switch',
      direction: 'to-external',
      data: 'vault-snapshot',
      snapshotId: S,
    });
    expect(restoreRequest(S, 'embedded', true, 'external-up')).toEqual({
      kind: 'switch',
      direction: 'to-embedded',
      data: 'vault-snapshot',
      snapshotId: S,
    });
  });

  it('leaves the apiservers where they are when not asked, or when the cluster is not up on one etcd', () => {
    expect(restoreRequest(S, 'external', false, 'embedded-up').kind).toBe('restore-external');
    expect(restoreRequest(S, 'external', true, 'down (configured for embedded)').kind).toBe('restore-external');
    expect(restoreRequest(S, 'embedded', true, null).kind).toBe('restore-embedded');
  });

  it('says which etcd the apiservers use when the job ends', () => {
    expect(inUse('mixed')).toBeNull();
    expect(apiserversAfter('external', true, 'embedded-up')).toMatch(/use the external etcd, with the restored data/);
    expect(apiserversAfter('external', false, 'embedded-up')).toMatch(
      /still use the embedded etcd; the restored external etcd stands by/,
    );
    expect(apiserversAfter('embedded', false, 'embedded-up')).toMatch(/use the embedded etcd already/);
  });
});

describe('targetJustRestored', () => {
  let t = 0;
  const job = (kind: string, status = 'succeeded', clusterId = 'c1'): JobSummary =>
    ({
      id: String(++t),
      kind,
      status,
      clusterId,
      endedAt: new Date(Date.UTC(2026, 10, 30, 12, 0, t)).toISOString(),
    }) as JobSummary;

  it('is true when a restore onto the target is the newest job that changed it', () => {
    expect(targetJustRestored([job('snapshot'), job('restore-external'), job('snapshot')], 'c1', 'to-external')).toBe(
      true,
    );
    expect(targetJustRestored([job('restore-embedded')], 'c1', 'to-embedded')).toBe(true);
  });

  it('is false after a switch, for the other target, for failed restores and for other clusters', () => {
    expect(targetJustRestored([job('restore-external'), job('switch-to-external')], 'c1', 'to-external')).toBe(false);
    expect(targetJustRestored([job('restore-external')], 'c1', 'to-embedded')).toBe(false);
    expect(targetJustRestored([job('restore-external', 'failed')], 'c1', 'to-external')).toBe(false);
    expect(targetJustRestored([job('restore-external', 'succeeded', 'c2')], 'c1', 'to-external')).toBe(false);
    expect(targetJustRestored([], 'c1', 'to-external')).toBe(false);
  });
});
