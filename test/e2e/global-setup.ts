// vitest globalSetup for the e2e project: build the app once before the browser tests start
// (each test file also checks, so the tests work without this hook wired in).
import { ensureBuilt } from './support/build';

export default async function setup(): Promise<void> {
  await ensureBuilt();
}
