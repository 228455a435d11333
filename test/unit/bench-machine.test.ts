// Intent: every benchmark figure says what machine it was measured on in terms that explain the
// figure — the snapshot ratios moved between two "Intel Xeon, 2 cores" machines by ~10 % because
// one had twice the other's crypto speed — so the machine line carries one core's sha256 speed and
// the CPU's crypto features, and a table built from older result files (without them) still reads.
import { describe, expect, it } from 'vitest';
import { machine, machineLine, type Machine } from '../bench/support';

describe('bench machine description', () => {
  it('measures one core’s sha256 speed and lists the crypto features', () => {
    const m = machine();
    expect(m.sha256MBps).toBeGreaterThan(50); // any CPU of this decade hashes faster than 50 MB/s
    expect(Array.isArray(m.cpuFlags)).toBe(true);
    const line = machineLine(m);
    expect(line).toContain(`sha256 ${m.sha256MBps} MB/s on one core`);
    for (const f of m.cpuFlags!) expect(line).toContain(f);
  });

  it('reads result files written before the calibration existed', () => {
    const old: Machine = { cpu: 'Xeon', cores: 2, ramGB: 24, kernel: '6.1', os: 'Debian 12', loadAtStart: 0.5 };
    expect(machineLine(old)).toBe('Xeon, 2 cores, 24 GB, Debian 12, kernel 6.1');
  });
});
