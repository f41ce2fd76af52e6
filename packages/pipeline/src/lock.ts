/**
 * One run per output directory (and one extraction per output file): `run` writes checkpoints, a pixel cache, feature files and a
 * model under --out, and two runs interleaving there destroyed each other's files (and left 0-row
 * feature files under final names). The lock is a file created exclusively (O_EXCL) holding the
 * owner's pid; a lock whose process is gone (killed, crashed) is taken over.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const LOCK_FILE = '.featherstack.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock on `dir` (creating it), or throws naming the process that holds it.
 *
 * @example
 * const lock = await lockDirectory('runs/latest');
 * try { … } finally { await lock.release(); }
 */
export async function lockDirectory(dir: string): Promise<{ release(): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  return takeLock(
    join(dir, LOCK_FILE),
    (pid, file) => `${dir} is in use by another featherstack run (pid ${pid}, lock ${file}); wait for it, or choose another --out`,
  );
}

/**
 * Takes the lock on an output file (`<file>.lock` beside it): two extractions into one file
 * otherwise share its journal, and both "finish" with a file of 0 rows.
 *
 * @example
 * const lock = await lockOutputFile('features/train.arrow');
 */
export async function lockOutputFile(file: string): Promise<{ release(): Promise<void> }> {
  await mkdir(dirname(file), { recursive: true });
  return takeLock(
    `${file}.lock`,
    (pid, lock) => `${file} is being written by another featherstack process (pid ${pid}, lock ${lock}); wait for it, or choose another --out`,
  );
}

async function takeLock(file: string, busy: (pid: number, file: string) => string): Promise<{ release(): Promise<void> }> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return { release: () => rm(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new Error(busy(pid, file));
      // The holder is gone: its lock is stale.
      await rm(file, { force: true });
    }
  }
  throw new Error(`could not take the lock ${file} (it keeps reappearing)`);
}
