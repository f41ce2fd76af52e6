import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { admitJob, JobRefusedError, MAX_JOB_BYTES, modelFileHash, parseQueueUrl, resolveRoots, type ShardJob, unprotectedWarning } from '../dist/index.js';
import { printable } from '../dist/status.js';

// A worker's trust boundary: every field of a job from Redis is checked against the worker's roots.
const base = mkdtempSync(join(tmpdir(), 'fs-admit-'));
const data = join(base, 'data');
const out = join(base, 'out');
const models = join(base, 'models');
for (const d of [join(data, 'cat'), out, models]) mkdirSync(d, { recursive: true });
writeFileSync(join(data, 'cat', 'a.png'), 'x');
writeFileSync(join(models, 'model.json'), '{}');
// Inside the data root, but pointing out of it.
symlinkSync('/etc', join(data, 'cat', 'etc'));
const outside = mkdtempSync(join(tmpdir(), 'fs-admit-outside-'));
const roots = await resolveRoots({ read: [data, models], write: [out] });

// A job as an attacker writes it: any shape at all.
// biome-ignore lint/suspicious/noExplicitAny: forged jobs are untyped on purpose
type Forged = Record<string, any>;

function job(change: (j: Forged) => void = () => {}): Forged {
  const j: ShardJob = {
    kind: 'features',
    set: '0123456789abcdef',
    model: { path: join(models, 'model.json'), sha256: 'a'.repeat(64), featureLayer: null, pooling: 'none' },
    image: { imageSize: [28, 28], colorMode: 'grayscale', rescale: 1 / 255, preprocess: 'none', batchSize: null },
    pack: null,
    root: data,
    classNames: ['cat'],
    paths: ['cat/a.png'],
    labels: [0],
    shard: { index: 0, count: 1, start: 0, end: 1 },
    output: join(out, 'set'),
  };
  const copy = structuredClone(j) as Forged;
  change(copy);
  return copy;
}

const refused = (change: (j: Forged) => void, message: string | RegExp) => expect(admitJob(job(change), roots)).rejects.toThrow(message);

