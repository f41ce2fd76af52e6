/**
 * Writes the CLI's own output files (JSON, report, charts) beside and renames them into place: a
 * full disk leaves the previous file, no partial one, and an error naming the file.
 */
import { rename, rm, writeFile } from 'node:fs/promises';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const partial = `${file}.${process.pid}.partial`;
  try {
    await writeFile(partial, data);
    await rename(partial, file);
  } catch (error) {
    await rm(partial, { force: true });
    throw new Error(`cannot write ${file}: ${(error as Error).message}`);
  }
}
