// What the lab benchmarks share: time formatting, timing a step, and running the whole bench bounded
// (it gives up after 20 minutes; the lab's exit handler tears the lab down on every exit).

export const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** Run `main` and exit: 0 when it finished, 1 when it threw, 2 when it ran out of time. */
export function runBench(main: () => Promise<void>, limitMs = 20 * 60_000): void {
  const giveUp = setTimeout(() => {
    console.error(`bench: gave up after ${Math.round(limitMs / 60_000)} minutes`);
    process.exit(2);
  }, limitMs);
  giveUp.unref();
  main().then(
    () => process.exit(0),
    (e: Error) => {
      console.error(e.stack ?? e.message);
      process.exit(1);
    },
  );
}
