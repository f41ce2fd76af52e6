/**
 * Where shard files go: a directory every machine sees (an NFS or EFS mount), behind a small
 * interface so that object storage can follow. A shard is written locally first and put in
 * place atomically (copied beside under a temporary name, then hard-linked to its name), so a
 * reader never sees a half-written shard. A shard already in place is never replaced: a shard done
 * twice keeps the first file, which the coordinator checks against its listing, and a job forged
 * into the queue cannot overwrite a finished shard with rows of its own.
 */
import { copyFile, link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isShardFileName, shardFileName } from '@featherstack/common';

export interface ShardStore {
  /** Where the store is, for messages and for readers of the set. */
  readonly location: string;
  /**
   * Puts the finished local file `file` in the store as `name`, atomically, unless a file of that
   * name is there already: that one is kept, and the result is false.
   */
  put(file: string, name: string): Promise<boolean>;
  /** The names of the shard files in the store. */
  list(): Promise<string[]>;
}

export class DirectoryStore implements ShardStore {
  readonly location: string;

  constructor(dir: string) {
    this.location = resolve(dir);
  }

  async put(file: string, name: string): Promise<boolean> {
    await mkdir(this.location, { recursive: true });
    const partial = join(this.location, `.${name}.${process.pid}.partial`);
    const target = join(this.location, name);
    try {
      await copyFile(file, partial);
      try {
        // link() fails with EEXIST where rename() would replace: the no-replace put, atomic on POSIX and NFS.
        await link(partial, target);
        return true;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        // A filesystem without hard links (some FUSE and SMB mounts): rename, after a look for a file in place.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw error;
        const inPlace = await stat(target).then(
          () => true,
          () => false,
        );
        if (inPlace) return false;
        await rename(partial, target);
        return true;
      }
    } catch (error) {
      throw new Error(`cannot write shard ${target}: ${(error as Error).message}`);
    } finally {
      await rm(partial, { force: true });
    }
  }

  async list(): Promise<string[]> {
    try {
      return (await readdir(this.location)).filter((f) => isShardFileName(f)).sort();
    } catch {
      return [];
    }
  }
}

/** A shard's file name (common's shardFileName, the one owner of the naming). */
export const shardName = shardFileName;
