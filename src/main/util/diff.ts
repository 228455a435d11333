// Unified diffs for plans (file rewrites) and script upgrades.
import { createTwoFilesPatch } from 'diff';

/** Unified diff of `before` → `after` under `a/PATH`, `b/PATH` ("" when nothing changes). */
export function unifiedDiff(path: string, before: string, after: string): string {
  if (before === after) return '';
  const p = path.startsWith('/') ? path : `/${path}`;
  return createTwoFilesPatch(`a${p}`, `b${p}`, before, after, undefined, undefined, { context: 3 });
}
