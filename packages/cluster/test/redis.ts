// A real Redis for the tests: Debian's redis-server (npm test's setup installs it when missing),
// started on a free loopback port with append-only persistence in a temporary directory.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  stop(): Promise<void>;
  /** Stops the server (persisting its data) and starts it again on the same port and directory. */
  restart(downMs?: number): Promise<void>;
}

function which(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error("redis-server is not installed: `npm test` installs Debian's redis-server (apt-get install redis-server)");
  return found;
}

/** `persist: false`: no append-only file and no snapshot, so a restart loses every key. */
export async function startRedis(options: { persist?: boolean } = {}): Promise<RedisServer> {
  const persistence = options.persist === false ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always'];
  const bin = which();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fs-redis-'));
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...persistence, '--save', ''], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on port ${port}`);
  };
  const halt = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop: halt,
    async restart(downMs = 1500) {
      await halt();
      await new Promise((r) => setTimeout(r, downMs));
      await launch();
    },
  };
}
