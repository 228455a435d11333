// What an etcd cluster of n members survives, in words shared by the provision dialog and the
// provision plan, so both warn the same way about even member counts.

/** Members needed for quorum, and how many may fail without the cluster stopping. */
export function quorumOf(n: number): { quorum: number; tolerates: number } {
  const quorum = Math.floor(n / 2) + 1;
  return { quorum, tolerates: n - quorum };
}

/** The warning for 2 or 4 members: allowed, but no safer than one fewer. */
export function evenMembersWarning(n: number): string {
  const { quorum, tolerates } = quorumOf(n);
  const fails =
    tolerates === 0
      ? 'when any one of them stops, the external etcd stops serving and the apiservers with it'
      : `they tolerate ${tolerates} failed member${tolerates === 1 ? '' : 's'}, no more than ${n - 1} would`;
  return `${n} members need ${quorum} for quorum: ${fails}. 1, 3 or 5 members are recommended.`;
}
