// Intent: user input for nodes is validated with messages a person can act on.
import { describe, expect, it } from 'vitest';
import { NodeInput, isValidAddress } from '../../src/shared/domain';

describe('node validation', () => {
  it.each(['198.18.0.5', 'master-1', 'm1.example.internal', '::1', 'fe80::1', '[2001:db8::1]'])(
    'accepts address %s',
    (a) => {
      expect(isValidAddress(a)).toBe(true);
    },
  );
  it.each(['300.1.1.1', '1.2.3', '-bad', 'a b', 'x;rm -rf /', '$(id)', 'host_', ''])('rejects address %j', (a) => {
    expect(isValidAddress(a)).toBe(false);
  });

  it('reports each bad field with its own message', () => {
    const r = NodeInput.safeParse({
      name: '',
      address: '300.1.1.1',
      port: 70000,
      user: 'Bad User',
      auth: { method: 'agent' },
    });
    expect(r.success).toBe(false);
    const byField: Record<string, string> = {};
    for (const i of r.error!.issues) byField[i.path.join('.')] ??= i.message; // first message per field, as the form shows
    expect(byField.address).toMatch(/host name or IP/);
    expect(byField.port).toMatch(/1 and 65535/);
    expect(byField.user).toMatch(/User names/);
    expect(byField.name).toMatch(/required/);
  });

  it('fills defaults: port 22, user root, no roles, no jump', () => {
    expect(NodeInput.parse({ name: 'n', address: 'n', auth: { method: 'agent' } })).toMatchObject({
      port: 22,
      user: 'root',
      roles: [],
      jumpNodeId: null,
    });
  });

  it('requires an absolute key path for key-file auth', () => {
    expect(
      NodeInput.safeParse({ name: 'n', address: 'n', auth: { method: 'key-file', keyPath: 'id_rsa' } }).success,
    ).toBe(false);
    expect(
      NodeInput.safeParse({ name: 'n', address: 'n', auth: { method: 'key-file', keyPath: '~/.ssh/id_ed25519' } })
        .success,
    ).toBe(true);
  });
});
