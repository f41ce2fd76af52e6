/**
 * featherstack's native addon (native/session.cc), loaded on its own: it links libtensorflow, which
 * reads its settings only when first used, so loading it sets nothing. @internal
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeTensorFlowError } from '../errors.js';

export type Buffer = Float32Array | Int32Array | Uint8Array;

export interface Addon {
  tensorflowVersion: string;
  newSession(graphDef: Uint8Array, config: Uint8Array): object;
  run(session: object, feeds: [string, Buffer, number[]][], fetches: [string, Buffer][], targets: string[]): Promise<Error | undefined>;
  runSync(session: object, feeds: [string, Buffer, number[]][], fetches: [string, Buffer][], targets: string[]): Error | undefined;
  closeSession(session: object): void;
  sumInto(out: Float32Array, inputs: Float32Array[], begin: number, end: number): Promise<void>;
  setEnv(name: string, value: string): void;
  /** Reports a SIGFPE/SIGILL inside TensorFlow on stderr (with `hint`) before the process dies of it. */
  installCrashReport(hint: string): void;
}

const require = createRequire(import.meta.url);
/** Where scripts/build-native.mjs puts the addon. */
export const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'featherstack_session.node');
let addon: Addon | undefined;

/** The native addon alone (it links libtensorflow, which reads its settings only when first used). @internal */
export function requireAddon(): Addon {
  if (addon) return addon;
  if (!existsSync(ADDON_PATH)) {
    throw new NativeTensorFlowError(
      `featherstack's native session addon is not built (${ADDON_PATH}); run \`npx featherstack-provision\` (installed from npm) or \`npm run build\` (in the repository)`,
    );
  }
  try {
    addon = require(ADDON_PATH) as Addon;
  } catch (error) {
    throw new NativeTensorFlowError(
      `featherstack's native session addon ${ADDON_PATH} does not load (${(error as Error).message.split('\n')[0]}); rebuild it with \`npm run build\``,
    );
  }
  return addon;
}
