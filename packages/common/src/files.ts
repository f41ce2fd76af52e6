/**
 * Writes that a full disk or a kill cannot leave half done: written beside the target under a
 * temporary name, then renamed over it. A failure removes the temporary file or directory and
 * names the target, so the previous version (or none) stays, never a truncated one.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';

export async function writeFileAtomic(file: string, data: string | Uint8Array, what = ''): Promise<void> {
  const partial = `${file}.${process.pid}.partial`;
  try {
    await writeFile(partial, data);
    await rename(partial, file);
  } catch (error) {
    await rm(partial, { force: true });
    throw new Error(`cannot write ${what ? `${what} ` : ''}${file}: ${(error as Error).message}`);
  }
}

/**
 * Fills a fresh `<dir>.writing` with `fill`, then replaces `dir` with it. `what` names the
 * contents in the error ("the checkpoint", "the stacked model").
 */
export async function writeDirectoryAtomic(dir: string, what: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.writing`;
  try {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await fill(tmp);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`cannot write ${what} ${dir}: ${(error as Error).message}`);
  }
}
