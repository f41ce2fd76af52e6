/**
 * Where the queue is: a Redis URL (`redis://[:password@]host[:port][/db]`, `rediss://` for TLS), from
 * a flag, FEATHERSTACK_QUEUE or a config. Checked with a ping before any work, so that an unreachable
 * Redis is one clear error naming the address, not a retry loop.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { parse as parseYaml } from 'yaml';

export interface QueueConnection {
  /** The URL with any password masked, for messages. */
  display: string;
  options: RedisOptions & { host: string; port: number };
}

export class QueueConnectionError extends Error {
  override readonly name = 'QueueConnectionError';
  readonly code = 'FEATHERSTACK_QUEUE_UNREACHABLE';
}

/**
 * The queue URL from a config file (YAML or JSON with a `queue` key), for `--config`: errors name the
 * file. Precedence where several are given: the flag, then the config file, then FEATHERSTACK_QUEUE.
 */
export async function queueUrlFromConfig(file: string): Promise<string> {
  let raw: unknown;
  try {
    const text = await readFile(file, 'utf8');
    raw = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new QueueConnectionError(`config ${file}: cannot be read as YAML or JSON (${(error as Error).message.split('\n')[0]})`);
  }
  const url = (raw as { queue?: unknown } | null)?.queue;
  if (typeof url !== 'string' || url.length === 0)
    throw new QueueConnectionError(`config ${file}: needs a 'queue' key with the Redis URL (redis:// or rediss://)`);
  return url;
}

/** Parses a queue URL; `source` names the flag or variable it came from. */
export function parseQueueUrl(url: string | undefined, source = '--queue'): QueueConnection {
  const text = url ?? process.env.FEATHERSTACK_QUEUE;
  if (!text) throw new QueueConnectionError(`${source} (or FEATHERSTACK_QUEUE) must name the Redis of the job queue, e.g. redis://localhost:6379`);
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new QueueConnectionError(`${source} must be a redis:// or rediss:// URL, received '${text}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new QueueConnectionError(`${source} must be a redis:// or rediss:// URL, received '${text}'`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new QueueConnectionError(`${source}: '${u.pathname.slice(1)}' is not a Redis database number`);
  const options: RedisOptions & { host: string; port: number } = {
    host: u.hostname || 'localhost',
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's workers block on Redis: ioredis must retry commands forever, and reconnect.
    maxRetriesPerRequest: null,
  };
  const masked = new URL(text);
  if (masked.password) masked.password = '***';
  return { display: masked.toString(), options };
}

/**
 * A warning when the queue's Redis is reachable beyond this machine and asks for no password:
 * anyone on that network can then write jobs for the workers (which admit only what lies under
 * their roots) and read the dataset's listing. Null for loopback, or with a password.
 */
export function unprotectedWarning(connection: QueueConnection): string | null {
  const host = connection.options.host.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  if (loopback || connection.options.password) return null;
  return (
    `the job queue's Redis at ${connection.display} is not on this machine and is used without a password: anyone who can reach it can queue jobs. ` +
    'Give it one (requirepass, or an ACL user) and put it in the URL (redis://:password@host), and prefer rediss:// across machines'
  );
}

/** Pings Redis once, within `timeoutMs`; throws a QueueConnectionError naming the address otherwise. */
export async function checkReachable(connection: QueueConnection, timeoutMs = 5000): Promise<void> {
  const client = new Redis({ ...connection.options, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // The socket's own error (ECONNREFUSED, ENOTFOUND, …) says more than ioredis's "Connection is closed".
  let cause: Error | null = null;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new QueueConnectionError(`cannot reach the job queue's Redis at ${connection.display}: ${(cause ?? (error as Error)).message}`);
  } finally {
    client.disconnect();
  }
}
