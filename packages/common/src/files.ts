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
 * Fills a fresh `<dir>.writing` with `fill`, then replaces `dir` with it: the old version is renamed
 * to `<dir>.old`, the new one into place, and only then is the old one removed. A kill between the
 * two renames leaves `<dir>.old`, which recoverDirectory (called here and by readers) puts back, so
 * there is always a whole version. `what` names the contents in the error ("the checkpoint").
 */
export async function writeDirectoryAtomic(dir: string, what: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.writing`;
  const old = `${dir}.old`;
  try {
    await recoverDirectory(dir);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await fill(tmp);
    await rm(old, { recursive: true, force: true });
    await rename(dir, old).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`cannot write ${what} ${dir}: ${(error as Error).message}`);
  }
}

/**
 * Puts back the previous version of a directory that writeDirectoryAtomic was replacing when it was
 * killed between its two renames (`dir` gone, `<dir>.old` whole). Does nothing otherwise.
 */
export async function recoverDirectory(dir: string): Promise<void> {
  try {
    await rename(`${dir}.old`, dir);
  } catch (error) {
    // ENOENT: no old version; ENOTEMPTY/EEXIST: dir is there, so the old one is only left over.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
}
