/**
 * The channel count of a keepdims global pooling whose file does not record its input shape
 * (Keras 2 files, Keras 3 Sequential ones), found by tfjs itself: the model up to that pooling
 * layer is built once as a probe and its output shape read. Only such files pay for the probe.
 */
import type { Tf } from '@featherstack/tensorflow';
import { ModelImportError } from './errors.js';
import { isObject, type Json, type JsonObject } from './json.js';
import { KEEPDIMS_POOL } from './layers.js';

const nameOf = (entry: JsonObject): string => String(entry.name ?? (isObject(entry.config) ? entry.config.name : ''));

/** Is this a keepdims Reshape (layers.ts) still waiting for its channel count? */
function unresolved(entry: JsonObject, names: Set<string>): boolean {
  const target = isObject(entry.config) ? entry.config.target_shape : undefined;
  return entry.class_name === 'Reshape' && Array.isArray(target) && target.length === 3 && target[2] === -1 && names.has(`${nameOf(entry)}/${KEEPDIMS_POOL}`);
}

function refsOf(entry: JsonObject): string[] {
  const nodes = Array.isArray(entry.inbound_nodes) ? entry.inbound_nodes : [];
  return nodes.flatMap((node) => (Array.isArray(node) ? node : [])).flatMap((ref) => (Array.isArray(ref) && typeof ref[0] === 'string' ? [ref[0]] : []));
}

/** The Functional model up to `pool`: its ancestors, in their order, with `pool` as the output. */
function functionalProbe(config: JsonObject, layers: JsonObject[], pool: string): JsonObject {
  const byName = new Map(layers.map((l) => [nameOf(l), l]));
  const keep = new Set<string>();
  const stack = [pool];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (keep.has(name)) continue;
    keep.add(name);
    stack.push(...refsOf(byName.get(name) ?? {}));
  }
  const inputs = (config.input_layers as Json[]).filter((e) => Array.isArray(e) && keep.has(String(e[0])));
  return { ...config, layers: layers.filter((l) => keep.has(nameOf(l))), input_layers: inputs, output_layers: [[pool, 0, 0]] };
}

/**
 * Writes the channel count into every keepdims Reshape of `topology` (from toTfjsTopology) that
 * lacks one.
 *
 * @example
 * await resolveKeepdims(tf, topology, 'model.h5'); // Reshape target [1, 1, -1] → [1, 1, 576]
 * @internal
 */
export async function resolveKeepdims(tf: Tf, topology: JsonObject, file: string): Promise<void> {
  const config = topology.config as JsonObject;
  const layers = config.layers as JsonObject[];
  const names = new Set(layers.map(nameOf));
  for (const entry of layers) {
    const inner = isObject(entry.config) && Array.isArray(entry.config.layers) ? (entry.config.layers as JsonObject[]) : [];
    const innerNames = new Set(inner.map(nameOf));
    const pending = inner.find((l) => unresolved(l, innerNames));
    if (pending !== undefined) {
      throw new ModelImportError(
        { file, layer: nameOf(pending), className: 'GlobalPooling2D' },
        `is a keepdims pooling inside the nested model '${nameOf(entry)}' and the file does not record its input shape`,
      );
    }
  }
  for (const [index, entry] of layers.entries()) {
    if (!unresolved(entry, names)) continue;
    const pool = `${nameOf(entry)}/${KEEPDIMS_POOL}`;
    const probeConfig = topology.class_name === 'Sequential' ? { ...config, layers: layers.slice(0, index) } : functionalProbe(config, layers, pool);
    let channels: unknown;
    try {
      const probe = await tf.models.modelFromJSON({ modelTopology: { ...topology, config: probeConfig } });
      channels = probe.getLayer(pool).outputShape.at(-1);
      probe.dispose();
    } catch (error) {
      throw new ModelImportError(
        { file, layer: nameOf(entry) },
        `the input shape of this keepdims pooling cannot be found: ${(error as Error).message.split('\n')[0]}`,
      );
    }
    if (typeof channels !== 'number') throw new ModelImportError({ file, layer: nameOf(entry) }, 'the channel count of this keepdims pooling is unknown');
    (entry.config as JsonObject).target_shape = [1, 1, channels];
  }
}