describe('admitJob: a job is data from Redis', () => {
  it('admits a job whose every field lies under the roots, and returns it as it was', async () => {
    expect(await admitJob(job(), roots)).toEqual(job());
    // A pixel shard has no model.
    expect(
      await admitJob(
        job((j) => {
          j.kind = 'pixels';
          j.model = null;
        }),
        roots,
      ),
    ).toMatchObject({ kind: 'pixels', model: null });
  });

  it('reads only under the read roots: another root, an absolute or .. path, a symlink out, a model elsewhere', async () => {
    await refused(
      (j) => {
        j.root = '/etc';
        j.paths = ['passwd'];
      },
      `job refused: root "/etc" is outside this worker's --root (${roots.read.join(', ')})`,
    );
    await refused((j) => {
      j.paths = ['/etc/passwd'];
    }, 'job refused: paths[0] must be a relative path without . or .. segments');
    await refused((j) => {
      j.paths = ['cat/../../../../etc/passwd'];
    }, 'job refused: paths[0] must be a relative path');
    await refused((j) => {
      j.paths = ['cat/etc/passwd'];
    }, /job refused: paths\[0\] ".*cat\/etc\/passwd" is outside this worker's --root/);
    await refused((j) => {
      j.root = `${data}/../../../etc`;
    }, 'job refused: root must be an absolute path without . or .. segments');
    await refused((j) => {
      j.model.path = '/etc/passwd';
    }, `job refused: model.path "/etc/passwd" is outside this worker's --root`);
    // The data root does not make a shard directory: writes go only under the write roots.
    await refused((j) => {
      j.output = outside;
    }, `job refused: output "${outside}" is outside this worker's --output-root (${roots.write[0]})`);
    await refused((j) => {
      j.output = join(data, 'cat');
    }, /job refused: output .* is outside this worker's --output-root/);
  });

  it('names the shard file itself: shard.index must be an integer of the set, so no path reaches the store', async () => {
    await refused((j) => {
      j.shard.index = 'x/../../../escaped';
    }, 'job refused: shard.index must be an integer from 0 to 0');
    await refused((j) => {
      j.shard.index = 3;
    }, 'job refused: shard.index must be an integer from 0 to 0');
    await refused((j) => {
      j.shard.end = 5;
    }, 'job refused: shard spans rows 0–5 but carries 1 paths');
  });

  it('refuses unknown and missing keys, wrong types, labels outside the classes, control characters and oversized payloads', async () => {
    await refused((j) => {
      j.exec = 'rm -rf /';
    }, 'job refused: job has unknown key "exec"');
    await refused((j) => {
      j.image.extra = 1;
    }, 'job refused: image has unknown key "extra"');
    await refused((j) => {
      delete j.labels;
    }, 'job refused: job lacks labels');
    await refused((j) => {
      j.labels = [1];
    }, 'job refused: labels[0] must be an integer from 0 to 0');
    await refused((j) => {
      j.labels = [0, 0];
    }, 'job refused: labels has 2 entries for 1 paths');
    await refused((j) => {
      j.set = '\u001b[2J\u001b[31mpwned';
    }, 'job refused: set holds control characters');
    await refused((j) => {
      j.classNames = ['../cat'];
    }, 'job refused: classNames[0] is not a folder name');
    await refused((j) => {
      j.image.imageSize = [28, 1e9];
    }, 'job refused: image.imageSize[1] must be an integer from 1 to 16384');
    await refused((j) => {
      j.model.sha256 = 'not a hash';
    }, 'job refused: model.sha256 must be 64 hexadecimal digits');
    await refused((j) => {
      j.kind = 'shell';
    }, 'job refused: kind must be one of features, pixels');
    await refused((j) => {
      j.paths = Array.from({ length: 1000 }, () => 'x'.repeat(MAX_JOB_BYTES / 900));
    }, /job refused: job is \d+ bytes, more than the 16777216/);
    await expect(admitJob(null, roots)).rejects.toThrow(JobRefusedError);
  });

  it('a root that does not exist is refused by its flag', async () => {
    await expect(resolveRoots({ read: [join(base, 'nope')], write: [out] })).rejects.toThrow(`--root ${join(base, 'nope')}: no such directory`);
    await expect(resolveRoots({ read: [data], write: [] })).rejects.toThrow('--output-root: at least one directory is needed');
  });
});

describe('the rest of the boundary', () => {
  it('modelFileHash never quotes the file it could not parse, and refuses weight files outside the model directory', async () => {
    const secret = join(outside, 'secret.json');
    await writeFile(secret, 'root:x:0:0:hunter2');
    const error = await modelFileHash(secret).catch((e: Error) => e);
    expect((error as Error).message).toBe(`${secret} is not a tfjs model.json (it is not JSON)`);
    expect((error as Error).message).not.toContain('hunter2');
    const escaping = join(outside, 'model.json');
    await writeFile(escaping, JSON.stringify({ weightsManifest: [{ paths: ['../../etc/shadow'] }] }));
    await expect(modelFileHash(escaping)).rejects.toThrow(`${escaping}: weight file "../../etc/shadow" is not a path beside it`);
  });

  it('warns about a Redis beyond this machine without a password, not about loopback or a password', () => {
    expect(unprotectedWarning(parseQueueUrl('redis://queue.example:6379'))).toMatch(
      /^the job queue's Redis at redis:\/\/queue\.example:6379 is not on this machine and is used without a password/,
    );
    expect(unprotectedWarning(parseQueueUrl('redis://10.0.0.5'))).not.toBeNull();
    expect(unprotectedWarning(parseQueueUrl('redis://127.0.0.1:6379'))).toBeNull();
    expect(unprotectedWarning(parseQueueUrl('redis://localhost'))).toBeNull();
    expect(unprotectedWarning(parseQueueUrl('redis://[::1]:6379'))).toBeNull();
    expect(unprotectedWarning(parseQueueUrl('rediss://:pw@queue.example:6380'))).toBeNull();
  });

  it('queue status shows what a job holds as printable text: escapes cannot drive the terminal', () => {
    expect(printable('\u001b[2Jcleared')).toBe('\\u001b[2Jcleared');
    expect(printable(undefined)).toBe('?');
    expect(printable('x'.repeat(400)).length).toBe(301);
  });
});
