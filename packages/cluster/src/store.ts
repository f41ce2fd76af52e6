/**
 * Where shard files go: a directory every machine sees (an NFS or EFS mount), behind a small
 * interface so that object storage can follow. A shard is written locally first and put in
 * place atomically (copied beside under a temporary name, then renamed), so a reader never sees a
 * half-written shard, and a shard done twice leaves one correct file.
 */
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isShardFileName, shardFileName } from '@featherstack/common';

export interface ShardStore {
  /** Where the store is, for messages and for readers of the set. */
  readonly location: string;
  /** Puts the finished local file `file` in the store as `name`, atomically. */
  put(file: string, name: string): Promise<void>;
  /** The names of the shard files in the store. */
  list(): Promise<string[]>;
}

export class DirectoryStore implements ShardStore {
  readonly location: string;

  constructor(dir: string) {
    this.location = resolve(dir);
  }

  async put(file: string, name: string): Promise<void> {
    await mkdir(this.location, { recursive: true });
    const partial = join(this.location, `.${name}.${process.pid}.partial`);
    try {
      await copyFile(file, partial);
      await rename(partial, join(this.location, name));
    } catch (error) {
      await rm(partial, { force: true });
      throw new Error(`cannot write shard ${join(this.location, name)}: ${(error as Error).message}`);
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
