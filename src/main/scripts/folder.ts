// The user-editable scripts folder: the default remote scripts shipped in resources/scripts are
// copied into <dataDir>/scripts once; the local console opens there so users can read them.
// A file the user changed is never overwritten here (issue #4 adds "modified" marks and reset).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

export async function ensureScriptsFolder(defaultsDir: string, dataDir: string): Promise<string> {
  const target = join(dataDir, 'scripts');
  await fs.mkdir(target, { recursive: true, mode: 0o700 });
  let names: string[];
  try {
    names = await fs.readdir(defaultsDir);
  } catch {
    return target; // no defaults shipped (e.g. a unit test without resources)
  }
  for (const name of names) {
    const dest = join(target, name);
    try {
      await fs.copyFile(join(defaultsDir, name), dest, fs.constants.COPYFILE_EXCL);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return target;
}
